"""Workers that die, stall, stop or get cancelled, as real processes on SQLite and PostgreSQL:
every job ends with exactly one point per iteration, and the attempts table says who ran it."""

from __future__ import annotations

import itertools
import signal
import time

import numpy as np
import pytest
from sqlalchemy import func, select

from engine import Trainer
from gradlab.procs import kill_group, start_worker, wait_for
from service.jobs import service as jobs_service
from service.metrics import repository as metrics_repo
from service.metrics import service as metrics_service
from store.accounts import LOCAL
from store.build import build
from store.db import Database
from store.spec import JobSpec
from store.tables import Attempt, Job, MetricChunk
from tests.conftest import make_settings, run_worker

pytestmark = pytest.mark.slow

LONG = {
    "name": "long",
    "model": {"kind": "mlp", "hidden_sizes": [100]},
    "data": {"kind": "spiral"},
    "optimizer": {"kind": "gd", "learning_rate": 1.0, "momentum": 0.5},
    "l2": 1e-3,
    "iterations": 15000,
}


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


def submit(db: Database, spec: dict, url: str) -> str:
    with db.write_session() as session:
        job, _ = jobs_service.submit(
            session, JobSpec.model_validate(spec), make_settings(url), LOCAL
        )
        return job.id


def job_row(db: Database, job_id: str) -> Job:
    with db.read_session() as session:
        return session.get(Job, job_id)


def attempts_of(db: Database, job_id: str) -> list[Attempt]:
    with db.read_session() as session:
        query = select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number)
        return list(session.scalars(query))


def points(db: Database, job_id: str) -> np.ndarray:
    with db.engine.connect() as conn:
        return metrics_service.read_all(conn, job_id, metrics_repo.span(conn, job_id, 0, None))


def chunk_starts(db: Database, job_id: str) -> list[tuple[int, int]]:
    with db.engine.connect() as conn:
        query = (
            select(MetricChunk.first_iteration, MetricChunk.count)
            .where(MetricChunk.job_id == job_id)
            .order_by(MetricChunk.first_iteration)
        )
        return [tuple(r) for r in conn.execute(query)]


def uninterrupted_losses(spec: dict) -> np.ndarray:
    """The loss series the engine gives in one go, for comparison with a resumed run."""
    b = build(JobSpec.model_validate(spec))
    trainer = Trainer(
        b.model, b.optimizer, b.data.X, b.data.y, iterations=b.iterations, l2=b.l2, params=b.params
    )
    return np.array([rec.loss for rec in trainer])


def assert_exactly_once(db: Database, job_id: str, n: int) -> np.ndarray:
    block = points(db, job_id)
    assert block[:, 0].tolist() == list(range(n))  # no gaps, no repeats
    spans = chunk_starts(db, job_id)
    for (first, count), (nxt, _) in itertools.pairwise(spans):
        assert first + count == nxt  # chunks tile the history
    return block


def running_with_points(db: Database, job_id: str, at_least: int = 1) -> bool:
    job = job_row(db, job_id)
    return job.status == "running" and at_least <= job.iterations_done < job.iterations


