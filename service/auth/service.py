"""What the accounts API does: who may manage whom, on top of :mod:`store.accounts`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.errors import Conflict, Forbidden, NotFound
from service.jobs.schemas import iso
from store import accounts
from store.accounts import Caller, Role


def _may_manage(caller: Caller, role: Role, what: str) -> None:
    if not caller.may_manage(role):
        allowed = "students' accounts" if caller.role is Role.INSTRUCTOR else "no accounts"
        raise Forbidden(f"A {caller.role} may {what} {allowed}, not a {role}'s.")


def _view(user: Any, tokens: int) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "created_at": iso(user.created_at),
        "tokens": tokens,
    }


def create(session: Session, caller: Caller, name: str, role: Role) -> dict[str, Any]:
    """A new account and its first token (in the answer, the one time it is shown)."""
    _may_manage(caller, role, "create")
    try:
        user, token = accounts.create_user(session, name, role)
    except accounts.UserExists as exc:
        raise Conflict(exc.message) from None
    return {**_view(user, 1), "token": token}


def list_users(session: Session, caller: Caller) -> list[dict[str, Any]]:
    if not caller.sees_all:
        raise Forbidden("Only instructors and admins may list accounts.")
    return [_view(user, tokens) for user, tokens in accounts.list_users(session)]


def revoke(session: Session, caller: Caller, name: str) -> int:
    """Revoke every token of ``name``; how many were live."""
    if not caller.sees_all:
        raise Forbidden("Only instructors and admins may revoke accounts' tokens.")
    user = accounts.get_user(session, name)
    if user is None:
        raise NotFound(f"There is no account {name!r}.")
    _may_manage(caller, Role(user.role), "revoke")
    return accounts.revoke(session, name)
