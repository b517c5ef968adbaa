"""The job queue's protocol: telling idle workers a job waits; claim, heartbeat, flush and
finish, each in one transaction whose status writes are :mod:`store.lifecycle`'s.

On PostgreSQL a ``NOTIFY`` in the submitting transaction wakes workers blocked in ``LISTEN``
the moment it commits (and never for a transaction that rolls back). SQLite has no such
channel; its workers poll every ``GRADLAB_POLL_SECONDS``.

A claim is ``(job id, attempt number)``. Claiming increments ``jobs.attempts`` and records an
``attempts`` row; every later write for the job — points, checks, checkpoint, lease renewals,
the final status — is one transaction that starts with the lifecycle's fenced
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
import logging
import select as selectors
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import datasets, lifecycle, submissions
from store.chunks import Col, chunk_row, extremes, records_block
from store.db import Database, retry_locked
from store.lifecycle import Finish
from store.settings import Settings
from store.status import TERMINAL
from store.tables import Base, Checkpoint, GradientCheck, MetricChunk, ParameterPath
from store.telemetry import CLAIM_DURATION, FLUSH_DURATION, PICKUP, since

CHANNEL = "gradlab_jobs"

log = logging.getLogger("gradlab.queue")


def notify(session: Session) -> None:
    """Wake idle workers when this transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"NOTIFY {CHANNEL}"))


