"""A job's life: every transition between its statuses (``store.status``), each fenced.

queued ──claim──▶ running ──▶ succeeded | failed | cancelled
  │                 │ └──hand back (shutdown) / lease expired──▶ queued / running again
  └──cancel──▶ cancelled                     (terminal jobs may be deleted)

Every write that changes a job's status is a function here, fenced on the state the job
must still be in for the write to apply, so that of two writers racing for a job (the API
and a worker, or two workers) exactly one wins and the other changes nothing:

====================  ===================================================  =================
transition            fenced on                                            written by
====================  ===================================================  =================
submit                (a new row)                                          the API
claim                 ``status = queued`` (the oldest such job)            a worker
take over a lost one  ``status = running AND attempts = :lost_attempt``,   a worker
                      its lease expired
heartbeat, flush      ``status = running AND attempts = :attempt``         the claim's worker
finish, hand back     the same, in the attempt's last flush                the claim's worker
cancel                ``status = queued``                                  the API
request a cancel      ``status = running``                                 the API
delete                ``status`` terminal                                  the API
====================  ===================================================  =================

The worker's statements run on the connection of its claim or flush transaction (see
:mod:`store.queue` for how those lock); they are built once, at import, since building one
costs more than running it. The API's run in the request's session.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Row, Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from store.status import TERMINAL, Outcome, Status
from store.tables import Attempt, Job


class LostClaim(Exception):
    """This worker no longer holds the job: another worker took it over, or it was deleted."""


def utcnow() -> datetime:
    return datetime.now(UTC)


jobs = cast(Table, Job.__table__)
attempts = cast(Table, Attempt.__table__)


# --- submit -------------------------------------------------------------------------------


def queued(**columns: Any) -> Job:
    """A new job as it is submitted: queued, never claimed, nothing recorded, no cancel asked."""
    return Job(
        status=Status.QUEUED, attempts=0, iterations_done=0, cancel_requested=False, **columns
    )


# --- claim --------------------------------------------------------------------------------

CLAIMED = (
    jobs.c.id,
    jobs.c.attempts,
    jobs.c.spec,
    jobs.c.iterations_done,
    jobs.c.best_loss,
    jobs.c.best_iteration,
    jobs.c.checks_passed,
)
"""The columns a claim returns: what its worker needs to start or resume the job."""

_CLAIM_VALUES = {
    "status": Status.RUNNING,
    "attempts": jobs.c.attempts + 1,
    "worker_id": bindparam("take_worker"),
    "lease_expires_at": bindparam("take_lease"),
    "started_at": func.coalesce(jobs.c.started_at, bindparam("take_now")),
}
# The oldest queued job, in one statement: on PostgreSQL the subquery skips rows other
# workers are claiming; on SQLite the transaction already holds the write lock.
_OLDEST_QUEUED = (
    select(jobs.c.id)
    .where(jobs.c.status == Status.QUEUED)
    .order_by(jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_CLAIM_OLDEST = (
    update(jobs)
    .where(jobs.c.id == _OLDEST_QUEUED, jobs.c.status == Status.QUEUED)
    .values(_CLAIM_VALUES)
    .returning(*CLAIMED)
)
_CLAIM_ONE = (
    update(jobs)
    .where(jobs.c.id == bindparam("take_id"), jobs.c.status == Status.QUEUED)
    .values(_CLAIM_VALUES)
    .returning(*CLAIMED)
)
_NEW_ATTEMPT = attempts.insert()


def _claim(
    conn: Connection, statement: Any, params: dict[str, Any], worker_id: str, lease: float
) -> Row[Any] | None:
    """Run one of the claim statements; record the attempt it starts."""
    moment = utcnow()
    params.update(take_worker=worker_id, take_lease=time.time() + lease, take_now=moment)
    job = conn.execute(statement, params).first()
    if job is not None:
        attempt = {"job_id": job.id, "number": job.attempts, "start_iteration": job.iterations_done}
        conn.execute(_NEW_ATTEMPT, {**attempt, "worker_id": worker_id, "started_at": moment})
    return job


def claim_queued(
    conn: Connection, worker_id: str, lease_seconds: float, job_id: str | None = None
) -> Row[Any] | None:
    """Claim the oldest queued job (or ``job_id``, if it is still queued): running, leased to
    ``worker_id`` for ``lease_seconds``, under a new attempt; its :data:`CLAIMED` columns, or
    None when there is no such job."""
    if job_id is None:
        return _claim(conn, _CLAIM_OLDEST, {}, worker_id, lease_seconds)
    return _claim(conn, _CLAIM_ONE, {"take_id": job_id}, worker_id, lease_seconds)


# --- take over a job whose worker was lost --------------------------------------------------

_EXPIRED = (
    select(jobs.c.id, jobs.c.attempts, jobs.c.cancel_requested)
    .where(jobs.c.status == Status.RUNNING, jobs.c.lease_expires_at < bindparam("now"))
    .order_by(jobs.c.lease_expires_at)
    .limit(1)
    .with_for_update(skip_locked=True)
)
# The row is locked by _EXPIRED; the fence says so again, in the statement.
_STILL_LOST = (
    jobs.c.id == bindparam("lost_id"),
    jobs.c.status == Status.RUNNING,
    jobs.c.attempts == bindparam("lost_attempt"),
)
_RECLAIM = update(jobs).where(*_STILL_LOST).values(_CLAIM_VALUES).returning(*CLAIMED)
_ENDED: dict[str, Any] = dict(worker_id=None, lease_expires_at=None, finished_at=bindparam("ended"))
_CANCEL_LOST = update(jobs).where(*_STILL_LOST).values(status=Status.CANCELLED, **_ENDED)
_FAIL_LOST = (
    update(jobs)
    .where(*_STILL_LOST)
    .values(
        status=Status.FAILED, error_type="worker_lost", error_message=bindparam("message"), **_ENDED
    )
)
_LOST_ATTEMPTS = (
    select(func.count())
    .select_from(attempts)
    .where(attempts.c.job_id == bindparam("job_id"), attempts.c.outcome == Outcome.LOST)
)
_END_ATTEMPT = (
    update(attempts)
    .where(attempts.c.job_id == bindparam("end_job"), attempts.c.number == bindparam("end_number"))
    .values(outcome=bindparam("outcome"), ended_at=bindparam("ended_at"))
)


def end_attempt(conn: Connection, job_id: str, attempt: int, outcome: Outcome) -> None:
    """Record how attempt number ``attempt`` at the job ended."""
    conn.execute(
        _END_ATTEMPT,
        {"end_job": job_id, "end_number": attempt, "outcome": outcome, "ended_at": utcnow()},
    )


def claim_expired(
    conn: Connection, worker_id: str, lease_seconds: float, max_attempts: int
) -> Row[Any] | None:
    """Take over the running job whose lease expired first: record its attempt as lost, then
    claim it as :func:`claim_queued` does. A job that was asked to cancel is cancelled
    instead, and one that has lost ``max_attempts`` attempts fails with ``worker_lost``; then
    the next expired lease is tried. None when no lease has expired."""
    while (lost := conn.execute(_EXPIRED, {"now": time.time()}).first()) is not None:
        end_attempt(conn, lost.id, lost.attempts, Outcome.LOST)
        moment = utcnow()
        fence = {"lost_id": lost.id, "lost_attempt": lost.attempts}
        count = conn.execute(_LOST_ATTEMPTS, {"job_id": lost.id}).scalar_one()
        if lost.cancel_requested:
            conn.execute(_CANCEL_LOST, {**fence, "ended": moment})
        elif count >= max_attempts:
            message = (
                f"The job's worker was lost {count} times (GRADLAB_MAX_ATTEMPTS is "
                f"{max_attempts}); it is not retried again."
            )
            conn.execute(_FAIL_LOST, {**fence, "ended": moment, "message": message})
        else:
            return _claim(conn, _RECLAIM, fence, worker_id, lease_seconds)
    return None


# --- the claim's own writes: heartbeat, flush, finish ----------------------------------------


@functools.cache
def _fenced_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE jobs SET … WHERE id = :fence_id AND attempts = :fence_attempt AND status =
    'running' RETURNING cancel_requested``, built once per set of columns."""
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("fence_id"),
            jobs.c.attempts == bindparam("fence_attempt"),
            jobs.c.status == Status.RUNNING,
        )
        .values({name: bindparam(f"set_{name}") for name in columns})
        .returning(jobs.c.cancel_requested)
    )


