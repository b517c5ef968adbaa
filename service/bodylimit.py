"""The request-body limits: GRADLAB_MAX_BODY_BYTES, answered with the JSON error body, and
at most GRADLAB_MAX_LARGE_BODIES bodies above GRADLAB_LARGE_BODY_BYTES handled at once.

FastAPI's ``max_body_size`` answers a body whose Content-Length is above the limit with a
plain-text 413; this middleware answers it, and a chunked body that grows past the limit while
it is read, with the same ``{message, type, detail}`` as every other error.

A large body costs the API several times its size while it is parsed and validated (JSON
numbers become Python floats before they become one NumPy array; ``bench/bodies.py``
measures it), so large bodies hold one of a few slots for their whole request: one more is
a 503 ``bodies_busy`` with ``Retry-After``, before any of it is read. The slots are a count
on the process's one event loop, where every request passes through here.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import BodiesBusy, BodyTooLarge, http_error_body, json_response


class BodyLimit:
    """Refuse request bodies above ``max_bytes`` with a 413 of type ``body_too_large``, and
    bodies above ``large_bytes`` beyond ``large_slots`` at once with a 503 ``bodies_busy``."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, large_bytes: int | None = None, large_slots: int = 2
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.large_bytes = max_bytes if large_bytes is None else large_bytes
        self.large_slots = large_slots
        self.large_in_flight = 0

    def _take_slot(self) -> bool:
        if self.large_in_flight >= self.large_slots:
            return False
        self.large_in_flight += 1
        return True

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
        held = False
        if declared > self.large_bytes:
            if not self._take_slot():
                busy = BodiesBusy(self.large_slots, self.large_bytes)
                headers = {"Retry-After": str(busy.retry_after)}
                response = json_response(http_error_body(busy), 503, headers)
                await response(scope, receive, send)
                return
            held = True
        received = 0

        async def counted() -> Message:
            nonlocal received, held
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)  # rendered by the HTTP error handler
                if received > self.large_bytes and not held:  # chunked, and grown large
                    if not self._take_slot():
                        raise BodiesBusy(self.large_slots, self.large_bytes)
                    held = True
            return message

        try:
            await self.app(scope, counted, send)
        finally:
            if held:
                self.large_in_flight -= 1
