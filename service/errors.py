"""One exception hierarchy that carries its HTTP status, and the handlers that render it.

Every error body has a ``detail`` and a one-sentence ``message``. Validation errors (422)
list each problem with its field path in ``loc`` (as FastAPI does) and in ``field`` (as a user
would write it: ``data.X[3]``), and never echo the input back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from store.spec import SPEC_TAGS, UNION_TAGS


class ErrorBody(BaseModel):
    """Every error response: a one-sentence ``message``, a ``type``, and ``detail`` (for 422,
    a list of ``{loc, field, msg, type}``, one per problem)."""

    message: str
    type: str
    detail: Any


class Problem(NamedTuple):
    """One thing wrong with a request: where (a field path) and what, in a sentence."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class GradlabError(Exception):
    """Base of gradlab's errors; ``status`` is the HTTP status it is answered with."""

    status = 500
    type = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"detail": self.message, "message": self.message, "type": self.type}

    def headers(self) -> dict[str, str] | None:
        """Headers the answer carries besides the body (``Retry-After``, say)."""
        return None


class NotFound(GradlabError):
    status = 404
    type = "not_found"


class Unauthorized(GradlabError):
    """No token, or one that is unknown or revoked: answered with ``WWW-Authenticate``."""

    status = 401
    type = "unauthorized"

    def __init__(self, message: str, challenge: str = "Bearer") -> None:
        super().__init__(message)
        self.challenge = challenge

    def headers(self) -> dict[str, str] | None:
        return {"WWW-Authenticate": self.challenge}


class Forbidden(GradlabError):
    """The caller is known, but their role may not do this."""

    status = 403
    type = "forbidden"


class NotAcceptable(GradlabError):
    """The answer cannot be given in the format asked for (a missing optional extra)."""

    status = 406
    type = "not_acceptable"


class Conflict(GradlabError):
    status = 409
    type = "conflict"


class HostNotAllowed(GradlabError):
    """The request's ``Host`` is not a name this server answers to (GRADLAB_ALLOWED_HOSTS):
    a page that reached it through a rebound DNS name, say."""

    status = 400
    type = "host_not_allowed"


class CrossSiteRefused(GradlabError):
    """A state-changing request a browser could have sent from another site's page without
    this server's consent (its ``Origin``, ``Sec-Fetch-Site`` or a form's content type)."""

    status = 403
    type = "cross_site_refused"


class InvalidSpec(GradlabError):
    """The request parsed, but its fields do not fit together or exceed the limits."""

    status = 422
    type = "invalid_spec"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(_summary(self.problems))

    def body(self) -> dict[str, Any]:
        return validation_body(self.problems)


class BodyTooLarge(StarletteHTTPException):
    """The body is above GRADLAB_MAX_BODY_BYTES. An HTTP exception, not a :class:`GradlabError`:
    it is raised while FastAPI reads the body, which passes only HTTP exceptions on."""

    kind = "body_too_large"

    def __init__(self, limit: int) -> None:
        message = f"The body is larger than this server's limit of {limit} bytes"
        super().__init__(413, f"{message} (GRADLAB_MAX_BODY_BYTES).")


class BodiesBusy(StarletteHTTPException):
    """As many large bodies as GRADLAB_MAX_LARGE_BODIES are being parsed already: 503 with
    ``Retry-After``, nothing read or stored. An HTTP exception for the reason above."""

    kind = "bodies_busy"
    retry_after = 1

    def __init__(self, slots: int, threshold: int) -> None:
        super().__init__(
            503,
            f"This server is already parsing {slots} request bodies larger than {threshold} "
            "bytes (GRADLAB_MAX_LARGE_BODIES, GRADLAB_LARGE_BODY_BYTES); retry in a moment.",
            headers={"Retry-After": str(self.retry_after)},
        )


def http_error_body(exc: StarletteHTTPException) -> dict[str, Any]:
    message = str(exc.detail)
    kind = getattr(exc, "kind", "http_error")
    return {"detail": message, "message": message, "type": kind}


class NotApplicable(GradlabError):
    """The resource exists, but what was asked of it does not apply (a plot for the wrong
    kind of model, say)."""

    status = 409
    type = "not_applicable"


class SandboxUnavailable(GradlabError):
    """Student code was sent where no sandbox may run it (fail closed: with
    GRADLAB_AUTH=required only bubblewrap will do). Nothing was stored."""

    status = 503
    type = "sandbox_unavailable"