def hold(conn: Connection, job_id: str, attempt: int, values: Mapping[str, Any]) -> bool:
    """Set ``values`` on the job if attempt number ``attempt`` still holds its claim; True
    when the job has been asked to cancel. Raises :class:`LostClaim` when the claim is gone
    (its lease expired and another worker took the job over, or the job was deleted)."""
    params = {f"set_{name}": value for name, value in values.items()}
    params.update(fence_id=job_id, fence_attempt=attempt)
    row = conn.execute(_fenced_update(tuple(values)), params).first()
    if row is None:
        raise LostClaim(f"job {job_id}: attempt {attempt} no longer holds it")
    return bool(row.cancel_requested)


@dataclass(frozen=True)
class Finish:
    """How an attempt ends: the job's new status and the attempt's outcome."""

    status: Status
    outcome: Outcome
    error: Mapping[str, Any] | None = None

    def job_values(self) -> dict[str, Any]:
        """What the attempt's last :func:`hold` sets: the new status, the claim cleared, and
        (unless the job is handed back) when it finished and why it failed."""
        values: dict[str, Any] = {
            "status": self.status,
            "worker_id": None,
            "lease_expires_at": None,
        }
        if self.status == Status.QUEUED:  # another worker resumes it from the checkpoint
            return values
        values["finished_at"] = utcnow()
        if self.error is not None:
            values.update(
                error_type=self.error["type"],
                error_message=self.error["message"],
                error_iteration=self.error.get("iteration"),
            )
        return values


