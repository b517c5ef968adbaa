"""The job queue's protocol: telling idle workers a job waits; claim, heartbeat, flush and
finish, each fenced.

On PostgreSQL a ``NOTIFY`` in the submitting transaction wakes workers blocked in ``LISTEN``
the moment it commits (and never for a transaction that rolls back). SQLite has no such
channel; its workers poll every ``GRADLAB_POLL_SECONDS``.

A claim is ``(job id, attempt number)``. Claiming increments ``jobs.attempts`` and records an
``attempts`` row; every later write for the job — points, checks, checkpoint, lease renewals,
the final status — is one transaction that starts with
``UPDATE jobs … WHERE id = :id AND attempts = :attempt AND status = 'running'``. When that
matches no row, the claim is gone (its lease expired and another worker took the job over, or
the job was deleted) and the whole transaction is rolled back: a worker presumed dead that
wakes up cannot write a single row. On PostgreSQL the UPDATE also locks the job's row for the
rest of the transaction; on SQLite every write transaction holds the database's write lock.

Claiming takes ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (so many workers claim
different jobs without waiting on each other) and ``BEGIN IMMEDIATE`` on SQLite (claims are
serialised by the write lock). A running job whose lease has expired is claimed again — its
lost attempt is recorded as such — until ``GRADLAB_MAX_ATTEMPTS`` attempts have been lost,
when the job fails with ``worker_lost``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.db import Database, retry_locked
from store.settings import Settings
from store.tables import Attempt, Base, Checkpoint, GradientCheck, Job, MetricChunk

CHANNEL = "gradlab_jobs"


def notify(session: Session) -> None:
    """Wake idle workers when this transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


jobs = cast(Table, Job.__table__)
attempts = cast(Table, Attempt.__table__)
chunks = cast(Table, MetricChunk.__table__)
checks = cast(Table, GradientCheck.__table__)
checkpoints = cast(Table, Checkpoint.__table__)


class LostClaim(Exception):
    """This worker no longer holds the job: another worker took it over, or it was deleted."""


@dataclass(frozen=True)
class Claim:
    job_id: str
    attempt: int
    spec: dict[str, Any]
    checkpoint: bytes | None  # parameters and optimizer state to resume from
    iterations_done: int
    best_loss: float | None
    best_iteration: int | None
    checks_passed: bool | None


@dataclass
class Flush:
    """What one flush writes: points, checks and the checkpoint they lead to."""

    chunk: Mapping[str, Any] | None = None
    checks: Sequence[Mapping[str, Any]] = ()
    state: bytes | None = None
    iterations_done: int = 0
    final_loss: float | None = None
    final_accuracy: float | None = None
    best_loss: float | None = None
    best_iteration: int | None = None
    checks_passed: bool | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.cache
def _upsert_statement(dialect_name: str, table_name: str, keys: tuple[str, ...]) -> Any:
    """``INSERT … ON CONFLICT (keys) DO UPDATE``, built once: a flush runs it per chunk."""
    table = Base.metadata.tables[table_name]
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    updates = {
        c.name: stmt.excluded[c.name]
        for c in table.columns
        if c.name not in keys and not c.primary_key
    }
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)


