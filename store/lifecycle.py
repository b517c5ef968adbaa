"""A job's life: every transition between its statuses (``store.status``), each fenced.

queued ──claim──▶ running ──▶ succeeded | failed | cancelled
  │                 │ └──hand back (shutdown) / lease expired──▶ queued / running again
  └──cancel──▶ cancelled                     (terminal jobs may be deleted)

An external run (``runner = external``: its owner's own loop logs its points) is submitted
running, with no claim, no lease and no attempt, so no worker ever takes it; its owner ends
it (finish: succeeded | failed, or cancel).

Every write that changes a job's status is a function here, fenced on the state the job
must still be in for the write to apply, so that of two writers racing for a job (the API
and a worker, or two workers) exactly one wins and the other changes nothing:

====================  ===================================================  =================
transition            fenced on                                            written by
====================  ===================================================  =================
submit                (a new row)                                          the API
claim                 ``status = queued`` (by fair share across owners)    a worker
take over a lost one  ``status = running AND attempts = :lost_attempt``,   a worker
                      its lease expired
heartbeat, flush      ``status = running AND attempts = :attempt``         the claim's worker
finish, hand back     the same, in the attempt's last flush                the claim's worker
cancel                ``status = queued``                                  the API
append, end external  ``status = running AND runner = external``           the API
request a cancel      ``status = running``                                 the API
delete                ``status`` terminal                                  the API
====================  ===================================================  =================

Each transition that applies is logged once, here, on the logger ``gradlab.jobs``
(:func:`transition`): the job, its owner, from → to and the attempt; with
GRADLAB_LOG_FORMAT=json those are the line's keys. It is logged when its fenced write
matched, in the transaction that commits it.

The worker's statements run on the connection of its claim or flush transaction (see
:mod:`store.queue` for how those lock); they are built once, at import, since building one
costs more than running it. The API's run in the request's session.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    Row,
    Table,
    bindparam,
    delete,
    func,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from store.status import TERMINAL, Outcome, Status
from store.tables import Attempt, Job

log = logging.getLogger("gradlab.jobs")


def transition(job_id: str, owner: str, before: Status, after: Status, attempt: int) -> None:
    """Log one transition that applied (see the module)."""
    if log.isEnabledFor(logging.INFO):
        fields: dict[str, Any] = {"job_id": job_id, "owner": owner, "attempt": attempt}
        fields.update({"from": str(before), "to": str(after)})
        log.info(
            "job %s of %s: %s -> %s (attempt %d)", job_id, owner, before, after, attempt,
            extra=fields,
        )  # fmt: skip


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


EXTERNAL = "external"
"""``jobs.runner`` of an external run (``store.spec.Runner``)."""

EXTERNAL_ENDS: tuple[Status, ...] = (Status.SUCCEEDED, Status.FAILED)
"""How an external run's owner may finish it (``POST /v1/jobs/{id}/finish``)."""


def external(**columns: Any) -> Job:
    """A new external run: running from the start, never claimed (no lease, no attempt)."""
    return Job(
        status=Status.RUNNING,
        runner=EXTERNAL,
        attempts=0,
        iterations_done=0,
        cancel_requested=False,
        started_at=utcnow(),
        **columns,
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
    jobs.c.owner,
    jobs.c.model_kind,
    jobs.c.created_at,
)
"""The columns a claim returns: what its worker needs to start or resume the job (and, for
its log line and metrics, whose it is, its model kind and when it was submitted)."""

