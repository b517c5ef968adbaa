"""GET /v1/jobs/{id}'s read (``store.fastread.FastReader``): it answers as the list does, and
survives the database server dropping its connections, as a restart does. (The library
read paths the benchmarks measure it against, in ``bench/readpaths.py``, are the
benchmarks' to run: the tests import nothing from bench.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs import service as jobs_service
from service.jobs.repository import job_row
from store.accounts import LOCAL
from store.db import Database
from store.spec import JobSpec
from store.tables import LOCAL_USER
from tests.conftest import make_settings

LINE = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 50},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 40,
}


@contextmanager
def _client(url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(url)), base_url="http://localhost") as client:
        yield client


def _drop_connections(url: str) -> int:
    """What a server restart does to the API's connections: terminate every backend of this
    database but ours; how many there were."""
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as admin:
        return len(
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        )


def test_the_read_shows_a_job_as_the_list_does(db_url, drain):
    with _client(db_url) as client:
        created = client.post("/v1/jobs", json={**LINE, "tags": {"k": "v"}}).json()
        assert client.get(f"/v1/jobs/{created['id']}").json() == created
        assert drain() == {"succeeded": 1}
        [listed] = client.get("/v1/jobs").json()["jobs"]
        job = client.get(f"/v1/jobs/{created['id']}").json()
        assert job == listed
        assert job["status"] == "succeeded" and job["gradient_checks_passed"] is True
        assert isinstance(job["summary"]["final_loss"], float)
        missing = client.get("/v1/jobs/nope")
        assert missing.status_code == 404 and missing.json()["type"] == "not_found"


@pytest.mark.postgres
def test_the_read_survives_the_server_dropping_its_connections(pg_url):
    with _client(pg_url) as client:
        job = client.post("/v1/jobs", json=LINE).json()
        for _ in range(3):  # connections opened, the statement prepared
            assert client.get(f"/v1/jobs/{job['id']}").json() == job
        assert _drop_connections(pg_url) > 0
        for _ in range(3):
            r = client.get(f"/v1/jobs/{job['id']}")
            assert r.status_code == 200, r.text
            assert r.json() == job


@pytest.mark.postgres
def test_the_read_survives_losing_all_its_connections_at_once(pg_url):
    """Eight reads at a time, so that several pooled connections are open when they go."""
    settings = make_settings(pg_url)
    db = Database(pg_url, settings)
    with db.write_session() as session:
        job = jobs_service.new_job(session, JobSpec.model_validate(LINE), settings, LOCAL_USER)
        session.add(job)
        session.flush()
        job_id = job.id

    async def reads() -> None:
        rows = await asyncio.gather(*[job_row(db, job_id, LOCAL) for _ in range(8)])
        assert [row.id if row else None for row in rows] == [job_id] * 8

    async def main() -> None:
        try:
            for _ in range(5):
                await reads()
            assert _drop_connections(pg_url) >= 2
            await reads()
            await reads()
        finally:
            await db.aclose()

    try:
        asyncio.run(main())
    finally:
        db.dispose()
