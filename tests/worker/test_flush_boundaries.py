"""Batch boundaries never drop or repeat an iteration, whatever the flush size — also when a
job is interrupted at a boundary and resumed from its checkpoint."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import migrations as migrate
from service.jobs import service as jobs_service
from service.metrics import repository as metrics_repo
from service.metrics import service as metrics_service
from store.accounts import LOCAL
from store.db import Database
from store.queue import Queue
from store.spec import JobSpec
from store.tables import GradientCheck, Job, MetricChunk
from tests.conftest import make_settings
from worker.runner import JobRun


def spec(iterations: int, every: int) -> dict:
    return {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "spiral", "n_per_class": 10},
        "optimizer": {"kind": "sgd", "learning_rate": 0.5, "batch_size": 7, "momentum": 0.5},
        "iterations": iterations,
        "gradient_check": {"every": every, "max_coordinates": 2},
    }


def stored(db: Database, job_id: str) -> tuple[np.ndarray, list[tuple[int, int]], list[int]]:
    with db.engine.connect() as conn:
        block = metrics_service.read_all(conn, job_id, metrics_repo.span(conn, job_id, 0, None))
        chunks = conn.execute(
            select(MetricChunk.first_iteration, MetricChunk.count)
            .where(MetricChunk.job_id == job_id)
            .order_by(MetricChunk.first_iteration)
        ).all()
        checks = conn.execute(
            select(GradientCheck.iteration)
            .where(GradientCheck.job_id == job_id)
            .order_by(GradientCheck.iteration)
        ).scalars()
        return block, [tuple(c) for c in chunks], list(checks)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each example (migrating each would be most of it)."""
    path = tmp_path_factory.mktemp("template") / "db.sqlite"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    iterations=st.integers(1, 60),
    flush=st.integers(1, 70),
    every=st.integers(0, 9),
    stop_after=st.one_of(st.none(), st.integers(0, 59)),
)
def test_every_iteration_is_stored_once_whatever_the_flush_size(
    tmp_path_factory, migrated, iterations, flush, every, stop_after
):
    path = tmp_path_factory.mktemp("flush") / "db.sqlite"
    shutil.copyfile(migrated, path)
    url = f"sqlite:///{path}"
    config = make_settings(url, flush_iterations=flush, flush_seconds=60)
    db = Database(url, config)
    try:
        with db.write_session() as session:
            job, _ = jobs_service.submit(
                session, JobSpec.model_validate(spec(iterations, every)), config, LOCAL
            )
        if stop_after is not None and stop_after < iterations:
            # A first attempt stops (as on SIGTERM) once it has yielded `stop_after`
            # iterations, hands the job back, and a second attempt resumes it.
            queue = Queue(db, config, "first")
            run = StopAt(queue, queue.claim(), config)
            run.stop_at = stop_after
            assert run.run() == "released"
            assert job_row(db, job.id).iterations_done == stop_after
        # The rest (or all) of it in one more attempt, in this process: the child process a
        # worker runs it in sends the same flushes over a pipe (tests/worker/test_attempt.py).
        queue = Queue(db, config, "second")
        assert JobRun(queue, queue.claim(), config).run() == "succeeded"
        assert job_row(db, job.id).iterations_done == iterations
        block, chunks, checks = stored(db, job.id)
        assert block[:, 0].tolist() == list(range(iterations))
        for (first, count), (following, _) in itertools.pairwise(chunks):
            assert first + count == following
        assert all(count <= flush for _, count in chunks)
        expected = {0, iterations - 1} | (
            {i for i in range(0, iterations, every)} if every else set()
        )
        assert checks == sorted(expected)
    finally:
        db.dispose()


def job_row(db: Database, job_id: str) -> Job:
    with db.read_session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


class StopAt(JobRun):
    """A run told to stop (as by SIGTERM) when it reaches iteration ``stop_at``."""

    stop_at = 0

    @property  # type: ignore[override]
    def interrupt(self) -> str | None:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.iteration >= self.stop_at:
            return "stop"
        return self._interrupt

    @interrupt.setter
    def interrupt(self, value: str | None) -> None:
        self._interrupt = value
