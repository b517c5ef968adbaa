"""Fair share with real worker processes, on SQLite and PostgreSQL: a student's lone job
queued behind another student's sweep starts at the next claim, before the sweep ends."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from gradlab.procs import start_worker, stop_all, wait_for
from service.jobs import service as jobs_service
from store import lifecycle
from store.accounts import Caller, Role
from store.db import Database
from store.spec import JobSpec
from store.status import TERMINAL, Status
from store.tables import Job, User
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

SPEC = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 100},
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 1000,
}
SWEEP = 12


def moment(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def test_a_lone_job_behind_a_sweep_starts_at_the_next_claim(db_url, tmp_path):
    settings = make_settings(db_url)
    db = Database(db_url, settings)
    suffix = uuid.uuid4().hex[:6]
    sweeper, lone = f"sweeper-{suffix}", f"lone-{suffix}"
    spec = JobSpec.model_validate(SPEC)
    with db.write_session() as session:
        for name in (sweeper, lone):
            session.add(User(name=name, role="student", created_at=lifecycle.utcnow()))
    with db.write_session() as session:
        for _ in range(SWEEP):
            session.add(jobs_service.new_job(session, spec, settings, owner=sweeper))
    workers = [start_worker(db_url, log=tmp_path / f"worker-{i}.log") for i in range(2)]
    try:

        def sweep() -> list[tuple[str, float | None]]:
            with db.engine.connect() as conn:
                query = select(Job.status, Job.started_at).where(Job.owner == sweeper)
                return [(s, None if t is None else moment(t)) for s, t in conn.execute(query)]

        def in_stride() -> bool:  # both workers past a first job and each on another
            statuses = [status for status, _ in sweep()]
            return statuses.count(Status.SUCCEEDED) >= 2 and statuses.count(Status.RUNNING) == 2

        wait_for(in_stride, timeout=120, interval=0.005, what="both workers on the sweep")
        with db.write_session() as session:
            job, _ = jobs_service.submit(session, spec, settings, Caller(lone, Role.STUDENT))
        committed = time.time()

        def finished() -> bool:
            with db.engine.connect() as conn:
                status = conn.execute(select(Job.status).where(Job.id == job.id)).scalar_one()
            return status in TERMINAL and all(status in TERMINAL for status, _ in sweep())

        wait_for(finished, timeout=180, interval=0.1, what="the sweep and the lone job to end")
        with db.engine.connect() as conn:
            single = conn.execute(select(Job.status, Job.started_at).where(Job.id == job.id)).one()
    finally:
        stop_all(workers, timeout=30)
        db.dispose()

    assert single.status == Status.SUCCEEDED
    started = moment(single.started_at)
    starts = [t for _, t in sweep_rows(db_url, sweeper)]
    assert all(status == Status.SUCCEEDED for status, _ in sweep_rows(db_url, sweeper))
    between = [t for t in starts if committed < t < started]
    after = [t for t in starts if t > started]
    # The next claim after the lone job was queued took it (a claim already under way may
    # have taken one sweep job first): it waited about one job, not for the sweep.
    assert len(between) <= 1, (between, started)
    # ...while most of the sweep was still waiting, as FIFO would have run all of it first.
    assert len(after) >= SWEEP // 2 - 1, (len(after), starts, started)


def sweep_rows(url: str, owner: str) -> list[tuple[str, float]]:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            query = select(Job.status, Job.started_at).where(Job.owner == owner)
            return [(s, moment(t)) for s, t in conn.execute(query)]
    finally:
        db.dispose()
