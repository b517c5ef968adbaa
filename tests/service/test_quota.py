"""GRADLAB_MAX_ACTIVE_JOBS_PER_USER, on SQLite and PostgreSQL: a student's submission or sweep
that would take their queued + running jobs past it is refused with 429 and Retry-After and
stores nothing; what ends frees a slot; instructors and admins are exempt."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.errors import Busy, install_handlers
from service.jobs import service as jobs_service
from service.jobs.quota import RETRY_AFTER
from service.sweeps import service as sweeps_service
from service.sweeps.schemas import SweepRequest
from store import lifecycle
from store.accounts import Caller, Role
from store.db import Database
from store.settings import Settings
from store.spec import JobSpec
from store.tables import Job, Sweep, User
from tests.conftest import make_settings

SPEC = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 10,
}
LIMIT = 3


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url, max_active_jobs_per_user=LIMIT)


def account(db: Database, role: str) -> str:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    with db.write_session() as session:
        session.add(User(name=name, role=role, created_at=lifecycle.utcnow()))
    return name


def submit(db: Database, settings: Settings, owner: str, role: str, **kw) -> str:
    with db.write_session() as session:
        spec = JobSpec.model_validate(SPEC)
        job, _ = jobs_service.submit(session, spec, settings, Caller(owner, Role(role)), **kw)
        return job.id


def sweep(db: Database, settings: Settings, owner: str, role: str, size: int) -> str:
    request = SweepRequest.model_validate(
        {"name": "s", "base": SPEC, "grid": {"l2": [i / 1000 for i in range(size)]}}
    )
    with db.write_session() as session:
        return sweeps_service.create(session, request, settings, Caller(owner, Role(role)))[0].id


def stored(db: Database) -> tuple[int, int]:
    """Every job and sweep row, anyone's."""
    with db.read_session() as session:
        jobs = session.execute(select(func.count()).select_from(Job)).scalar_one()
        sweeps = session.execute(select(func.count()).select_from(Sweep)).scalar_one()
    return jobs, sweeps


def test_a_student_past_the_limit_gets_429_and_nothing_is_stored(db, settings):
    student = account(db, "student")
    other = account(db, "student")
    for _ in range(LIMIT):
        submit(db, settings, student, "student")
    before = stored(db)
    with pytest.raises(Busy) as refused:
        submit(db, settings, student, "student")
    assert (refused.value.status, refused.value.type) == (429, "too_many_active_jobs")
    assert refused.value.retry_after == RETRY_AFTER
    assert "GRADLAB_MAX_ACTIVE_JOBS_PER_USER" in refused.value.message
    with pytest.raises(Busy):
        sweep(db, settings, student, "student", 2)
    assert stored(db) == before
    submit(db, settings, other, "student")  # the limit is each student's own
    assert stored(db) == (before[0] + 1, before[1])


def test_a_sweep_that_would_go_over_stores_neither_the_sweep_nor_any_job(db, settings):
    student = account(db, "student")
    submit(db, settings, student, "student")
    before = stored(db)
    with pytest.raises(Busy) as refused:
        sweep(db, settings, student, "student", LIMIT)  # 1 + 3 > 3
    assert "these 3 jobs" in refused.value.message
    assert stored(db) == before
    sweep(db, settings, student, "student", LIMIT - 1)  # exactly up to the limit
    assert stored(db) == (before[0] + LIMIT - 1, before[1] + 1)


def test_running_jobs_count_and_finished_ones_free_their_slot(db, settings):
    student = account(db, "student")
    jobs = [submit(db, settings, student, "student") for _ in range(LIMIT)]
    with db.write_engine.begin() as conn:
        running = lifecycle.claim_queued(conn, "w", 60)
    assert running is not None and running.id == jobs[0]
    with pytest.raises(Busy):  # two queued and one running are three
        submit(db, settings, student, "student")
    with db.write_engine.begin() as conn:
        lifecycle.hold(conn, running.id, 1, lifecycle.SUCCEEDED.job_values())
    submit(db, settings, student, "student")
    with db.write_session() as session:
        assert lifecycle.cancel_queued(session, jobs[1])
    submit(db, settings, student, "student")
    with pytest.raises(Busy):
        submit(db, settings, student, "student")


def test_an_idempotent_replay_at_the_limit_returns_the_job_it_made(db, settings):
    student = account(db, "student")
    first = submit(db, settings, student, "student", idempotency_key="k-1")
    for _ in range(LIMIT - 1):
        submit(db, settings, student, "student")
    assert submit(db, settings, student, "student", idempotency_key="k-1") == first
    with pytest.raises(Busy):
        submit(db, settings, student, "student", idempotency_key="k-2")


@pytest.mark.parametrize("role", ["instructor", "admin"])
def test_instructors_and_admins_are_exempt(db, settings, role):
    name = account(db, role)
    for _ in range(LIMIT + 2):
        submit(db, settings, name, role)
    sweep(db, settings, name, role, LIMIT + 1)
    assert stored(db) == (2 * LIMIT + 3, 1)


def test_the_refusal_is_a_429_with_retry_after_and_the_error_body(db, settings):
    """Through FastAPI and gradlab's error handlers, as a route with its caller set does."""
    student = account(db, "student")
    app = FastAPI()
    install_handlers(app)

    @app.post("/submit")
    def _submit() -> dict[str, str]:
        return {"id": submit(db, settings, student, "student")}

    with TestClient(app) as http:
        for _ in range(LIMIT):
            assert http.post("/submit").status_code == 200
        r = http.post("/submit")
    assert r.status_code == 429
    assert r.headers["retry-after"] == str(RETRY_AFTER)
    body = r.json()
    assert body["type"] == "too_many_active_jobs"
    assert f"the limit of {LIMIT} per student" in body["message"]
    assert stored(db) == (LIMIT, 0)
