"""A course lab for the auth tests: accounts of every role made through ``store.accounts``
(as ``gradlab users add`` makes them), with their tokens."""

from __future__ import annotations

from dataclasses import dataclass, field

from store import accounts
from store.accounts import Role
from store.db import Database
from tests.conftest import make_settings


@dataclass
class Lab:
    url: str
    tokens: dict[str, str] = field(default_factory=dict)

    def _db(self) -> Database:
        return Database(self.url, make_settings(self.url))

    def add(self, name: str, role: Role) -> str:
        db = self._db()
        try:
            with db.write_session() as session:
                token = accounts.create_user(session, name, role)[1]
        finally:
            db.dispose()
        self.tokens[name] = token
        return token

    def revoke(self, name: str) -> None:
        db = self._db()
        try:
            with db.write_session() as session:
                accounts.revoke(session, name)
        finally:
            db.dispose()

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


def make_lab(url: str) -> Lab:
    """alice and bob (students), ian (instructor), ada (admin), and a revoked token of
    alice's (``alice-revoked``) beside her live one."""
    lab = Lab(url)
    revoked = lab.add("alice", Role.STUDENT)
    lab.revoke("alice")
    db = lab._db()
    try:
        with db.write_session() as session:
            lab.tokens["alice"] = accounts.issue_token(session, "alice")
    finally:
        db.dispose()
    lab.tokens["alice-revoked"] = revoked
    lab.add("bob", Role.STUDENT)
    lab.add("ian", Role.INSTRUCTOR)
    lab.add("ada", Role.ADMIN)
    return lab
