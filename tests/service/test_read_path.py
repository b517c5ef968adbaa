"""GET /v1/jobs/{id}'s read path (``store.db.ReadPath``): every variant the benchmarks
compare answers the same, and survives the database server dropping its connections."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from store.db import READ_PATH_ENV, ReadPath
from tests.conftest import make_settings

LINE = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 50},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 40,
}


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


@pytest.mark.parametrize("path", ReadPath.NAMES)
def test_every_read_path_shows_a_job_as_the_list_does(db_url, drain, monkeypatch, path):
    monkeypatch.setenv(READ_PATH_ENV, path)
    with TestClient(create_app(make_settings(db_url))) as client:
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
@pytest.mark.parametrize("path", ReadPath.NAMES)
def test_every_read_path_survives_the_server_dropping_its_connections(pg_url, monkeypatch, path):
    monkeypatch.setenv(READ_PATH_ENV, path)
    with TestClient(create_app(make_settings(pg_url))) as client:
        job = client.post("/v1/jobs", json=LINE).json()
        for _ in range(3):  # several connections opened and prepared
            assert client.get(f"/v1/jobs/{job['id']}").json() == job
        assert _drop_connections(pg_url) > 0
        for _ in range(3):
            r = client.get(f"/v1/jobs/{job['id']}")
            assert r.status_code == 200, r.text
            assert r.json() == job


def test_an_unknown_read_path_is_refused(sqlite_url, monkeypatch):
    monkeypatch.setenv(READ_PATH_ENV, "orm")
    with pytest.raises(ValueError, match=READ_PATH_ENV):
        create_app(make_settings(sqlite_url))
