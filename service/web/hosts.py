"""``Host`` checking: the API answers only to the names in GRADLAB_ALLOWED_HOSTS.

A server on loopback is otherwise reachable from any web page by DNS rebinding: the page's
own name is made to resolve to 127.0.0.1, and the browser then treats the server as that
page's origin. The browser still sends the page's name in ``Host``, so refusing names this
server does not go by closes the hole.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import HostNotAllowed, json_response
from store.settings import host_name


def request_host(value: str) -> str:
    """The name in a ``Host`` header, without its port: ``[::1]:8000`` → ``::1``."""
    if value.startswith("["):  # an IPv6 literal, maybe with a port after the bracket
        return host_name(value[: value.find("]") + 1])
    return host_name(value.rpartition(":")[0] if ":" in value else value)


class AllowedHosts:
    """Answer a request whose ``Host`` is not an allowed name with ``400 host_not_allowed``.

    ``hosts`` are names as :func:`store.settings.host_name` writes them; ``*.example.org``
    allows that domain's subdomains, and ``*`` any name (for a server behind a proxy that
    checks ``Host`` itself)."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        hosts = tuple(hosts)
        self.any = "*" in hosts
        self.exact = frozenset(h for h in hosts if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))  # ".example.org"
        self.seen: dict[bytes, bool] = {}  # Host header → allowed; a handful of names in use

    def allowed(self, raw: bytes) -> bool:
        verdict = self.seen.get(raw)
        if verdict is None:
            name = request_host(raw.decode("latin-1"))
            verdict = name in self.exact or (bool(name) and name.endswith(self.suffixes))
            if len(self.seen) < 256:  # bounded: a scan of made-up names cannot grow it
                self.seen[raw] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] != "http":  # the API has no websockets
            await self.app(scope, receive, send)
            return
        raw = next((value for key, value in scope["headers"] if key == b"host"), b"")
        if self.allowed(raw):
            await self.app(scope, receive, send)
            return
        shown = raw.decode("latin-1")[:100] or "(none)"
        error = HostNotAllowed(
            f"Host {shown!r} is not a name this server answers to; add it to "
            "GRADLAB_ALLOWED_HOSTS if it is (requests under other names are refused, "
            "which stops DNS rebinding)."
        )
        await json_response(error.body(), error.status)(scope, receive, send)
