"""The event stream's response: it gives its slot back however it ends, and a client that
stops reading is cut off at the send timeout with one log line.

A client that never reads fills the kernel's send buffer, then the server's; a send then
waits, and after ``GRADLAB_STREAM_SEND_TIMEOUT_SECONDS`` sse-starlette gives up on it. The
socket must then be aborted, not closed: a graceful close waits for the unread bytes to
drain, which they never do, and the connection would stay ESTABLISHED with its buffers full.
ASGI has no word for "abort", so :func:`expose_abort` (wrapped around the app by
``gradlab serve``) hands the response a way to reset uvicorn's transport in the scope.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterable, Callable
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import ASGIApp, Receive, Scope, Send

from service.events.streams import Streams

log = logging.getLogger("gradlab.events")

ABORT = "gradlab.abort"  # the scope's extensions key: a callable that resets the connection
PING_SECONDS = 15


class JobStream(EventSourceResponse):
    """One job's events to one client, holding one of that client's stream slots."""

    def __init__(
        self,
        events: AsyncIterable[dict[str, str] | bytes],
        streams: Streams,
        client: str,
        job_id: str,
    ) -> None:
        super().__init__(events, ping=PING_SECONDS, send_timeout=streams.send_timeout)
        self.streams, self.client, self.job_id = streams, client, job_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.warning(
                "closed the event stream of job %s to %s: it read nothing for %g s",
                self.job_id,
                self.client,
                self.streams.send_timeout,
            )
            abort = (scope.get("extensions") or {}).get(ABORT)
            if abort is not None:
                abort()
                await anyio.sleep(0)  # let the server see the connection lost before we return
        finally:
            self.streams.release(self.client)


def _resetter(transport: Any) -> Callable[[], None]:
    """Close the connection now, unsent bytes and all: with ``SO_LINGER`` at zero the kernel
    resets it instead of keeping an orphan socket that retries them for minutes."""

    def reset() -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    return reset


def expose_abort(app: ASGIApp) -> ASGIApp:
    """``app``, with a reset of the connection in each HTTP scope's extensions (when the
    server is uvicorn: its ``send`` is a method of the request cycle, which holds the
    transport)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        transport: Any = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:
            extensions = {**(scope.get("extensions") or {}), ABORT: _resetter(transport)}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped
