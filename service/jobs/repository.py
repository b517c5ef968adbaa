"""Every query on jobs and their gradient checks and checkpoints, in one module (the writes
that change a job's status are :mod:`store.lifecycle`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import numpy as np
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from store import datasets
from store.db import Database
from store.spec import InlineData
from store.tables import Checkpoint, GradientCheck, Job


def add_job(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def get_jobs(session: Session, job_ids: Sequence[str]) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.id.in_(job_ids))))


_JOB_BY_ID = select(*Job.__table__.c).where(Job.__table__.c.id == bindparam("job_id"))


async def job_row(db: Database, job_id: str) -> SimpleNamespace | None:
    """One job's columns as attributes, without ORM or Core execution overhead and without
    blocking the event loop on a round trip: the hot path of ``GET /v1/jobs/{id}``."""
    row = await db.first(_JOB_BY_ID, job_id=job_id)
    return None if row is None else SimpleNamespace(**row)


def get_by_idempotency_key(session: Session, key: str) -> Job | None:
    return session.scalars(select(Job).where(Job.idempotency_key == key)).first()


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    model: str | None = None,
    name: str | None = None,
    tag: tuple[str, str | None] | None = None,
    sweep_id: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """Jobs newest first, ``limit`` of them, with ids below the cursor ``before``."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Job.status == status)
    if model is not None:
        query = query.where(Job.model_kind == model)
    if name is not None:
        query = query.where(Job.name == name)
    if sweep_id is not None:
        query = query.where(Job.sweep_id == sweep_id)
    if tag is not None:
        key, value = tag
        element = Job.tags[key].as_string()
        query = query.where(element.is_not(None) if value is None else element == value)
    if before is not None:
        query = query.where(Job.id < before)
    return list(session.scalars(query))


def put_dataset(session: Session, data: InlineData) -> None:
    """Store inline arrays once by content (a no-op when their hash is stored already)."""
    datasets.put(session, np.asarray(data.X), np.asarray(data.y), data.reference())


def dataset(session: Session, sha256: str) -> tuple[np.ndarray, np.ndarray] | None:
    return datasets.get(session, sha256)


def gradient_checks(session: Session, job_id: str) -> list[GradientCheck]:
    query = (
        select(GradientCheck)
        .where(GradientCheck.job_id == job_id)
        .order_by(GradientCheck.iteration, GradientCheck.reference)
    )
    return list(session.scalars(query))


def checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    return session.get(Checkpoint, job_id)
