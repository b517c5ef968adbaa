"""Shared fixtures: a migrated database per test (SQLite file, or a fresh PostgreSQL database
per session, emptied between tests), an API client, and an in-process worker."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

import migrations as migrate
from service.app import create_app
from store.db import Database
from store.settings import Settings
from store.tables import LOCAL_USER
from worker.main import Worker

IN_CI = bool(os.environ.get("CI"))
PG_ADMIN_URL = os.environ.get(
    "GRADLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_HOW = (
    "PostgreSQL is not reachable at {url} ({error}). Start it, or point "
    "GRADLAB_TEST_POSTGRES_URL at a server where this user may CREATE DATABASE, to run "
    "the PostgreSQL tests (in CI they are required)."
)


def make_settings(url: str, **overrides: Any) -> Settings:
    """Settings for tests: quick polls and flushes unless a test says otherwise."""
    values: dict[str, Any] = {"database_url": url, "poll_seconds": 0.02, "flush_seconds": 0.05}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'gradlab.db'}"
    migrate.upgrade(url)
    return url


def _admin_connect():
    import psycopg

    plain = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(plain, autocommit=True, connect_timeout=3)


@contextmanager
def empty_pg_database(prefix: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database named ``prefix_…``, dropped after; skipped (failed
    in CI) when the server is unreachable."""
    try:
        admin = _admin_connect()
    except Exception as exc:
        message = PG_HOW.format(url=PG_ADMIN_URL, error=exc)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the session, migrated to head, dropped at the end."""
    with empty_pg_database("gradlab_test") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied of the previous test's rows (and accounts,
    but for the ``local`` one the migration made)."""
    import psycopg

    with psycopg.connect(pg_database.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "TRUNCATE submissions, assignments, jobs, sweeps, attempts, metric_chunks, "
            "gradient_checks, checkpoints, reference_runs, datasets, dataset_uploads, "
            "parameter_paths, api_tokens"
        )
        conn.execute("DELETE FROM users WHERE name <> %s", (LOCAL_USER,))
    return pg_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgres": "pg_url"}[request.param])


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """A :class:`store.db.Database` on the test's database, disposed after it."""
    database = Database(settings.database_url, settings)
    yield database
    database.dispose()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), base_url="http://localhost") as c:
        yield c


def run_worker(settings: Settings) -> dict[str, int]:
    """Run one worker in this process until the queue is empty; its outcomes."""
    worker = Worker(settings, burst=True)
    worker.run()
    return worker.outcomes


@pytest.fixture
def drain(settings: Settings):
    """Call to run a worker until the queue is empty."""
    return lambda: run_worker(settings)


SYNTHETIC = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 20},
    "optimizer": {"kind": "gd"},
    "iterations": 1,
}


def synthetic_job(url: str, loss: Any, owner: str = LOCAL_USER) -> str:
    """A succeeded job of ``owner``'s whose points have the losses ``loss``, written through
    the worker's flush path (records → blocks → chunks of 1,000 → fenced flushes) without
    training."""
    import numpy as np

    from service.jobs import service as jobs_service
    from store.accounts import Caller, Role
    from store.codec import pack_state
    from store.db import Database
    from store.lifecycle import SUCCEEDED
    from store.queue import Queue, flush_records
    from store.spec import JobSpec

    settings = make_settings(url)
    db = Database(url, settings)
    try:
        with db.write_session() as session:
            spec = JobSpec.model_validate({**SYNTHETIC, "iterations": len(loss)})
            caller = Caller(owner, Role.STUDENT)
            job_id = jobs_service.submit(session, spec, settings, caller)[0].id
        queue = Queue(db, settings, "test")
        claim = queue.claim()
        assert claim is not None and claim.job_id == job_id
        records = [(i, float(v), float(v), 0.0, 0.5, 0.75) for i, v in enumerate(loss)]
        params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
        state = pack_state({"iteration": 0, "params": params, "velocity": {}})
        flush_records(queue, claim, records, state, finish=SUCCEEDED)
    finally:
        db.dispose()
    return job_id
