"""The one query a scrape makes: jobs counted by status."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.tables import Job

_BY_STATUS = select(Job.status, func.count()).group_by(Job.status)


def jobs_by_status(session: Session) -> dict[str, int]:
    """Every job's status → how many jobs have it (one grouped read of the status index)."""
    return {str(status): int(n) for status, n in session.execute(_BY_STATUS).all()}