def test_a_job_whose_worker_is_killed_completes_on_another_with_every_point_once(
    db, db_url, tmp_path
):
    job_id = submit(db, LONG, db_url)
    first = start_worker(db_url, "--id", "first", log=tmp_path / "first.log", lease_seconds=1)
    try:
        wait_for(lambda: running_with_points(db, job_id, 2000), what="the first worker to flush")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        kill_group(first)
    killed_at = job_row(db, job_id).iterations_done

    second = start_worker(db_url, "--id", "second", log=tmp_path / "second.log", lease_seconds=1)
    try:
        wait_for(
            lambda: job_row(db, job_id).status == "succeeded", timeout=60, what="the job to finish"
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        kill_group(second)

    job = job_row(db, job_id)
    assert job.attempts == 2
    tries = attempts_of(db, job_id)
    assert [(a.number, a.worker_id, a.outcome) for a in tries] == [
        (1, "first", "lost"),
        (2, "second", "succeeded"),
    ]
    assert tries[1].start_iteration == killed_at > 0  # resumed from the checkpoint
    block = assert_exactly_once(db, job_id, LONG["iterations"])
    # The resumed run is the uninterrupted run, bit for bit.
    np.testing.assert_array_equal(block[:, 1], uninterrupted_losses(LONG))


def test_a_zombie_whose_lease_was_taken_over_cannot_write(db, db_url, tmp_path):
    """SIGSTOP a worker mid-job; another takes the job over and finishes it; SIGCONT the first:
    its next flush is refused, it writes nothing, and it goes back to waiting for work."""
    spec = {**LONG, "iterations": 8000}
    job_id = submit(db, spec, db_url)
    zombie = start_worker(db_url, "--id", "zombie", log=tmp_path / "zombie.log", lease_seconds=1)
    try:
        wait_for(lambda: running_with_points(db, job_id), what="the first worker to flush")
        zombie.send_signal(signal.SIGSTOP)
        stopped_at = job_row(db, job_id).iterations_done
        time.sleep(1.5)  # its lease expires
        run_worker(make_settings(db_url, lease_seconds=1))
        assert job_row(db, job_id).status == "succeeded"
        before = (points(db, job_id).tobytes(), chunk_starts(db, job_id))

        zombie.send_signal(signal.SIGCONT)
        time.sleep(1.0)  # it runs on, tries to flush, is fenced off
        assert zombie.poll() is None  # still alive, ready for other work
    finally:
        kill_group(zombie)

    job = job_row(db, job_id)
    assert job.status == "succeeded" and job.attempts == 2
    assert (points(db, job_id).tobytes(), chunk_starts(db, job_id)) == before
    assert [a.outcome for a in attempts_of(db, job_id)] == ["lost", "succeeded"]
    assert attempts_of(db, job_id)[1].start_iteration == stopped_at
    log = (tmp_path / "zombie.log").read_text()
    assert "no longer holds it" in log or "taken over" in log
    assert_exactly_once(db, job_id, spec["iterations"])


def test_sigterm_hands_the_job_back_and_exits_zero(db, db_url, tmp_path):
    job_id = submit(db, LONG, db_url)
    worker = start_worker(db_url, "--id", "leaving", log=tmp_path / "w.log")
    try:
        wait_for(lambda: running_with_points(db, job_id), what="the worker to flush")
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
        assert time.monotonic() - sent < 10
    finally:
        kill_group(worker)

    job = job_row(db, job_id)
    assert job.status == "queued" and job.worker_id is None
    assert 0 < job.iterations_done < LONG["iterations"]
    assert [a.outcome for a in attempts_of(db, job_id)] == ["released"]

    run_worker(make_settings(db_url))
    job = job_row(db, job_id)
    assert job.status == "succeeded" and job.attempts == 2
    block = assert_exactly_once(db, job_id, LONG["iterations"])
    np.testing.assert_array_equal(block[:, 1], uninterrupted_losses(LONG))


def test_cancelling_a_running_job_stops_it_within_a_flush_and_it_is_never_retried(
    db, db_url, tmp_path, settings
):
    from fastapi.testclient import TestClient

    from service.app import create_app

    job_id = submit(db, LONG, db_url)
    worker = start_worker(db_url, log=tmp_path / "w.log", lease_seconds=1)
    try:
        wait_for(lambda: running_with_points(db, job_id), what="the worker to flush")
        with TestClient(create_app(settings), base_url="http://localhost") as client:
            asked = time.monotonic()
            assert client.post(f"/v1/jobs/{job_id}/cancel").json()["cancel_requested"] is True
            wait_for(lambda: job_row(db, job_id).status == "cancelled", timeout=10, what="cancel")
            assert time.monotonic() - asked < 2.0  # a flush interval is 0.05 s here
            assert worker.poll() is None  # the worker lives on
    finally:
        kill_group(worker)
    job = job_row(db, job_id)
    assert 0 < job.iterations_done < LONG["iterations"]
    assert_exactly_once(db, job_id, job.iterations_done)  # keeps what it recorded
    time.sleep(1.2)  # well past the lease: still nobody may claim it
    assert run_worker(make_settings(db_url, lease_seconds=1)) == {}
    assert job_row(db, job_id).attempts == 1
    assert [a.outcome for a in attempts_of(db, job_id)] == ["cancelled"]


def test_a_job_whose_workers_keep_dying_fails_as_worker_lost(db, db_url, tmp_path):
    settings = make_settings(db_url, lease_seconds=0.5, max_attempts=2)
    job_id = submit(db, LONG, db_url)
    for attempt in (1, 2):
        worker = start_worker(db_url, log=tmp_path / f"{attempt}.log", lease_seconds=0.5)
        try:
            wait_for(
                lambda a=attempt: (
                    job_row(db, job_id).attempts == a and running_with_points(db, job_id)
                ),
                what="a flush",
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            kill_group(worker)
        time.sleep(0.6)
    assert run_worker(settings) == {}
    job = job_row(db, job_id)
    assert job.status == "failed"
    assert job.error_type == "worker_lost"
    assert "2 times" in job.error_message
    assert [a.outcome for a in attempts_of(db, job_id)] == ["lost", "lost"]


def test_four_workers_run_four_hundred_jobs_exactly_once(db, db_url, tmp_path):
    small = {
        "model": {"kind": "logistic_regression"},
        "data": {"kind": "blobs", "n_samples": 40},
        "optimizer": {"kind": "gd"},
        "iterations": 25,
    }
    with db.write_session() as session:
        settings = make_settings(db_url)
        spec = JobSpec.model_validate(small)
        for _ in range(400):
            _job, _ = jobs_service.submit(session, spec, settings, LOCAL)
    workers = [
        start_worker(db_url, "--burst", "--id", f"w{i}", log=tmp_path / f"w{i}.log")
        for i in range(4)
    ]
    try:
        for w in workers:
            assert w.wait(timeout=120) == 0
    finally:
        for w in workers:
            kill_group(w)

    with db.read_session() as session:
        rows = list(session.scalars(select(Job)))
        tries = list(session.scalars(select(Attempt)))
        chunk_counts = dict(
            session.execute(
                select(MetricChunk.job_id, func.sum(MetricChunk.count)).group_by(MetricChunk.job_id)
            ).all()
        )
    assert len(rows) == 400
    assert {j.status for j in rows} == {"succeeded"}
    assert all(j.attempts == 1 and j.iterations_done == 25 for j in rows)
    # Audit from the attempt records: one attempt per job, succeeded, by some worker.
    assert len(tries) == 400
    assert {(a.number, a.outcome) for a in tries} == {(1, "succeeded")}
    assert len({a.job_id for a in tries}) == 400
    assert {a.worker_id for a in tries} <= {"w0", "w1", "w2", "w3"}
    assert len({a.worker_id for a in tries}) >= 2  # the work was shared
    assert len(chunk_counts) == 400 and set(chunk_counts.values()) == {25}
