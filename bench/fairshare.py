"""Fair share (issue 11): what the claim costs with a long queue, and how long a student's
lone job waits behind another student's sweep, against the FIFO claim it replaced
(``bench/fifo_worker.py``), with real worker processes."""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from bench import fifo_worker
from bench.context import TINY, Context
from bench.report import Row, at_most, info
from gradlab.procs import gradlab_env, start, stop_all, wait_for
from store import lifecycle
from store.status import Status
from store.tables import Job, User, new_id


def _students(ctx: Context, count: int, prefix: str) -> list[str]:
    names = [f"{prefix}-{uuid.uuid4().hex[:6]}-{i:03d}" for i in range(count)]
    with ctx.db.write_session() as session:
        for name in names:
            session.add(User(name=name, role="student", created_at=lifecycle.utcnow()))
    return names


def _forget(ctx: Context, owners: list[str]) -> None:
    """Delete the section's jobs and accounts: later sections find the queue as it was."""
    with ctx.db.write_session() as session:
        session.execute(delete(Job).where(Job.owner.in_(owners)))
        session.execute(delete(User).where(User.name.in_(owners)))


# --- the claim's cost ---------------------------------------------------------------------


def _claim_ms(ctx: Context, claim: Callable[[Connection, str, float], Any]) -> float:
    """One claim (the statement and its attempt row), in a transaction rolled back after."""
    with ctx.db.write_engine.connect() as conn:
        start_time = time.perf_counter()
        conn.begin()
        row = claim(conn, "bench", 60)
        elapsed = time.perf_counter() - start_time
        conn.rollback()
    assert row is not None
    return elapsed * 1000


def claim_cost(
    ctx: Context, jobs: int = 10_000, owners: int = 300, running: int = 2, repeats: int = 200
) -> list[Row]:
    """``jobs`` queued over ``owners`` students (each job's owner drawn at random), two of
    them running one job each: the fair-share claim against the FIFO claim, interleaved."""
    names = _students(ctx, owners, "claim")
    rng = random.Random(0)
    try:
        now = lifecycle.utcnow()
        rows = [
            {
                "id": new_id(),
                "owner": rng.choice(names),
                "status": Status.RUNNING if i < running else Status.QUEUED,
                "model_kind": "logistic_regression",  # TINY's
                "spec": TINY,
                "iterations": TINY["iterations"],
                "created_at": now,
                "tags": {},
                "attempts": 0,
                "iterations_done": 0,
                "cancel_requested": False,
            }
            for i in range(jobs)
        ]
        with ctx.db.write_engine.begin() as conn:
            conn.execute(lifecycle.jobs.insert(), rows)
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE jobs")
        fair: list[float] = []
        fifo: list[float] = []
        for i in range(repeats):
            pair = [(fair, lifecycle.claim_queued), (fifo, fifo_worker.claim_oldest)]
            for samples, claim in pair if i % 2 else reversed(pair):
                samples.append(_claim_ms(ctx, claim))
        ratios = [statistics.median(fair) / statistics.median(fifo)]
    finally:
        _forget(ctx, names)
    where = f"{jobs:,} queued over {owners} owners ({ctx.engine_name})"
    return [
        info("fair share", f"claim, FIFO: {where}", fifo, "ms", "statement + attempt row"),
        info("fair share", f"claim, fair share: {where}", fair, "ms"),
        info("fair share", "claim cost, fair share / FIFO", ratios, "×"),
    ]


# --- a lone job behind a sweep --------------------------------------------------------------


def _moment(value: datetime | None) -> float:
    assert value is not None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _lone_wait(ctx: Context, fifo: bool, sweep_jobs: int, run: int) -> tuple[float, float]:
    """Two workers drain a student's sweep; once both are well into it, another student queues one
    job. Its wait (s, from its commit to its ``started_at``: a submission waiting for SQLite's
    write lock is not the claim's doing) and the median sweep job's duration (s)."""
    sweeper, lone = _students(ctx, 2, f"wait{run}")
    module = "bench.fifo_worker" if fifo else "gradlab"
    args = [] if fifo else ["worker"]
    env = gradlab_env(ctx.url)
    procs = [
        start(args, env, ctx.work / f"fair-{fifo}-{run}-{i}.log", module=module) for i in range(2)
    ]
    try:
        time.sleep(1.5)  # let them import and go idle
        ctx.insert_jobs(TINY, sweep_jobs, owner=sweeper)

        def in_stride() -> bool:
            """Both workers past their first jobs (slow: a child warming up) and on the sweep."""
            with ctx.db.engine.connect() as conn:
                query = select(Job.status).where(Job.owner == sweeper, Job.started_at.is_not(None))
                statuses = conn.execute(query).scalars().all()
            running = sum(status == Status.RUNNING for status in statuses)
            return len(statuses) - running >= 16 and running == 2

        wait_for(in_stride, timeout=60, interval=0.002, what="both workers on the sweep")
        name = ctx.insert_jobs(TINY, 1, owner=lone)
        queued = time.time()  # committed: from here on a claim can see it
        ctx.wait_named(name, 1)

        def spans() -> list[Any]:
            """The sweep's (started, finished), once every job of it has finished."""
            with ctx.db.engine.connect() as conn:  # a new snapshot each time
                query = select(Job.started_at, Job.finished_at).where(Job.owner == sweeper)
                rows = conn.execute(query).all()
            return list(rows) if all(f is not None for _, f in rows) else []

        sweep = wait_for(spans, timeout=120, interval=0.1, what="the sweep to end")
        with ctx.db.engine.connect() as conn:
            single = conn.execute(select(Job).where(Job.owner == lone)).one()
        duration = statistics.median(_moment(f) - _moment(s) for s, f in sweep)
        return _moment(single.started_at) - queued, duration
    finally:
        stop_all(procs)
        _forget(ctx, [sweeper, lone])


def lone_wait(ctx: Context, sweep_jobs: int = 256, repeats: int = 3) -> list[Row]:
    waits: dict[bool, list[float]] = {True: [], False: []}
    durations: list[float] = []
    for run in range(repeats):
        for fifo in (True, False) if run % 2 == 0 else (False, True):
            wait, duration = _lone_wait(ctx, fifo, sweep_jobs, run)
            waits[fifo].append(wait * 1000)
            durations.append(duration * 1000)
    job_ms = statistics.median(durations)
    in_jobs = [w / job_ms for w in waits[False]]
    ratios = [a / b for a, b in zip(waits[True], waits[False], strict=True)]
    where = f"behind a {sweep_jobs}-job sweep, 2 workers ({ctx.engine_name})"
    note = f"committed → started_at; a sweep job takes {job_ms:.1f} ms (started → finished)"
    return [
        info("fair share", f"lone job's wait, FIFO: {where}", waits[True], "ms", note),
        info("fair share", f"lone job's wait, fair share: {where}", waits[False], "ms"),
        at_most("fair share", "fair-share wait / one sweep job's duration", in_jobs, 2.0, "×"),
        info("fair share", "lone job's wait, FIFO / fair share", ratios, "×"),
    ]


def fairshare(ctx: Context) -> list[Row]:
    return claim_cost(ctx) + lone_wait(ctx)
