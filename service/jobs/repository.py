"""Every query on jobs and their gradient checks and checkpoints, in one module (the writes
that change a job's status are :mod:`store.lifecycle`'s).

Whose jobs a caller sees is decided here, once, by :func:`visible`: every read of a job by
id or in a list goes through it, so a student's request for another's job finds nothing,
exactly as for an id that does not exist — the same query, the same answer."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import ColumnElement, Select, bindparam, select
from sqlalchemy.orm import Session

from store import datasets
from store.accounts import Caller, Role
from store.db import Database
from store.spec import InlineData
from store.tables import Checkpoint, GradientCheck, Job

Q = TypeVar("Q", bound=Select[Any])


def visible(query: Q, caller: Caller, owner: ColumnElement[str] | Any = Job.owner) -> Q:
    """``query`` narrowed to what ``caller`` may see: the one owner predicate. Instructors
    and admins see everything; a student only rows whose ``owner`` (a job's, by default, or
    a sweep's) is them. The name is a bound parameter named ``owner``, so a statement built
    once serves every student."""
    if caller.sees_all:
        return query
    return query.where(owner == bindparam("owner", caller.name))


def add_job(session: Session, job: Job) -> Job:
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, job_id: str, caller: Caller) -> Job | None:
    """The job, if it exists and ``caller`` may see it."""
    return session.scalars(visible(select(Job).where(Job.id == job_id), caller)).first()


def get_jobs(session: Session, job_ids: Sequence[str], caller: Caller) -> list[Job]:
    return list(session.scalars(visible(select(Job).where(Job.id.in_(job_ids)), caller)))


_BY_ID = select(*Job.__table__.c).where(Job.__table__.c.id == bindparam("job_id"))
# Built once each, so the fast reader compiles each once: every job, and a student's own.
_JOB_BY_ID = {True: _BY_ID, False: visible(_BY_ID, Caller("", Role.STUDENT))}


async def job_row(db: Database, job_id: str, caller: Caller) -> SimpleNamespace | None:
    """One job's columns as attributes, without ORM or Core execution overhead and without
    blocking the event loop on a round trip: the hot path of ``GET /v1/jobs/{id}``."""
    params = {"job_id": job_id} if caller.sees_all else {"job_id": job_id, "owner": caller.name}
    row = await db.first(_JOB_BY_ID[caller.sees_all], **params)
    return None if row is None else SimpleNamespace(**row)


def get_by_idempotency_key(session: Session, owner: str, key: str) -> Job | None:
    """The owner's job submitted with this key: keys are each owner's own."""
    query = select(Job).where(Job.owner == owner, Job.idempotency_key == key)
    return session.scalars(query).first()


def list_jobs(
    session: Session,
    caller: Caller,
    *,
    owner: str | None = None,
    status: str | None = None,
    model: str | None = None,
    name: str | None = None,
    tag: tuple[str, str | None] | None = None,
    sweep_id: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """Jobs ``caller`` may see, newest first, ``limit`` of them, with ids below the cursor
    ``before``; only ``owner``'s when given."""
    query = visible(select(Job).order_by(Job.id.desc()).limit(limit), caller)
    if owner is not None:
        query = query.where(Job.owner == owner)
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
