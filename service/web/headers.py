"""Response headers that keep the browser from doing what the server never asked of it.

Every answer gets ``X-Content-Type-Options: nosniff`` (a CSV or JSON body is never run as a
script or drawn as HTML) and a Content-Security-Policy with ``frame-ancestors 'none'`` (no
other page frames the dashboard to trick a click). The dashboard's policy allows only its own
scripts, styles, images and API calls — no inline script or style, no ``eval``, nothing from
elsewhere — so even a name that slipped past its text-only rendering could not run. Answers
that are data (JSON, CSV, the SVG and PNG plots) get ``default-src 'none'`` (but for the
plots' own inline styles and embedded images): an SVG opened in a tab of its own runs
nothing. Swagger UI and ReDoc (``/docs``, ``/redoc``) load their scripts from a CDN and
inline, as FastAPI serves them, so they get only ``frame-ancestors``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# matplotlib's SVGs carry a <style> element and embed their rasters as data: images
DATA_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox"
)
DOCS_CSP = "frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")  # and /docs/oauth2-redirect


def policy(path: str) -> str:
    """The Content-Security-Policy for the answer at ``path``."""
    if path == "/" or path.startswith("/ui/"):
        return DASHBOARD_CSP
    if path.startswith(DOCS_PATHS):
        return DOCS_CSP
    return DATA_CSP


_HEADERS = {
    csp: [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff")]
    for csp in (DASHBOARD_CSP, DATA_CSP, DOCS_CSP)
}


class SecurityHeaders:
    """Add ``nosniff`` and the path's Content-Security-Policy to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        extra = _HEADERS[policy(path[len(root) :] if root and path.startswith(root) else path)]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
