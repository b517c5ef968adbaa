"""The access log: one line per request, on the logger ``gradlab.access`` at INFO::

    alice GET /v1/jobs/{job_id} 200 0.8ms

— the account (``request.state.user_name``, set by authentication; ``-`` before it ran), the
method, the route's path *template* (never the raw path: no ids or query strings to collate,
and nothing a client typed), the status and the milliseconds to the end of the answer (of an
event stream: when it closed). Never a token or a header. A request no route matched (a
refused ``Host``, an unknown path) logs ``-`` as its template. A request whose app raised
logs 500, which the server answers.

It replaces uvicorn's own access log, which shows raw paths and would make two lines. With
GRADLAB_LOG_FORMAT=json the same fields are the line's keys: ``user``, ``method``, ``route``,
``status``, ``ms``.

The same clock feeds the request metrics (:class:`store.telemetry.RequestMetrics`):
``gradlab_http_requests_total`` and ``gradlab_http_request_duration_seconds`` by method,
route template and status class (``bench --only metrics`` measures what they cost).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from store.telemetry import RequestMetrics

log = logging.getLogger("gradlab.access")


def template(scope: Scope) -> str:
    """The path template of the route that answered: ``/v1/jobs/{job_id}``; ``/ui/{path}``
    for a mounted app's files; ``-`` when no route matched."""
    route: Any = scope.get("route")
    if route is not None:
        return str(route.path)
    mounted = scope.get("app_root_path")
    if mounted is not None and "endpoint" in scope:  # a Mount matched: root_path grew by it
        return f"{scope['root_path'][len(mounted) :]}/{{path}}"
    return "-"


class AccessLog:
    """Log each HTTP request's line when its answer is done, and count and time it in
    ``metrics`` unless that is None (see the module)."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        logging_on = log.isEnabledFor(logging.INFO)
        metrics = self.metrics
        if scope["type"] != "http" or not (logging_on or metrics is not None):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts an answer
        state = scope.setdefault("state", {})  # request.state writes into this dict

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            method, route = scope["method"], template(scope)
            if metrics is not None:
                metrics.observe(method, route, status, seconds)
            if logging_on:
                user = state.get("user_name") or "-"
                ms = round(seconds * 1e3, 1)
                fields = {"user": user, "method": method, "route": route, "status": status}
                fields["ms"] = ms
                log.info("%s %s %s %d %.1fms", user, method, route, status, ms, extra=fields)
