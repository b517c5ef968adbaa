"""Every query on sweeps, narrowed by the one owner predicate (``jobs.repository.visible``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.jobs.repository import visible
from store.accounts import Caller
from store.tables import Sweep


def get_sweep(session: Session, sweep_id: str, caller: Caller) -> Sweep | None:
    """The sweep, if it exists and ``caller`` may see it."""
    query = visible(select(Sweep).where(Sweep.id == sweep_id), caller, Sweep.owner)
    return session.scalars(query).first()


def list_sweeps(
    session: Session,
    caller: Caller,
    *,
    owner: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Sweep]:
    """Sweeps ``caller`` may see, newest first, with ids below the cursor ``before``."""
    query = visible(select(Sweep).order_by(Sweep.id.desc()).limit(limit), caller, Sweep.owner)
    if owner is not None:
        query = query.where(Sweep.owner == owner)
    if before is not None:
        query = query.where(Sweep.id < before)
    return list(session.scalars(query))
