"""The claim's fair share, on SQLite and PostgreSQL: the oldest queued job of the owner with
the fewest jobs running, ties to the owner whose oldest queued job is oldest; and on
PostgreSQL a claim locks only the job it takes, so a concurrent claim takes another."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text

from store import lifecycle
from store.db import Database
from store.status import Status
from store.tables import Job, User, new_id

SPEC = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 10,
}


def students(db: Database, *names: str) -> list[str]:
    """New student accounts (unique to the test: PostgreSQL's users outlive it)."""
    suffix = uuid.uuid4().hex[:6]
    accounts = [f"{name}-{suffix}" for name in names]
    with db.write_session() as session:
        for name in accounts:
            session.add(User(name=name, role="student", created_at=lifecycle.utcnow()))
    return accounts


def queue_jobs(db: Database, *owners: str) -> list[str]:
    """One queued job per owner given, in that order (ids increase)."""
    ids = []
    with db.write_session() as session:
        for owner in owners:
            job = lifecycle.queued(
                id=new_id(),
                owner=owner,
                model_kind="linear_regression",
                spec=SPEC,
                iterations=10,
                created_at=lifecycle.utcnow(),
            )
            session.add(job)
            ids.append(job.id)
    return ids


def claim(db: Database, worker: str = "w") -> str | None:
    with db.write_engine.begin() as conn:
        row = lifecycle.claim_queued(conn, worker, 60)
    return None if row is None else row.id


def test_a_claim_takes_the_oldest_job_of_the_owner_running_fewest(db):
    a, b, c = students(db, "a", "b", "c")
    a1, a2, a3, b1, b2, c1 = queue_jobs(db, a, a, a, b, b, c)
    # running (a, b, c) before each claim → the owner taken, and their oldest queued job
    assert claim(db) == a1  # (0, 0, 0): a's oldest job is the oldest of all
    assert claim(db) == b1  # (1, 0, 0): b and c run none; b's oldest is older than c's
    assert claim(db) == c1  # (1, 1, 0)
    assert claim(db) == a2  # (1, 1, 1): a tie; a2 is older than b2
    assert claim(db) == b2  # (2, 1, 1)
    assert claim(db) == a3  # only a waits
    assert claim(db) is None


def test_a_finished_job_no_longer_counts_against_its_owner(db):
    a, b = students(db, "a", "b")
    a1, a2, b1, b2 = queue_jobs(db, a, a, b, b)
    assert claim(db) == a1
    assert claim(db) == b1
    with db.write_engine.begin() as conn:  # a's job ends: a runs none, b runs one
        assert not lifecycle.hold(conn, a1, 1, lifecycle.SUCCEEDED.job_values())
    assert claim(db) == a2
    assert claim(db) == b2


def test_the_sweep_owner_waits_while_a_lone_job_goes_first(db):
    """A student's single job queued behind another's sweep: the next claim takes it."""
    sweeper, lone = students(db, "sweeper", "lone")
    sweep = queue_jobs(db, *[sweeper] * 20)
    assert claim(db) == sweep[0]
    (single,) = queue_jobs(db, lone)
    assert claim(db) == single
    assert [claim(db) for _ in sweep[1:]] == sweep[1:]  # then the sweep, in order


def test_a_handed_back_job_keeps_its_place_among_its_owners_jobs(db):
    (a,) = students(db, "a")
    a1, _a2 = queue_jobs(db, a, a)
    assert claim(db) == a1
    with db.write_engine.begin() as conn:
        lifecycle.hold(conn, a1, 1, lifecycle.RELEASED.job_values())
    assert claim(db) == a1  # older than a2, queued again


@pytest.mark.postgres
def test_postgres_a_claim_locks_only_the_job_it_takes(pg_url):
    db = Database(pg_url)
    try:
        a, b = students(db, "a", "b")
        jobs = queue_jobs(db, a, a, a, b, b)
        with db.write_engine.connect() as first, db.write_engine.connect() as other:
            first.begin()
            taken = lifecycle.claim_queued(first, "first", 60)
            assert taken is not None and taken.id == jobs[0]
            free = other.execute(
                text("SELECT id FROM jobs WHERE status = :q FOR UPDATE SKIP LOCKED"),
                {"q": Status.QUEUED.value},
            ).scalars()
            assert sorted(free) == sorted(jobs[1:])
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgres_concurrent_claims_skip_the_job_the_other_holds(pg_url):
    """While one claim is uncommitted, another skips its job: the same owner's next one if
    that owner still ranks first, else the next owner's; never nothing while jobs wait."""
    db = Database(pg_url)
    try:
        a, b = students(db, "a", "b")
        a1, a2, b1 = queue_jobs(db, a, a, b)
        with db.write_engine.connect() as one, db.write_engine.connect() as two:
            one.begin(), two.begin()
            held = lifecycle.claim_queued(one, "one", 60)
            assert held is not None and held.id == a1
            second = lifecycle.claim_queued(two, "two", 60)  # one's claim is not committed
            assert second is not None and second.id == a2  # so a still runs none
            one.commit(), two.commit()
        assert claim(db) == b1
        (c,) = students(db, "c")
        (c1,) = queue_jobs(db, c)
        with db.write_engine.connect() as one, db.write_engine.connect() as two:
            one.begin(), two.begin()
            held = lifecycle.claim_queued(one, "one", 60)
            assert held is not None and held.id == c1
            assert lifecycle.claim_queued(two, "two", 60) is None  # nothing else waits
            one.commit(), two.commit()
        with db.engine.connect() as conn:
            statuses = dict(conn.execute(select(Job.id, Job.status)).all())
        assert statuses == dict.fromkeys([a1, a2, b1, c1], Status.RUNNING)
    finally:
        db.dispose()
