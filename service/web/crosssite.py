"""Cross-site request refusal: no page on another site can change anything here.

A browser lets any page send a POST (or, with ``mode: 'no-cors'``, even read nothing of the
answer and still have it run) to any server; what it never lets a page do is lie about where
the request comes from, or send a non-form content type without a CORS preflight. So every
POST, PUT, PATCH and DELETE is refused with ``403 cross_site_refused`` when

* ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site`` (another port or subdomain is another
  origin), unless its ``Origin`` is one of GRADLAB_CORS_ORIGINS;
* an ``Origin`` is sent that is neither this server's own (the same host and port as ``Host``)
  nor one of GRADLAB_CORS_ORIGINS (``Origin: null`` — a sandboxed frame, a file — included);
* its ``Content-Type`` is one an HTML form or a no-cors fetch may send anywhere:
  ``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``text/plain``. The API
  takes only JSON bodies, so this costs no client anything, and it covers the browsers that
  send neither header on a form's POST. The one exception is ``multipart/form-data`` to
  ``POST /v1/datasets`` (:data:`UPLOAD_PATHS`), a file upload, which the first two rules
  still guard: current browsers send ``Origin`` with a form's POST, so only this server's
  own pages (or a listed origin's) may upload from a browser.

Clients that are not browsers (the CLI, curl, httpx, the tests) send no ``Origin`` and no
``Sec-Fetch-*``, so the first two rules never touch them; the dashboard's own requests are
same-origin. Both hold whatever GRADLAB_AUTH is: a cookie or a remembered token is no defence
against a request the browser sends on the user's behalf.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import CrossSiteRefused, json_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
UPLOAD_PATHS = frozenset({"/v1/datasets"})
"""Routes that take a multipart file upload (still under the Origin and Sec-Fetch rules)."""
DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(netloc: str, default: int | None) -> tuple[str, int | None]:
    """``localhost:8000`` → ``("localhost", 8000)``; a missing port is the scheme's default."""
    try:
        parts = urlsplit(f"//{netloc}")
        return (parts.hostname or "").rstrip("."), parts.port or default
    except ValueError:  # a port that is not a number, an unclosed bracket
        return "", None


def same_origin(origin: str, host: str) -> bool:
    """Whether ``Origin`` names this server as the ``Host`` header does (host and port)."""
    scheme, sep, netloc = origin.partition("://")
    default = DEFAULT_PORTS.get(scheme.lower())
    if not sep or default is None:
        return False
    theirs = _host_port(netloc, default)
    return bool(theirs[0]) and theirs == _host_port(host, default)


def refusal(
    origin: str | None, fetch_site: str | None, content_type: str | None, host: str,
    cors_origins: frozenset[str], path: str = "",
) -> str | None:  # fmt: skip
    """Why a state-changing request with these headers is refused; ``None`` if it is not."""
    listed = origin is not None and origin in cors_origins
    if fetch_site in ("cross-site", "same-site") and not listed:
        return (
            f"This request comes from another site's page (Sec-Fetch-Site: {fetch_site}, "
            f"Origin: {origin or 'none'}), which may not change anything here unless "
            "GRADLAB_CORS_ORIGINS lists its origin."
        )
    if origin is not None and not listed and not same_origin(origin, host):
        return (
            f"Origin {origin[:200]!r} is neither this server's own nor one of "
            "GRADLAB_CORS_ORIGINS, so a page there may not change anything here."
        )
    media = (content_type or "").partition(";")[0].strip().lower()
    upload = media == "multipart/form-data" and path in UPLOAD_PATHS
    if media in FORM_TYPES and not upload:
        return (
            f"Content-Type {media} is one a page on any site may send in a form; the API takes "
            "JSON: send the body as application/json."
        )
    return None


class CrossSite:
    """Refuse state-changing requests that another site's page could have sent, with
    ``403 cross_site_refused`` saying which header gave it away (see the module's rules)."""

    def __init__(self, app: ASGIApp, cors_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.cors_origins = frozenset(cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        origin = fetch_site = content_type = None
        host = ""
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"sec-fetch-site":
                fetch_site = value.decode("latin-1").lower()
            elif key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"host":
                host = value.decode("latin-1")
        why = refusal(origin, fetch_site, content_type, host, self.cors_origins, scope["path"])
        if why is None:
            await self.app(scope, receive, send)
            return
        error = CrossSiteRefused(why)
        await json_response(error.body(), error.status)(scope, receive, send)
