"""One attempt from the worker's side, with a real child process: the flush that ends an
attempt has no reply, so a claim lost at that flush must end the attempt there and leave
the child ready for the next job; the next job, claimed in that flush's transaction, is
handed back when the worker stops before starting it."""

from __future__ import annotations

import time

import pytest

from store.db import Database
from store.queue import Queue
from store.status import Outcome
from tests.conftest import make_settings, run_worker
from tests.worker.test_recovery import (
    assert_exactly_once,
    attempts_of,
    chunk_starts,
    job_row,
    submit,
)
from worker.attempt import Attempt
from worker.main import Worker
from worker.process import JobProcess

# One flush only, the one that ends the attempt: no flush is due before the last iteration.
ONE_FLUSH = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 40},
    "optimizer": {"kind": "gd"},
    "iterations": 200,
}


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


def test_a_claim_lost_at_the_finishing_flush_writes_nothing_and_the_child_runs_on(db, db_url):
    settings = make_settings(db_url, lease_seconds=0.05, flush_iterations=10**6, flush_seconds=60)
    child = JobProcess(settings)
    try:
        # A first job, so that the child has imported everything: the next trains at once.
        warm = make_settings(db_url, flush_iterations=10**6, flush_seconds=60)
        submit(db, ONE_FLUSH, db_url)
        first = Queue(db, warm, "warm").claim()
        assert first is not None
        assert Attempt(Queue(db, warm, "warm"), first, warm, child).run() == Outcome.SUCCEEDED
        assert child.proc is not None
        pid = child.proc.pid

        job_id = submit(db, ONE_FLUSH, db_url)
        ours = Queue(db, settings, "ours")
        claim = ours.claim()
        assert claim is not None and claim.job_id == job_id
        time.sleep(0.2)  # our lease expires: another worker takes the job over
        thief = Queue(db, settings, "thief")
        taken = thief.claim()
        assert taken is not None and taken.job_id == job_id and taken.attempt == claim.attempt + 1

        assert Attempt(ours, claim, settings, child).run() == Outcome.LOST
        assert chunk_starts(db, job_id) == []  # the fenced write wrote nothing
        # The same child, waiting for a job (not for a reply), runs the new owner's attempt.
        assert Attempt(thief, taken, settings, child).run() == Outcome.SUCCEEDED
        assert child.proc is not None and child.proc.pid == pid
    finally:
        child.close()
    assert_exactly_once(db, job_id, ONE_FLUSH["iterations"])
    assert [(a.worker_id, a.outcome) for a in attempts_of(db, job_id)] == [
        ("ours", "lost"),
        ("thief", "succeeded"),
    ]


def test_the_next_job_is_claimed_with_the_last_flush_and_handed_back_on_stop(db, db_url):
    settings = make_settings(db_url)
    first, second = submit(db, ONE_FLUSH, db_url), submit(db, ONE_FLUSH, db_url)
    worker = Worker(settings, burst=True)
    try:
        assert worker.run_once()
        assert job_row(db, first).status == "succeeded"
        # The flush that finished the first job claimed the second, in one transaction.
        assert worker.next_claim is not None and worker.next_claim.job_id == second
        assert job_row(db, second).status == "running"
        worker.stopping = True  # as SIGTERM does between two jobs
    finally:
        worker.close()
    assert job_row(db, second).status == "queued"  # handed back, never started
    assert [a.outcome for a in attempts_of(db, second)] == ["released"]
    assert run_worker(settings) == {"succeeded": 1}
    assert_exactly_once(db, second, ONE_FLUSH["iterations"])