SUCCEEDED = Finish(Status.SUCCEEDED, Outcome.SUCCEEDED)
CANCELLED = Finish(Status.CANCELLED, Outcome.CANCELLED)
RELEASED = Finish(Status.QUEUED, Outcome.RELEASED)


def failed(error: Mapping[str, Any]) -> Finish:
    """The attempt fails the job with ``error``: ``{type, message[, iteration]}``."""
    return Finish(Status.FAILED, Outcome.FAILED, error)


# --- the API's: cancel, delete ---------------------------------------------------------------


def _changed(session: Session, statement: Any) -> bool:
    """Run an UPDATE/DELETE; whether it changed exactly one row."""
    result = cast(CursorResult, session.execute(statement))
    return result.rowcount == 1


def cancel_queued(session: Session, job_id: str) -> bool:
    """Cancel a job that no worker has claimed yet; False when it is not queued (a worker
    claimed it meanwhile)."""
    return _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == Status.QUEUED)
        .values(status=Status.CANCELLED, finished_at=utcnow(), cancel_requested=True),
    )


def request_cancel(session: Session, job_id: str) -> bool:
    """Ask the worker running a job to stop at its next flush (which ends it cancelled);
    False when it is not running."""
    return _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == Status.RUNNING)
        .values(cancel_requested=True),
    )


def delete_terminal(session: Session, job_id: str) -> bool:
    """Delete a finished job; its points, checks, attempts and checkpoint go with it. False
    when it is not finished."""
    return _changed(session, delete(Job).where(Job.id == job_id, Job.status.in_(TERMINAL)))
