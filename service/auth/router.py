"""``/v1/me`` and ``/v1/users``: who the token is, and accounts for instructors and admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.auth import schemas, service
from service.deps import CallerDep, DatabaseDep, ReadSessionDep
from service.errors import ErrorBody, json_response

router = APIRouter(prefix="/v1", tags=["accounts"])

FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "This role may not do this."}
}


@router.get("/me", response_model=schemas.Me, summary="Who this token is")
async def me(caller: CallerDep) -> Response:
    return json_response({"name": caller.name, "role": caller.role})


@router.post(
    "/users",
    status_code=201,
    response_model=schemas.CreatedUser,
    responses={
        **FORBIDDEN,
        409: {"model": ErrorBody, "description": "An account has this name already."},
    },
    summary="Create an account and its first token",
    description="Admins create any account; instructors students' only. The token is in "
    "the answer, the one time it is shown: only its hash is kept.",
)
def create_user(db: DatabaseDep, caller: CallerDep, body: schemas.NewUser) -> Response:
    with db.write_session() as session:
        created = service.create(session, caller, body.name, body.role)
    return json_response(created, 201, {"Cache-Control": "no-store"})


@router.get(
    "/users",
    response_model=schemas.Users,
    responses=FORBIDDEN,
    summary="Every account, with its number of live tokens",
)
def list_users(session: ReadSessionDep, caller: CallerDep) -> Response:
    return json_response({"users": service.list_users(session, caller)})


@router.post(
    "/users/{name}/revoke",
    response_model=schemas.Revoked,
    responses={**FORBIDDEN, 404: {"model": ErrorBody, "description": "No account by this name."}},
    summary="Revoke every token of an account at once",
    description="Admins revoke anyone's; instructors students' only. The tokens stop working "
    "at once on this server and within a second on every other.",
)
def revoke(request: Request, db: DatabaseDep, caller: CallerDep, name: str) -> Response:
    with db.write_session() as session:
        revoked = service.revoke(session, caller, name)
    request.app.state.tokens.forget(name)
    return json_response({"name": name, "revoked": revoked})
