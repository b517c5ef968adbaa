"""Accounts and API tokens: the roles, the name rule, how a token is made and stored, and
every write on them. The command line (``gradlab users``) and the API (``/v1/users``) both
call these, so an account made either way is the same.

A token is ``glab_`` and 32 random bytes in URL-safe base64 (256 bits), shown once when it
is issued and stored only as its SHA-256: a copy of the database holds nothing that signs
anyone in. SHA-256 (not a slow password hash) is enough for a random 256-bit secret, and it
keeps the check cheap.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.tables import LOCAL_USER, ApiToken, User

TOKEN_PREFIX = "glab_"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
NAME_RULE = (
    "must be 1-64 characters: lowercase letters, digits, '.', '_' or '-', starting with a "
    "letter or a digit."
)
_NAME = re.compile(NAME_PATTERN)


class Role(enum.StrEnum):
    """What an account may do: ``admin`` manages accounts, ``instructor`` manages students
    and sees (and cancels) every job, ``student`` sees only their own work."""

    ADMIN = "admin"
    INSTRUCTOR = "instructor"
    STUDENT = "student"


@dataclass(frozen=True)
class Caller:
    """Who a request is from: an account's name and role."""

    name: str
    role: Role

    @property
    def sees_all(self) -> bool:
        """Instructors and admins see every account's jobs and sweeps; students their own."""
        return self.role is not Role.STUDENT

    def may_manage(self, role: Role) -> bool:
        """Whether this caller may create or revoke accounts of ``role``."""
        if self.role is Role.ADMIN:
            return True
        return self.role is Role.INSTRUCTOR and role is Role.STUDENT


LOCAL = Caller(LOCAL_USER, Role.ADMIN)
"""The one caller of ``GRADLAB_AUTH=off``."""


class AccountError(ValueError):
    """An account operation that cannot be done; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class NoSuchUser(AccountError):
    pass


class UserExists(AccountError):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token() -> str:
    """A fresh token: the prefix (so a leaked one is recognisable) and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a token, and what it is looked up by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise AccountError("name", f"{name[:80]!r} is not a valid account name: it {NAME_RULE}")
    return name


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise AccountError("role", f"{text[:40]!r} is not a role; use one of {roles}.") from None


def get_user(session: Session, name: str) -> User | None:
    return session.get(User, name)


def list_users(session: Session) -> list[tuple[User, int]]:
    """Every account, by name, with how many live (unrevoked) tokens it has."""
    live = (
        select(ApiToken.user_name, func.count().label("n"))
        .where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_name)
        .subquery()
    )
    query = (
        select(User, func.coalesce(live.c.n, 0))
        .outerjoin(live, live.c.user_name == User.name)
        .order_by(User.name)
    )
    return [(user, int(n)) for user, n in session.execute(query).all()]


def issue_token(session: Session, name: str) -> str:
    """A new token for an existing account (its other tokens keep working); shown once."""
    if get_user(session, name) is None:
        raise NoSuchUser("name", f"There is no account {name!r}.")
    token = new_token()
    session.add(ApiToken(user_name=name, token_hash=token_hash(token), created_at=utcnow()))
    session.flush()
    return token


def create_user(session: Session, name: str, role: Role) -> tuple[User, str]:
    """A new account and its first token."""
    check_name(name)
    if get_user(session, name) is not None:
        raise UserExists("name", f"There is already an account {name!r}.")
    user = User(name=name, role=role.value, created_at=utcnow())
    session.add(user)
    session.flush()
    return user, issue_token(session, name)


def revoke(session: Session, name: str) -> int:
    """Revoke every live token of the account at once; how many there were."""
    if get_user(session, name) is None:
        raise NoSuchUser("name", f"There is no account {name!r}.")
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.user_name == name, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
