"""What the jobs API does, between the thin router and the repository."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.errors import Conflict, InvalidSpec, NotApplicable, NotFound, Problem
from service.jobs import repository
from service.jobs.validation import check_spec
from store import queue
from store.codec import unpack_state
from store.db import Database
from store.settings import Settings
from store.spec import JobSpec
from store.tables import Job, new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds (SQLite hands datetimes back naive, in UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def job_view(job: Job | SimpleNamespace) -> dict[str, Any]:
    """The job as the API shows it (see ``schemas.Job``), from an ORM object or the columns
    of :func:`repository.job_row`."""
    error = None
    if job.error_type is not None:
        error = {
            "type": job.error_type,
            "message": job.error_message,
            "iteration": job.error_iteration,
        }
    return {
        "id": job.id,
        "name": job.name,
        "tags": job.tags or {},
        "status": job.status,
        "spec": job.spec,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "iterations_done": job.iterations_done,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "gradient_checks_passed": job.checks_passed,
        "summary": {
            "final_loss": job.final_loss,
            "final_accuracy": job.final_accuracy,
            "best_loss": job.best_loss,
            "best_iteration": job.best_iteration,
        },
        "error": error,
        "sweep_id": job.sweep_id,
    }


def request_hash(spec: JobSpec) -> str:
    return hashlib.sha256(orjson.dumps(spec.normalised(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def new_job(spec: JobSpec, settings: Settings, sweep_id: str | None = None) -> Job:
    """A queued job for a spec, after the checks that need several fields at once."""
    check_spec(spec, settings)
    normalised = spec.normalised()
    return Job(
        id=new_id(),
        name=spec.name,
        tags=dict(spec.tags),
        status="queued",
        model_kind=spec.model.kind,
        spec=normalised,
        iterations=spec.iterations,
        created_at=utcnow(),
        iterations_done=0,
        attempts=0,
        cancel_requested=False,
        sweep_id=sweep_id,
    )


def submit(
    session: Session, spec: JobSpec, settings: Settings, idempotency_key: str | None = None
) -> tuple[Job, bool]:
    """Store a queued job; ``(job, created)``. A key seen before returns that key's job."""
    job = new_job(spec, settings)
    if idempotency_key is None:
        repository.add_job(session, job)
        queue.notify(session)
        return job, True

    digest = request_hash(spec)
    existing = repository.get_by_idempotency_key(session, idempotency_key)
    if existing is None:
        job.idempotency_key, job.request_hash = idempotency_key, digest
        try:
            with session.begin_nested():
                repository.add_job(session, job)
        except IntegrityError:  # another request with this key committed meanwhile
            existing = repository.get_by_idempotency_key(session, idempotency_key)
            if existing is None:
                raise
        else:
            queue.notify(session)
            return job, True
    if existing.request_hash != digest:
        raise InvalidSpec(
            [
                Problem(
                    ("header:Idempotency-Key",),
                    "this Idempotency-Key was already used with a different job spec; "
                    "use a new key for a new job.",
                    "idempotency_key_reused",
                )
            ]
        )
    return existing, False


async def view_async(db: Database, job_id: str) -> dict[str, Any]:
    """The job's view, straight from one indexed read, on the event loop."""
    row = await repository.job_row(db, job_id)
    if row is None:
        raise NotFound(f"There is no job {job_id!r}.")
    return job_view(row)


def get(session: Session, job_id: str) -> Job:
    job = repository.get_job(session, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id!r}.")
    return job


def cancel(session: Session, job_id: str) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next flush."""
    job = get(session, job_id)
    if job.status in ("succeeded", "failed"):
        raise Conflict(f"Job {job_id} already {job.status}; there is nothing to cancel.")
    if job.status == "queued" and not repository.cancel_queued(session, job_id, utcnow()):
        session.refresh(job)  # a worker claimed it meanwhile (PostgreSQL's read committed)
    if job.status == "running":
        repository.request_cancel(session, job_id)
    session.refresh(job)
    return job


def delete(session: Session, job_id: str) -> None:
    job = get(session, job_id)
    if not repository.delete_job(session, job_id):
        raise Conflict(
            f"Job {job_id} is {job.status}; cancel it and wait until it stops before deleting it."
        )


def gradient_checks(session: Session, job_id: str) -> list[dict[str, Any]]:
    get(session, job_id)
    return [row.result for row in repository.gradient_checks(session, job_id)]


def parameters(session: Session, job_id: str) -> dict[str, Any]:
    job = get(session, job_id)
    row = repository.checkpoint(session, job_id)
    if row is None:
        raise NotApplicable(f"Job {job_id} is {job.status} and has recorded no parameters yet.")
    state = unpack_state(row.state)
    params = state["params"]
    return {
        "iteration": state["iteration"],
        "parameters": {name: a.tolist() for name, a in params.items()},
        "shapes": {name: list(a.shape) for name, a in params.items()},
    }