class Listener:
    """What an idle worker waits on: a ``NOTIFY`` on PostgreSQL (a psycopg connection of its
    own, blocked in ``LISTEN``), a plain ``GRADLAB_POLL_SECONDS`` sleep on SQLite."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db, self.settings = db, settings
        self._conn: Any = None

    def wait(self) -> None:
        """Return when a job may be waiting, or after at most a second."""
        if self.db.engine.dialect.name != "postgresql":
            time.sleep(self.settings.poll_seconds)
            return
        try:
            conn = self._listening()
            # Wake on a notification, or after a short while to poll anyway (expired leases
            # need no notification, and a signal should not wait long).
            timeout = min(self.settings.listen_poll_seconds, 1.0)
            ready, _, _ = selectors.select([conn.fileno()], [], [], timeout)
            if ready:
                for _ in conn.notifies(timeout=0):
                    pass
        except Exception:
            log.exception("LISTEN failed; polling instead")
            self.close()
            time.sleep(self.settings.poll_seconds)

    def _listening(self) -> Any:
        if self._conn is None or self._conn.closed:
            import psycopg

            url = self.db.engine.url.set(drivername="postgresql")
            self._conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


chunks = cast(Table, MetricChunk.__table__)
checks = cast(Table, GradientCheck.__table__)
checkpoints = cast(Table, Checkpoint.__table__)
paths = cast(Table, ParameterPath.__table__)


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
    data: bytes | None = None  # the stored arrays of inline data (``store.datasets``)
    owner: str = "-"
    model_kind: str = ""


@dataclass
class Flush:
    """What one flush writes: points, checks and the checkpoint they lead to."""

    chunk: Mapping[str, Any] | None = None
    path: Mapping[str, Any] | None = None  # the parameters kept (store.paths)
    checks: Sequence[Mapping[str, Any]] = ()
    state: bytes | None = None
    iterations_done: int = 0
    final_loss: float | None = None
    final_accuracy: float | None = None
    best_loss: float | None = None
    best_iteration: int | None = None
    checks_passed: bool | None = None


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


_CHECKPOINT = select(checkpoints.c.state).where(checkpoints.c.job_id == bindparam("job_id"))


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
        # What takes a queued job: the lifecycle's fair-share claim. The benchmarks put the
        # FIFO baseline they compare it with here (bench/fairshare.py); nothing else does.
        self.claim_queued: Callable[..., Row[Any] | None] = lifecycle.claim_queued

    # --- claiming ---------------------------------------------------------------------

    def claim(self) -> Claim | None:
        """Take a claimable job — an expired lease first, else a queued one by fair share."""
        start = time.perf_counter()
        claim = retry_locked(self._claim)
        result = "empty" if claim is None else "job"
        CLAIM_DURATION.labels(result).observe(time.perf_counter() - start)
        return claim

    def _claim(self) -> Claim | None:
        with self.db.write_engine.begin() as conn:
            return self._claim_in(conn)

    def _claim_in(self, conn: Connection) -> Claim | None:
        lease = self.settings.lease_seconds
        job = None
        now = time.monotonic()
        if now >= self._next_recovery:  # dead workers' jobs first, now and then
            self._next_recovery = now + self._recovery_interval
            job = lifecycle.claim_expired(
                conn, self.worker_id, lease, self.settings.max_attempts, submissions.settle_ended
            )
        if job is None:
            job = self.claim_queued(conn, self.worker_id, lease)
        if job is None:
            self._next_recovery = now  # idle: look for expired leases on every poll
            return None
        return self._claim_of(conn, job)

    def _claim_of(self, conn: Connection, job: Row[Any]) -> Claim:
        """The claim on a job just claimed (its :data:`lifecycle.CLAIMED` columns)."""
        state = None
        if job.iterations_done:  # a resumed job: its checkpoint
            state = conn.execute(_CHECKPOINT, {"job_id": job.id}).scalar_one_or_none()
        data = None
        if datasets.is_reference(job.spec["data"]):  # inline data: its arrays, by hash
            data = datasets.blob(conn, job.spec["data"]["sha256"])
        if job.attempts == 1:  # its first claim: how long it waited since it was submitted
            PICKUP.labels(job.model_kind).observe(max(since(job.created_at), 0.0))
        return Claim(
            owner=job.owner,
            model_kind=job.model_kind,
            data=data,
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
        return lifecycle.hold(conn, claim.job_id, claim.attempt, values, claim.owner)

    def heartbeat(self, claim: Claim) -> bool:
        """Renew the lease; True when the job has been asked to cancel."""

        def beat() -> bool:
            with self.db.write_engine.begin() as conn:
                return self._fence(conn, claim)

        return retry_locked(beat)

    def flush(self, claim: Claim, flush: Flush, finish: Finish | None = None) -> bool:
        """Write a flush in one fenced transaction; True when the job was asked to cancel.

        ``finish``, when this flush ends the attempt, sets the job's status and the attempt's
        outcome in the same transaction. Raises :class:`~store.lifecycle.LostClaim`, having
        written nothing, when the claim is gone.
        """

        def write() -> bool:
            with self.db.write_engine.begin() as conn:
                return self._write(conn, claim, flush, finish)

        start = time.perf_counter()
        cancel = retry_locked(write)
        FLUSH_DURATION.labels("no" if finish is None else "yes").observe(
            time.perf_counter() - start
        )
        return cancel

    def finish_and_claim(self, claim: Claim, flush: Flush, finish: Finish) -> Claim | None:
        """Write the flush that ends ``claim``'s attempt, then claim the next job, in one
        transaction (one commit, one turn of SQLite's write lock, per job); the new claim, or
        None when no job waits. Raises :class:`~store.lifecycle.LostClaim`, having written
        and claimed nothing, when ``claim`` is gone."""

        def write() -> Claim | None:
            with self.db.write_engine.begin() as conn:
                self._write(conn, claim, flush, finish)
                return self._claim_in(conn)

        start = time.perf_counter()
        claimed = retry_locked(write)
        FLUSH_DURATION.labels("yes").observe(time.perf_counter() - start)
        return claimed

    def _write(self, conn: Connection, claim: Claim, flush: Flush, finish: Finish | None) -> bool:
        """:meth:`flush`'s writes, in ``conn``'s transaction."""
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
        if flush.path is not None:
            _upsert(conn, paths, [flush.path], ("job_id", "first_iteration"))
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
            lifecycle.end_attempt(conn, claim.job_id, claim.attempt, finish.outcome)
            if finish.status in TERMINAL:  # a submission it grades is graded as it ends
                submissions.settle_ended(conn, claim.job_id)
        return cancel


def flush_records(
    queue: Queue,
    claim: Claim,
    records: Sequence[Sequence[Any]],
    state: bytes,
    *,
    chunk: int = 1000,
    finish: Finish | None = None,
) -> None:
    """Write consecutive point records (``(iteration, loss, data_loss, reg_loss, grad_norm,
    accuracy)``) through the fenced flush path, ``chunk`` points a transaction, each with the
    checkpoint ``state``; the last flush ends the attempt with ``finish``. For points that
    were not trained here: the benchmarks' synthetic histories, and replays."""
    best: tuple[float, int] | None = None
    for first in range(0, len(records), chunk):
        block = records_block(records[first : first + chunk])
        row = chunk_row(claim.job_id, block)
        lowest = extremes(row["extremes"])[0]
        if best is None or lowest[Col.LOSS] < best[0]:
            best = (float(lowest[Col.LOSS]), int(lowest[Col.ITERATION]))
        accuracy = float(block[-1, Col.ACCURACY])
        flush = Flush(
            chunk=row,
            state=state,
            iterations_done=int(block[-1, Col.ITERATION]) + 1,
            final_loss=float(block[-1, Col.LOSS]),
            final_accuracy=None if accuracy != accuracy else accuracy,
            best_loss=best[0],
            best_iteration=best[1],
        )
        last = first + len(block) >= len(records)
        queue.flush(claim, flush, finish if last else None)
