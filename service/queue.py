"""The API's side of the job queue: telling idle workers that a job is waiting.

On PostgreSQL a ``NOTIFY`` in the submitting transaction wakes workers blocked in ``LISTEN``
the moment it commits (and never for a transaction that rolls back). SQLite has no such
channel; its workers poll every ``GRADLAB_POLL_SECONDS``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "gradlab_jobs"


def notify(session: Session) -> None:
    """Wake idle workers when this transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))