class Busy(GradlabError):
    """A bounded resource (event streams, plot renderers) is used up: come back after
    ``retry_after`` seconds (sent as ``Retry-After``). Nothing was done or stored."""

    status = 503
    type = "busy"

    def __init__(self, message: str, retry_after: int, status: int = 503, kind: str = "busy"):
        super().__init__(message)
        self.retry_after, self.status, self.type = retry_after, status, kind

    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)}


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _field(loc: Sequence[str | int]) -> str:
    """A problem's field as a user writes it; ``body`` for the body as a whole."""
    return _dotted(loc) or "body"


def _summary(problems: Sequence[Problem]) -> str:
    if not problems:
        return "The request is not valid."
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{_field(first.loc)}: {first.msg}{more}"


def validation_body(problems: Sequence[Problem]) -> dict[str, Any]:
    return {
        "message": _summary(problems),
        "type": "invalid_request",
        "detail": [
            {"loc": ["body", *p.loc], "field": _field(p.loc), "msg": p.msg, "type": p.type}
            for p in problems
        ],
    }


def user_path(loc: Sequence[str | int]) -> list[str | int]:
    """An error's path as the user wrote it: without the tag pydantic adds after a
    discriminated union's field (``data.inline.X``) or a plain union's member label
    (``params.W.list[float]``)."""
    out: list[str | int] = []
    for part in loc:
        if out == ["body"] and part in SPEC_TAGS:  # which of POST /v1/jobs's bodies
            continue
        after_field = isinstance(part, str) and out and isinstance(out[-1], str)
        if after_field and (part in UNION_TAGS.get(str(out[-1]), ()) or "[" in str(part)):
            continue
        out.append(part)
    return out


def _problem_from_pydantic(error: dict[str, Any]) -> Problem:
    loc = user_path(error.get("loc", ()))
    where = loc[0] if loc else None
    if where in ("body", "query", "path", "header"):
        loc = loc[1:]
    msg = str(error.get("msg", "is not valid"))
    kind = str(error.get("type", "value_error"))
    if kind == "extra_forbidden":
        msg = "is not a field here; check its spelling or remove it."
    elif kind == "missing":
        msg = "is required."
    elif kind == "json_invalid":  # FastAPI's loc is the offset; the field is the body
        loc, msg = [], f"is not valid JSON: {error.get('ctx', {}).get('error', msg)}."
    elif kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        msg = f"unknown kind {error.get('ctx', {}).get('tag')!r}; expected one of {expected}."
    elif kind == "value_error":  # a validator's own sentence
        msg = msg.removeprefix("Value error, ")
    elif kind == "finite_number":
        msg = "must be a finite number (NaN and Infinity are not allowed)."
    if where in ("query", "path", "header") and loc:
        loc = [f"{where}:{loc[0]}", *loc[1:]]
    return Problem(tuple(loc), msg, kind)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


MALFORMED_BODY = (
    "The body is not valid: not UTF-8, not JSON or nested too deeply (its `field` is `body`), "
    "or a field's value (its `field` names it). `detail` lists each problem."
)
TOO_LARGE = "The body is larger than GRADLAB_MAX_BODY_BYTES (type `body_too_large`)."
_ERROR_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def document_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation that takes a body documents the answers any body can get, whatever
    the route: 422 (with :class:`ErrorBody`, not FastAPI's default shape) and 413. Routes
    that say more about their 422 keep their sentence."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            invalid = responses.get("422", {})
            if invalid.get("content") != _ERROR_BODY:
                responses["422"] = {"description": MALFORMED_BODY, "content": _ERROR_BODY}
            responses.setdefault("413", {"description": TOO_LARGE, "content": _ERROR_BODY})
    return schema


def install_handlers(app: FastAPI) -> None:
    """Render gradlab's errors, request validation errors and HTTP errors the same way, and
    document the body errors in the OpenAPI document (:func:`document_bodies`)."""
    openapi = app.openapi

    def documented() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_bodies(openapi())
        return app.openapi_schema

    app.openapi = documented  # type: ignore[method-assign]

    @app.exception_handler(GradlabError)
    async def _gradlab_error(_: Request, exc: GradlabError) -> Response:
        return json_response(exc.body(), exc.status, exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        problems = [_problem_from_pydantic(dict(e)) for e in exc.errors()]
        return json_response(validation_body(problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            # FastAPI's 400 for a body json.loads cannot read: not UTF-8, nested too deep, an
            # integer of more than 4300 digits. Unparseable JSON, as the API answers it: 422.
            problem = Problem((), f"is not valid JSON: {_why(exc.__cause__)}.", "json_invalid")
            return json_response(validation_body([problem]), 422)
        body = http_error_body(exc)
        return json_response(body, exc.status_code, headers=getattr(exc, "headers", None))


def _why(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"byte {cause.object[cause.start : cause.start + 1]!r} at {cause.start} is not UTF-8"
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    return str(cause).rstrip(".")
