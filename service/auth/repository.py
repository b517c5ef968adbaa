"""The queries of authentication: the account behind a token's hash (the one read on the
request path, when the cache does not have it). Writes on accounts are
:mod:`store.accounts`'s, which the command line shares."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from store.accounts import Caller, Role
from store.db import Database
from store.tables import ApiToken, User

_CALLER_BY_HASH = (
    select(User.name, User.role)
    .join(ApiToken, ApiToken.user_name == User.name)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None))
)


async def caller_by_hash(db: Database, token_hash: str) -> Caller | None:
    """The account whose live (unrevoked) token has this hash, or None: one indexed read
    (``token_hash`` is unique), on the event loop without a thread hop."""
    row = await db.first(_CALLER_BY_HASH, token_hash=token_hash)
    return None if row is None else Caller(row["name"], Role(row["role"]))