CLAIM_VALUES = {
    "status": Status.RUNNING,
    "attempts": jobs.c.attempts + 1,
    "worker_id": bindparam("take_worker"),
    "lease_expires_at": bindparam("take_lease"),
    "started_at": func.coalesce(jobs.c.started_at, bindparam("take_now")),
}
# Fair share: the oldest queued job of the owner with the fewest jobs running right now; of
# owners running as few, the one whose oldest queued job is oldest. In one statement, by
# seeks on ix_jobs_status_owner_id alone, whatever the queue's length: a recursive walk
# visits each owner with a queued job (the next owner after the last), then counts its
# running jobs and finds its oldest queued one (O(waiting owners · log jobs)).
_step = jobs.alias("step")
_waiting = (
    select(func.min(jobs.c.owner).label("owner"))
    .where(jobs.c.status == Status.QUEUED)
    .cte("waiting", recursive=True)
)
_waiting = _waiting.union_all(
    select(
        select(func.min(_step.c.owner))
        .where(_step.c.status == Status.QUEUED, _step.c.owner > _waiting.c.owner)
        .scalar_subquery()
    ).where(_waiting.c.owner.is_not(None))
)
_run, _first, _pick = jobs.alias("run"), jobs.alias("oldest"), jobs.alias("pick")
_RANKED = (
    select(
        _waiting.c.owner,
        select(func.count())
        .select_from(_run)
        .where(_run.c.status == Status.RUNNING, _run.c.owner == _waiting.c.owner)
        .scalar_subquery()
        .label("working"),
        select(func.min(_first.c.id))
        .where(_first.c.status == Status.QUEUED, _first.c.owner == _waiting.c.owner)
        .scalar_subquery()
        .label("first_id"),
    )
    .where(_waiting.c.owner.is_not(None))
    .subquery("ranked")
)
_BY_FAIR_SHARE = (_RANKED.c.working, _RANKED.c.first_id)
# SQLite: the claim's transaction holds the write lock, so the first owner's first job is it.
_FAIR_QUEUED_SQLITE = (
    select(_RANKED.c.first_id).order_by(*_BY_FAIR_SHARE).limit(1).scalar_subquery()
)
# PostgreSQL: owners in that order, each owner's oldest queued job that no other worker is
# claiming (SKIP LOCKED, in a LATERAL evaluated owner by owner), the first one found. The
# ranking is sorted before the lateral runs, so it locks the one job it returns: a job
# another claim holds gives way to the same owner's next, or the next owner's.
_IN_ORDER = select(*_RANKED.c).order_by(*_BY_FAIR_SHARE).subquery("in_order")
_PICK = (
    select(_pick.c.id)
    .where(_pick.c.status == Status.QUEUED, _pick.c.owner == _IN_ORDER.c.owner)
    .order_by(_pick.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .lateral("picked")
)
_FAIR_QUEUED_POSTGRES = (
    select(_PICK.c.id).select_from(_IN_ORDER.join(_PICK, true())).limit(1).scalar_subquery()
)
_CLAIM_FAIR = {
    dialect: (
        update(jobs)
        .where(jobs.c.id == pick, jobs.c.status == Status.QUEUED)
        .values(CLAIM_VALUES)
        .returning(*CLAIMED)
    )
    for dialect, pick in (("sqlite", _FAIR_QUEUED_SQLITE), ("postgresql", _FAIR_QUEUED_POSTGRES))
}
_CLAIM_ONE = (
    update(jobs)
    .where(jobs.c.id == bindparam("take_id"), jobs.c.status == Status.QUEUED)
    .values(CLAIM_VALUES)
    .returning(*CLAIMED)
)
_NEW_ATTEMPT = attempts.insert()


def claim_by(
    conn: Connection,
    statement: Any,
    params: dict[str, Any],
    worker_id: str,
    lease: float,
    taken_from: Status = Status.QUEUED,
) -> Row[Any] | None:
    """Run a claim statement (an ``UPDATE jobs … RETURNING`` :data:`CLAIMED`, fenced on the
    status it takes the job from, with :data:`CLAIM_VALUES`); record the attempt it starts. Public
    for the benchmark's FIFO baseline, which claims with a statement of its own."""
    moment = utcnow()
    params.update(take_worker=worker_id, take_lease=time.time() + lease, take_now=moment)
    job = conn.execute(statement, params).first()
    if job is not None:
        attempt = {"job_id": job.id, "number": job.attempts, "start_iteration": job.iterations_done}
        conn.execute(_NEW_ATTEMPT, {**attempt, "worker_id": worker_id, "started_at": moment})
        transition(job.id, job.owner, taken_from, Status.RUNNING, job.attempts)
    return job


def claim_queued(
    conn: Connection, worker_id: str, lease_seconds: float, job_id: str | None = None
) -> Row[Any] | None:
    """Claim the next queued job by fair share — the oldest queued job of the owner with the
    fewest jobs running, ties to the owner whose oldest queued job is oldest — (or ``job_id``,
    if it is still queued): running, leased to ``worker_id`` for ``lease_seconds``, under a
    new attempt; its :data:`CLAIMED` columns, or None when there is no such job."""
    if job_id is None:
        return claim_by(conn, _CLAIM_FAIR[conn.dialect.name], {}, worker_id, lease_seconds)
    return claim_by(conn, _CLAIM_ONE, {"take_id": job_id}, worker_id, lease_seconds)


# --- take over a job whose worker was lost --------------------------------------------------

_EXPIRED = (
    select(jobs.c.id, jobs.c.attempts, jobs.c.cancel_requested, jobs.c.owner)
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
_RECLAIM = update(jobs).where(*_STILL_LOST).values(CLAIM_VALUES).returning(*CLAIMED)
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
    conn: Connection,
    worker_id: str,
    lease_seconds: float,
    max_attempts: int,
    ended: Callable[[Connection, str], object] = lambda conn, job_id: None,
) -> Row[Any] | None:
    """Take over the running job whose lease expired first: record its attempt as lost, then
    claim it as :func:`claim_queued` does. A job that was asked to cancel is cancelled
    instead, and one that has lost ``max_attempts`` attempts fails with ``worker_lost``
    (``ended(conn, job_id)`` runs for each, in the transaction); then the next expired lease
    is tried. None when no lease has expired."""
    while (lost := conn.execute(_EXPIRED, {"now": time.time()}).first()) is not None:
        end_attempt(conn, lost.id, lost.attempts, Outcome.LOST)
        moment = utcnow()
        fence = {"lost_id": lost.id, "lost_attempt": lost.attempts}
        count = conn.execute(_LOST_ATTEMPTS, {"job_id": lost.id}).scalar_one()
        if lost.cancel_requested:
            conn.execute(_CANCEL_LOST, {**fence, "ended": moment})
            transition(lost.id, lost.owner, Status.RUNNING, Status.CANCELLED, lost.attempts)
        elif count >= max_attempts:
            message = (
                f"The job's worker was lost {count} times (GRADLAB_MAX_ATTEMPTS is "
                f"{max_attempts}); it is not retried again."
            )
            conn.execute(_FAIL_LOST, {**fence, "ended": moment, "message": message})
            transition(lost.id, lost.owner, Status.RUNNING, Status.FAILED, lost.attempts)
        else:
            return claim_by(conn, _RECLAIM, fence, worker_id, lease_seconds, Status.RUNNING)
        ended(conn, lost.id)
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


def hold(
    conn: Connection, job_id: str, attempt: int, values: Mapping[str, Any], owner: str = "-"
) -> bool:
    """Set ``values`` on the job if attempt number ``attempt`` still holds its claim; True
    when the job has been asked to cancel. Raises :class:`LostClaim` when the claim is gone
    (its lease expired and another worker took the job over, or the job was deleted). A
    ``status`` among the values is the attempt's end: logged as ``owner``'s job's transition."""
    params = {f"set_{name}": value for name, value in values.items()}
    params.update(fence_id=job_id, fence_attempt=attempt)
    row = conn.execute(_fenced_update(tuple(values)), params).first()
    if row is None:
        raise LostClaim(f"job {job_id}: attempt {attempt} no longer holds it")
    if "status" in values:
        transition(job_id, owner, Status.RUNNING, Status(values["status"]), attempt)
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


def cancel_queued(session: Session, job_id: str, owner: str = "-", attempts: int = 0) -> bool:
    """Cancel ``owner``'s job that no worker has claimed yet (after ``attempts`` attempts);
    False when it is not queued (a worker claimed it meanwhile)."""
    changed = _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == Status.QUEUED)
        .values(status=Status.CANCELLED, finished_at=utcnow(), cancel_requested=True),
    )
    if changed:
        transition(job_id, owner, Status.QUEUED, Status.CANCELLED, attempts)
    return changed


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


def lock_external(session: Session, job: Job) -> None:
    """Take the external run's row for the rest of the transaction and read it again:
    ``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the write transaction (``BEGIN
    IMMEDIATE``) holds the database's write lock already. Appends and ends of one run are
    thereby serialised, and each sees what the one before it committed."""
    session.refresh(job, with_for_update=True)


def appendable(job: Job) -> bool:
    """Whether points may be appended to the job (read under :func:`lock_external`)."""
    return job.runner == EXTERNAL and job.status == Status.RUNNING


def end_external(session: Session, job_id: str, status: Status) -> bool:
    """End a running external run as ``status`` (one of :data:`EXTERNAL_ENDS`, or
    cancelled); False when it is not a running external run."""
    if status not in (*EXTERNAL_ENDS, Status.CANCELLED):
        raise ValueError(f"an external run cannot end {status}")
    return _changed(
        session,
        update(Job)
        .where(Job.id == job_id, Job.status == Status.RUNNING, Job.runner == EXTERNAL)
        .values(status=status, finished_at=utcnow()),
    )
