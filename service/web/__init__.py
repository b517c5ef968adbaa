"""The web surface: what keeps a browser's pages on other sites, and names other than this
server's own, from using the API — and the line every request leaves in the access log.

Pure ASGI middleware (no ``BaseHTTPMiddleware``, which would buffer the event streams and
cost the hot GET path a task per request), installed in this order, outermost first:

1. :class:`~service.web.accesslog.AccessLog` — one line per request, refusals included, and
   the request metrics.
2. :class:`~service.web.headers.SecurityHeaders` — ``nosniff`` and a Content-Security-Policy
   on every answer (the dashboard's allows only its own scripts and styles).
3. :class:`~service.web.hosts.AllowedHosts` — ``400`` for a ``Host`` not in
   GRADLAB_ALLOWED_HOSTS (DNS rebinding).
4. Starlette's ``CORSMiddleware``, only when GRADLAB_CORS_ORIGINS lists origins.
5. :class:`~service.web.crosssite.CrossSite` — ``403`` for a POST, PUT, PATCH or DELETE a
   browser could send from another site's page without this server's consent.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from service.web.accesslog import AccessLog
from service.web.crosssite import UNSAFE_METHODS, CrossSite
from service.web.headers import SecurityHeaders
from service.web.hosts import AllowedHosts
from store.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    """Add the web surface's middleware to ``app`` (Starlette runs the last added first)."""
    origins = settings.cors_origin_list
    app.add_middleware(CrossSite, cors_origins=origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "HEAD", *sorted(UNSAFE_METHODS)],
            allow_headers=["Content-Type", "Authorization", "Idempotency-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After"],
        )
    app.add_middleware(AllowedHosts, hosts=settings.allowed_host_names)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(AccessLog, metrics=app.state.request_metrics)