def _upsert(
    conn: Connection, table: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows, or overwrite the row with the same key: rewriting is idempotent."""
    if rows:
        conn.execute(_upsert_statement(conn.dialect.name, table.name, tuple(keys)), list(rows))


@functools.cache
def _fence_statement(columns: tuple[str, ...]) -> Any:
    """``UPDATE jobs SET … WHERE id AND attempts AND status = 'running' RETURNING cancel``,
    built once per set of columns."""
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("fence_id"),
            jobs.c.attempts == bindparam("fence_attempt"),
            jobs.c.status == "running",
        )
        .values({name: bindparam(f"set_{name}") for name in columns})
        .returning(jobs.c.cancel_requested)
    )


# The statements of every claim and flush, built once (building one costs more than running it).
_EXPIRED = (
    select(jobs.c.id, jobs.c.attempts, jobs.c.cancel_requested)
    .where(jobs.c.status == "running", jobs.c.lease_expires_at < bindparam("now"))
    .order_by(jobs.c.lease_expires_at)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_CLAIMED = (
    jobs.c.id,
    jobs.c.attempts,
    jobs.c.spec,
    jobs.c.iterations_done,
    jobs.c.best_loss,
    jobs.c.best_iteration,
    jobs.c.checks_passed,
)
_CLAIM_VALUES = {
    "status": "running",
    "attempts": jobs.c.attempts + 1,
    "worker_id": bindparam("take_worker"),
    "lease_expires_at": bindparam("take_lease"),
    "started_at": func.coalesce(jobs.c.started_at, bindparam("take_now")),
}
# The oldest queued job, in one statement: on PostgreSQL the subquery skips rows other
# workers are claiming; on SQLite the transaction already holds the write lock.
_OLDEST_QUEUED = (
    select(jobs.c.id)
    .where(jobs.c.status == "queued")
    .order_by(jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)
    .scalar_subquery()
)
_TAKE_QUEUED = (
    update(jobs)
    .where(jobs.c.id == _OLDEST_QUEUED, jobs.c.status == "queued")
    .values(_CLAIM_VALUES)
    .returning(*_CLAIMED)
)
_TAKE = (
    update(jobs).where(jobs.c.id == bindparam("take_id")).values(_CLAIM_VALUES).returning(*_CLAIMED)
)
_CHECKPOINT = select(checkpoints.c.state).where(checkpoints.c.job_id == bindparam("job_id"))
_NEW_ATTEMPT = insert(attempts)
_END_ATTEMPT = (
    update(attempts)
    .where(attempts.c.job_id == bindparam("end_job"), attempts.c.number == bindparam("end_number"))
    .values(outcome=bindparam("outcome"), ended_at=bindparam("ended_at"))
)


class Queue:
    """Claims and fenced writes for one worker."""

    def __init__(self, db: Database, settings: Settings, worker_id: str) -> None:
        self.db = db
        self.settings = settings
        self.worker_id = worker_id
        self.postgres = db.engine.dialect.name == "postgresql"
        # Expired leases are looked for on an idle poll, and at most this often while busy.
        self._recovery_interval = min(1.0, settings.lease_seconds / 10)
        self._next_recovery = 0.0

    # --- claiming ---------------------------------------------------------------------

    def claim(self) -> Claim | None:
        """Take the oldest claimable job — an expired lease first, else a queued one."""
        return retry_locked(self._claim)

    def _claim(self) -> Claim | None:
        with self.db.write_engine.begin() as conn:
            now = time.monotonic()
            if now >= self._next_recovery:  # dead workers' jobs first, now and then
                self._next_recovery = now + self._recovery_interval
                while (row := conn.execute(_EXPIRED, {"now": time.time()}).first()) is not None:
                    claim = self._recover(conn, row.id, row.attempts, row.cancel_requested)
                    if claim is not None:
                        return claim
            moment = utcnow()
            job = conn.execute(
                _TAKE_QUEUED,
                {
                    "take_worker": self.worker_id,
                    "take_lease": time.time() + self.settings.lease_seconds,
                    "take_now": moment,
                },
            ).first()
            if job is None:
                self._next_recovery = now  # idle: look for expired leases on every poll
                return None
            return self._attempt(conn, job, moment)

    def _recover(self, conn: Connection, job_id: str, attempt: int, cancel: bool) -> Claim | None:
        """The worker of ``attempt`` died: record the loss, then retry, cancel or give up."""
        moment = utcnow()
        conn.execute(
            update(attempts)
            .where(attempts.c.job_id == job_id, attempts.c.number == attempt)
            .values(outcome="lost", ended_at=moment)
        )
        lost = conn.execute(
            select(func.count())
            .select_from(attempts)
            .where(attempts.c.job_id == job_id, attempts.c.outcome == "lost")
        ).scalar_one()
        done = {"worker_id": None, "lease_expires_at": None, "finished_at": moment}
        if cancel:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(status="cancelled", **done))
            return None
        if lost >= self.settings.max_attempts:
            message = (
                f"The job's worker was lost {lost} times (GRADLAB_MAX_ATTEMPTS is "
                f"{self.settings.max_attempts}); it is not retried again."
            )
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(status="failed", error_type="worker_lost", error_message=message, **done)
            )
            return None
        return self._take(conn, job_id)

    def _take(self, conn: Connection, job_id: str) -> Claim:
        """Claim a job whose lease expired (its row is locked by the caller)."""
        moment = utcnow()
        job = conn.execute(
            _TAKE,
            {
                "take_id": job_id,
                "take_worker": self.worker_id,
                "take_lease": time.time() + self.settings.lease_seconds,
                "take_now": moment,
            },
        ).one()
        return self._attempt(conn, job, moment)

    def _attempt(self, conn: Connection, job: Any, moment: datetime) -> Claim:
        """Record the attempt a claim starts; the claim."""
        state = None
        if job.iterations_done:  # a resumed job: its checkpoint
            state = conn.execute(_CHECKPOINT, {"job_id": job.id}).scalar_one_or_none()
        conn.execute(
            _NEW_ATTEMPT,
            {
                "job_id": job.id,
                "number": job.attempts,
                "worker_id": self.worker_id,
                "started_at": moment,
                "start_iteration": job.iterations_done,
            },
        )
        return Claim(
            job_id=job.id,
            attempt=job.attempts,
            spec=job.spec,
            checkpoint=state,
            iterations_done=job.iterations_done,
            best_loss=job.best_loss,
            best_iteration=job.best_iteration,
            checks_passed=job.checks_passed,
        )

    # --- fenced writes --------------------------------------------------------------------

    def _fence(self, conn: Connection, claim: Claim, **values: Any) -> bool:
        """Renew the lease (plus ``values``) if we still hold the claim; the cancel flag."""
        values = {"lease_expires_at": time.time() + self.settings.lease_seconds, **values}
        params = {f"set_{name}": value for name, value in values.items()}
        params.update(fence_id=claim.job_id, fence_attempt=claim.attempt)
        row = conn.execute(_fence_statement(tuple(values)), params).first()
        if row is None:
            raise LostClaim(f"job {claim.job_id}: attempt {claim.attempt} no longer holds it")
        return bool(row.cancel_requested)

    def heartbeat(self, claim: Claim) -> bool:
        """Renew the lease; True when the job has been asked to cancel."""

        def beat() -> bool:
            with self.db.write_engine.begin() as conn:
                return self._fence(conn, claim)

        return retry_locked(beat)

    def flush(self, claim: Claim, flush: Flush, finish: Finish | None = None) -> bool:
        """Write a flush in one fenced transaction; True when the job was asked to cancel.

        ``finish``, when this flush ends the attempt, sets the job's status and the attempt's
        outcome in the same transaction. Raises :class:`LostClaim`, having written nothing,
        when the claim is gone.
        """

        def write() -> bool:
            with self.db.write_engine.begin() as conn:
                if self.postgres:
                    # The checkpoint commits with the points it covers, so losing the tail
                    # of the WAL in a server crash loses both together: the job resumes
                    # from the previous flush and rewrites the same chunks.
                    conn.execute(text("SET LOCAL synchronous_commit = off"))
                values: dict[str, Any] = {}
                if flush.chunk is not None or flush.state is not None:
                    values.update(
                        iterations_done=flush.iterations_done,
                        final_loss=flush.final_loss,
                        final_accuracy=flush.final_accuracy,
                        best_loss=flush.best_loss,
                        best_iteration=flush.best_iteration,
                    )
                if flush.checks:
                    values["checks_passed"] = flush.checks_passed
                if finish is not None:
                    values.update(finish.job_values())
                cancel = self._fence(conn, claim, **values)
                if flush.chunk is not None:
                    _upsert(conn, chunks, [flush.chunk], ("job_id", "first_iteration"))
                if flush.checks:
                    _upsert(conn, checks, flush.checks, ("job_id", "iteration", "reference"))
                if flush.state is not None:
                    row = {
                        "job_id": claim.job_id,
                        "iteration": flush.iterations_done,
                        "attempt": claim.attempt,
                        "state": flush.state,
                    }
                    _upsert(conn, checkpoints, [row], ("job_id",))
                if finish is not None:
                    conn.execute(
                        _END_ATTEMPT,
                        {
                            "end_job": claim.job_id,
                            "end_number": claim.attempt,
                            "outcome": finish.outcome,
                            "ended_at": utcnow(),
                        },
                    )
                return cancel

        return retry_locked(write)


@dataclass(frozen=True)
class Finish:
    """How an attempt ends: the job's new status and the attempt's outcome."""

    status: str  # succeeded | failed | cancelled | queued (handed back on shutdown)
    outcome: str  # succeeded | failed | cancelled | released
    error: Mapping[str, Any] | None = None

    def job_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": self.status,
            "worker_id": None,
            "lease_expires_at": None,
        }
        if self.status == "queued":  # another worker resumes it from the checkpoint
            return values
        values["finished_at"] = utcnow()
        if self.error is not None:
            values.update(
                error_type=self.error["type"],
                error_message=self.error["message"],
                error_iteration=self.error.get("iteration"),
            )
        return values


SUCCEEDED = Finish("succeeded", "succeeded")
CANCELLED = Finish("cancelled", "cancelled")
RELEASED = Finish("queued", "released")
