"""Authentication, before anything else: who every request is from.

With ``GRADLAB_AUTH=off`` every request is the ``local`` admin. With ``required``, a request
to ``/v1`` needs ``Authorization: Bearer TOKEN`` naming a live token; without one it gets
``401`` with ``WWW-Authenticate: Bearer`` and the usual error body before any route runs —
before its body is read, its parameters parsed or anything is stored. The health checks,
the dashboard's static shell (whose sign-in page takes the token), and the API's docs hold
no data and stay open.

The request's ``state`` gets ``caller`` (a :class:`store.accounts.Caller`), ``user_name``
and ``role``, for the routes and for the access log.

A token's account is cached by the token's SHA-256 for :data:`CACHE_SECONDS`, so a busy
client costs one hash (about a microsecond) per request and one database read per half
second, not one per request. Revocation takes effect in this process at once (the revoking
route drops the account's entries) and in every other process — a ``gradlab users revoke``
from the command line, another API replica — within ``CACHE_SECONDS``, well inside a second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Unauthorized
from store.accounts import LOCAL, Caller, token_hash

CACHE_SECONDS = 0.5  # how stale a cached token's account may be; revocation within 1 s
CACHE_SIZE = 10_000  # tokens remembered at once (a class is a few hundred)
ANONYMOUS = "-"  # the user_name of a request without a valid token

Lookup = Callable[[str], Awaitable[Caller | None]]


class TokenCache:
    """Token hash → (caller, until when it may be trusted). Unknown tokens are not cached:
    each costs its read, and none of them can fill the cache."""

    def __init__(
        self,
        lookup: Lookup,
        ttl: float = CACHE_SECONDS,
        size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup, self.ttl, self.size, self.clock = lookup, ttl, size, clock
        self._items: dict[str, tuple[Caller, float]] = {}
        self._lock = threading.Lock()  # forget() runs in the threadpool

    async def caller(self, token: str) -> Caller | None:
        """The live account behind ``token``, or None."""
        key = token_hash(token)
        hit = self._items.get(key)
        now = self.clock()
        if hit is not None and hit[1] > now:
            return hit[0]
        found = await self.lookup(key)
        with self._lock:
            if found is None:
                self._items.pop(key, None)
                return None
            if len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))  # the oldest entry
            self._items[key] = (found, now + self.ttl)
        return found

    def forget(self, name: str) -> None:
        """Drop every cached token of account ``name`` (it was just revoked here)."""
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[0].name != name}


def bearer(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if there is one."""
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def protected(path: str) -> bool:
    """Whether a path needs a token in required mode: all of the API, ``/v1``."""
    return path == "/v1" or path.startswith("/v1/")


NO_TOKEN = Unauthorized(
    "This needs an API token: send it as Authorization: Bearer TOKEN "
    "(gradlab users add or token issues one)."
)
BAD_TOKEN = Unauthorized(
    "The API token is not valid: it is unknown or has been revoked.",
    'Bearer error="invalid_token"',
)


class Authenticate:
    """The ASGI middleware: sets the caller on every request, or answers 401."""

    def __init__(self, app: ASGIApp, *, required: bool, cache: TokenCache) -> None:
        self.app, self.required, self.cache = app, required, cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no websockets are served
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        caller: Caller | None = LOCAL
        if self.required:
            token = bearer(scope)
            caller = await self.cache.caller(token) if token else None
            if caller is None and protected(scope["path"]):
                state["user_name"], state["role"] = ANONYMOUS, None
                await _refuse(send, BAD_TOKEN if token else NO_TOKEN)
                return
        if caller is not None:
            state["caller"], state["user_name"], state["role"] = caller, caller.name, caller.role
        else:
            state["user_name"], state["role"] = ANONYMOUS, None
        await self.app(scope, receive, send)


async def _refuse(send: Send, error: Unauthorized) -> None:
    body = orjson.dumps(error.body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in (error.headers() or {}).items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
