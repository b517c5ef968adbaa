"""NUL refusal: a NUL character in a path, query or header parameter is a ``422``.

PostgreSQL's text cannot hold a NUL, so no stored id, name or tag has one; answering such a
request before any route runs keeps it from reaching the database driver (which would fail
with a 500). The check is a byte search over what the request already carries — a NUL
arrives as ``\\0`` in a decoded path or a header, or as ``%00`` in the raw query string —
and only a request that has one is looked at closely, to name the parameter (the API's path
templates are matched for a path's parameter name) as a validation error names it: ``path:job_id``,
``query:name``, ``header:idempotency-key``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import InvalidSpec, Problem, json_response

WHY = "must not contain NUL (\\0) characters."


def _path_field(templates: Iterable[str], path: str) -> str:
    """The path parameter that holds the NUL, found by matching the API's path templates."""
    for template in templates:
        regex, _, _ = compile_path(template)
        match = regex.match(path)
        if match is not None:
            for name, value in match.groupdict().items():
                if "\x00" in value:
                    return f"path:{name}"
    return "path"


def nul_field(scope: Scope, templates: Callable[[], Iterable[str]]) -> str | None:
    """The parameter of a request that holds a NUL, ``None`` when none does; ``templates``
    gives the API's path templates (``/v1/jobs/{job_id}``), asked for only on a hit."""
    if "\x00" in scope["path"]:
        return _path_field(templates(), scope["path"])
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        for name, value in pairs:
            if "\x00" in name or "\x00" in value:
                return f"query:{name.replace(chr(0), '')}"
    for key, value in scope["headers"]:
        if b"\x00" in value:
            return f"header:{key.decode('latin-1')}"
    return None


class RefuseNul:
    """Answer a request with a NUL in a path, query or header parameter with ``422``."""

    def __init__(self, app: ASGIApp, templates: Callable[[], Iterable[str]]) -> None:
        self.app, self.templates = app, templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        field = nul_field(scope, self.templates) if scope["type"] == "http" else None
        if field is None:
            await self.app(scope, receive, send)
            return
        error = InvalidSpec([Problem((field,), WHY)])
        await json_response(error.body(), error.status)(scope, receive, send)
