"""The request-body limit (GRADLAB_MAX_BODY_BYTES), answered with the JSON error body.

FastAPI's ``max_body_size`` answers a body whose Content-Length is above the limit with a
plain-text 413; this middleware answers it, and a chunked body that grows past the limit while
it is read, with the same ``{message, type, detail}`` as every other error.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BodyTooLarge, http_error_body, json_response


class BodyLimit:
    """Refuse request bodies above ``max_bytes`` with a 413 of type ``body_too_large``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = int(Headers(scope=scope).get("content-length", "0"))
        except ValueError:  # not a number: the server has refused it already
            declared = 0
        if declared > self.max_bytes:
            response = json_response(http_error_body(BodyTooLarge(self.max_bytes)), 413)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # rendered by the HTTP error handler
            return message

        await self.app(scope, counted, send)
