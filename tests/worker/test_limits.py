"""Every job is bounded: a real worker runs each job in a child process with a memory and a
wall-clock limit, and stops it within seconds on cancel or SIGTERM, whatever it is doing."""

from __future__ import annotations

import signal
import time

import pytest
from fastapi.testclient import TestClient

from gradlab.procs import kill_group, start_worker, wait_for
from service.app import create_app
from store.db import Database
from tests.worker.test_recovery import (
    LONG,
    assert_exactly_once,
    attempts_of,
    job_row,
    running_with_points,
    submit,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


# 10,200 rows through 1,024 hidden units: each activation is 84 MB, an iteration some 400 MB.
BIG = {
    "name": "big",
    "model": {"kind": "mlp", "hidden_sizes": [1024]},
    "data": {"kind": "spiral", "n_per_class": 3400},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 5000,
    "gradient_check": {"references": []},
}
SMALL = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 40},
    "optimizer": {"kind": "gd"},
    "iterations": 30,
}
# 12,003 parameters, every one checked by central differences at iteration 0: a minute.
CHECKED = {
    "name": "checked",
    "model": {"kind": "mlp", "hidden_sizes": [2000]},
    "data": {"kind": "spiral"},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 100,
    "gradient_check": {"max_coordinates": None},
}


def in_its_check(db, job_id: str) -> bool:
    job = job_row(db, job_id)
    return job.status == "running" and job.iterations_done == 0


def test_a_job_past_the_memory_limit_fails_and_the_worker_takes_the_next(db, db_url, tmp_path):
    job_id = submit(db, BIG, db_url)
    first = start_worker(db_url, "--id", "roomy", log=tmp_path / "roomy.log")
    try:  # a first attempt, under the default limit, records points and hands the job back
        wait_for(lambda: running_with_points(db, job_id), what="points", timeout=60)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    finally:
        kill_group(first)
    recorded = job_row(db, job_id).iterations_done
    assert recorded > 0

    tight = start_worker(db_url, "--id", "tight", log=tmp_path / "tight.log", job_memory_mb=300)
    try:
        wait_for(lambda: job_row(db, job_id).status == "failed", what="memory_limit")
        job = job_row(db, job_id)
        assert job.error_type == "memory_limit"
        assert "300 MB" in job.error_message and "GRADLAB_JOB_MEMORY_MB" in job.error_message
        assert job.iterations_done == recorded  # what the first attempt recorded stays
        assert_exactly_once(db, job_id, recorded)
        assert [a.outcome for a in attempts_of(db, job_id)] == ["released", "failed"]

        small_id = submit(db, SMALL, db_url)
        wait_for(lambda: job_row(db, small_id).status == "succeeded", what="the next job")
        assert [a.worker_id for a in attempts_of(db, small_id)] == ["tight"]
        assert tight.poll() is None
    finally:
        kill_group(tight)


def test_an_attempt_past_the_time_limit_fails_with_its_points_kept(db, db_url, tmp_path):
    # Long enough to outlast the limit on any machine (~26 s of training alone here), and a
    # limit long enough that a loaded machine still starts the child and flushes within it.
    endless = {**LONG, "iterations": 200_000}
    job_id = submit(db, endless, db_url)
    worker = start_worker(db_url, log=tmp_path / "w.log", job_timeout_seconds=4)
    try:
        started = time.monotonic()
        wait_for(lambda: job_row(db, job_id).status == "failed", what="time_limit")
        assert time.monotonic() - started < 20
        job = job_row(db, job_id)
        assert job.error_type == "time_limit"
        assert "GRADLAB_JOB_TIMEOUT_SECONDS" in job.error_message
        assert 0 < job.iterations_done < endless["iterations"]
        assert_exactly_once(db, job_id, job.iterations_done)

        small_id = submit(db, SMALL, db_url)
        wait_for(lambda: job_row(db, small_id).status == "succeeded", what="the next job")
        assert worker.poll() is None
    finally:
        kill_group(worker)


def test_cancel_stops_a_job_inside_a_long_gradient_check(db, db_url, tmp_path, settings):
    job_id = submit(db, CHECKED, db_url)
    worker = start_worker(db_url, log=tmp_path / "w.log")
    try:
        wait_for(lambda: in_its_check(db, job_id), what="the check to start")
        time.sleep(1.0)  # well inside it
        with TestClient(create_app(settings), base_url="http://localhost") as client:
            asked = time.monotonic()
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
            wait_for(lambda: job_row(db, job_id).status == "cancelled", timeout=20)
            assert time.monotonic() - asked < 5
        assert [a.outcome for a in attempts_of(db, job_id)] == ["cancelled"]
        small_id = submit(db, SMALL, db_url)
        wait_for(lambda: job_row(db, small_id).status == "succeeded", what="the next job")
        assert worker.poll() is None
    finally:
        kill_group(worker)


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_inside_a_long_gradient_check_hands_the_job_back(db, db_url, tmp_path, signals):
    job_id = submit(db, CHECKED, db_url)
    worker = start_worker(db_url, "--id", "leaving", log=tmp_path / "w.log")
    try:
        wait_for(lambda: in_its_check(db, job_id), what="the check to start")
        time.sleep(1.0)
        sent = time.monotonic()
        for _ in range(signals):
            worker.send_signal(signal.SIGTERM)
            time.sleep(0.05)
        assert worker.wait(timeout=15) == 0
        assert time.monotonic() - sent < 5
    finally:
        kill_group(worker)
    job = job_row(db, job_id)
    assert job.status == "queued" and job.worker_id is None
    assert [a.outcome for a in attempts_of(db, job_id)] == ["released"]
