"""Accounts and tokens: the users API and its roles, 401s, what is stored of a token, the
token cache's revocation, ``gradlab users``, and the migration that gave jobs an owner."""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from typer.testing import CliRunner

import migrations as migrate
from gradlab.cli import app as cli
from service.app import create_app
from service.auth.middleware import CACHE_SECONDS, TokenCache
from store.accounts import Caller, Role, token_hash
from store.tables import ApiToken
from tests.conftest import make_settings
from tests.service.lab import Lab, make_lab

SPEC = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd"},
    "iterations": 5,
}


@pytest.fixture
def lab(db_url: str) -> Lab:
    return make_lab(db_url)


@pytest.fixture
def client(lab: Lab) -> Iterator[TestClient]:
    with TestClient(
        create_app(make_settings(lab.url, auth="required")), base_url="http://localhost"
    ) as c:
        yield c


def test_me_names_the_token_and_401s_say_bearer(client, lab):
    assert client.get("/v1/me", headers=lab.headers("ian")).json() == {
        "name": "ian",
        "role": "instructor",
    }
    for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer nope"}):
        r = client.post("/v1/jobs", json=SPEC, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert set(r.json()) == {"message", "type", "detail"}
    # A body that is not even JSON gets the same 401: nothing is read before the token.
    r = client.post("/v1/jobs", content=b"\xff{", headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200  # the dashboard's shell, with its sign-in


def test_a_token_is_stored_only_as_its_sha256(client, lab):
    token = lab.tokens["bob"]
    assert token.startswith("glab_") and len(token) >= 5 + 43  # 256 bits, URL-safe base64
    engine = create_engine(lab.url)
    with engine.connect() as conn:
        rows = conn.execute(select(ApiToken.__table__)).all()
        dump = repr([tuple(r) for r in rows])
    engine.dispose()
    assert token not in dump and token_hash(token) in dump


def test_instructors_manage_students_only_and_admins_anyone(client, lab):
    new = client.post("/v1/users", json={"name": "cy"}, headers=lab.headers("ian"))
    assert new.status_code == 201 and new.json()["role"] == "student"
    token = new.json()["token"]
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "cy"
    r = client.post(
        "/v1/users", json={"name": "ty", "role": "instructor"}, headers=lab.headers("ian")
    )
    assert r.status_code == 403 and r.json()["type"] == "forbidden"
    assert client.post("/v1/users/ada/revoke", headers=lab.headers("ian")).status_code == 403
    r = client.post(
        "/v1/users", json={"name": "ty", "role": "instructor"}, headers=lab.headers("ada")
    )
    assert r.status_code == 201
    dup = client.post("/v1/users", json={"name": "ty"}, headers=lab.headers("ada"))
    assert dup.status_code == 409
    bad = client.post("/v1/users", json={"name": "Not A Name"}, headers=lab.headers("ada"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "name"
    assert client.post("/v1/users/nobody/revoke", headers=lab.headers("ada")).status_code == 404
    listed = client.get("/v1/users", headers=lab.headers("ian")).json()["users"]
    assert {"alice", "bob", "cy", "ty", "ian", "ada", "local"} == {u["name"] for u in listed}
    assert next(u for u in listed if u["name"] == "alice")["tokens"] == 1  # one revoked
    assert "token" not in listed[0]


def test_revoking_over_http_stops_every_token_at_once(client, lab):
    headers = lab.headers("bob")
    assert client.get("/v1/jobs", headers=headers).status_code == 200  # now cached
    r = client.post("/v1/users/bob/revoke", headers=lab.headers("ian"))
    assert r.json() == {"name": "bob", "revoked": 1}
    r = client.get("/v1/jobs", headers=headers)
    assert r.status_code == 401 and "invalid_token" in r.headers["www-authenticate"]


def test_the_token_cache_reads_once_per_interval_and_sees_a_revocation_after_it():
    """Revocation elsewhere (the CLI, another replica) is seen once the entry is older than
    CACHE_SECONDS, which is under a second; until then no database read is made."""
    now = [0.0]
    reads: list[str] = []
    live = {token_hash("t1"): Caller("bob", Role.STUDENT)}

    async def lookup(digest: str) -> Caller | None:
        reads.append(digest)
        return live.get(digest)

    cache = TokenCache(lookup, clock=lambda: now[0])

    async def run() -> None:
        assert (await cache.caller("t1")) == Caller("bob", Role.STUDENT)
        for _ in range(100):
            assert (await cache.caller("t1")) is not None
        assert len(reads) == 1
        live.clear()  # revoked in another process
        now[0] += CACHE_SECONDS * 0.9
        assert (await cache.caller("t1")) is not None
        now[0] += CACHE_SECONDS * 0.2
        assert (await cache.caller("t1")) is None
        assert (await cache.caller("t2")) is None and (await cache.caller("t2")) is None
        assert len(reads) == 4  # unknown tokens are never cached

    assert CACHE_SECONDS < 1.0
    asyncio.run(run())


def test_off_mode_is_the_local_admin_and_shows_owners(sqlite_url):
    with TestClient(create_app(make_settings(sqlite_url)), base_url="http://localhost") as client:
        assert client.get("/v1/me").json() == {"name": "local", "role": "admin"}
        job = client.post("/v1/jobs", json=SPEC).json()
        assert job["owner"] == "local"
        assert (
            client.get("/v1/jobs", params={"owner": "local"}).json()["jobs"][0]["id"] == job["id"]
        )


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"GRADLAB_DATABASE_URL": url})
    return result.exit_code, result.stdout, result.stderr


def test_gradlab_users_add_import_list_token_revoke(db_url, tmp_path):
    code, out, err = _cli(db_url, "users", "add", "ada", "--role", "admin")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert token.startswith("glab_") and token not in err
    roster = tmp_path / "roster.csv"
    with roster.open("w", newline="") as f:
        csv.writer(f).writerows([["name", "role"], ["ann", ""], ["ben", "instructor"]])
    code, out, err = _cli(db_url, "users", "import", str(roster))
    assert code == 0, err
    made = dict(line.split(",") for line in out.strip().splitlines())
    assert set(made) == {"ann", "ben"}
    code, out, _ = _cli(db_url, "users", "list")
    roles = {line.split("\t")[0]: line.split("\t")[1] for line in out.strip().splitlines()}
    assert roles == {"ada": "admin", "ann": "student", "ben": "instructor", "local": "admin"}
    code, out, _ = _cli(db_url, "users", "token", "ann")
    second = out.strip().splitlines()[-1]
    app = create_app(make_settings(db_url, auth="required"))
    with TestClient(app, base_url="http://localhost") as client:
        for t in (made["ann"], second):
            assert client.get("/v1/me", headers={"Authorization": f"Bearer {t}"}).status_code == 200
        code, out, _ = _cli(db_url, "users", "revoke", "ann")
        assert code == 0 and "2" in out
    with TestClient(
        create_app(make_settings(db_url, auth="required")), base_url="http://localhost"
    ) as client:
        for t in (made["ann"], second):
            assert client.get("/v1/me", headers={"Authorization": f"Bearer {t}"}).status_code == 401
    # Bad input: exit 2, a sentence, nothing stored (a bad row creates nobody).
    code, _, err = _cli(db_url, "users", "add", "ada")
    assert code == 2 and "already" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("name,role\ncy,student\ndee,wizard\n")
    code, _, err = _cli(db_url, "users", "import", str(bad))
    assert code == 2 and "wizard" in err
    code, out, _ = _cli(db_url, "users", "list")
    assert "cy" not in {line.split("\t")[0] for line in out.strip().splitlines()}


def test_jobs_made_before_accounts_belong_to_local(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, name, tags, status, model_kind, spec, iterations, "
                "created_at, iterations_done, attempts, cancel_requested, idempotency_key) "
                "VALUES ('old1', 'before', '{}', 'succeeded', 'linear_regression', '{}', 5, "
                "'2026-11-30 00:00:00', 5, 1, 0, 'k1')"
            )
        )
    migrate.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT owner FROM jobs WHERE id = 'old1'")).scalar() == "local"
        role = conn.execute(text("SELECT role FROM users WHERE name = 'local'")).scalar()
        assert role == "admin"
    engine.dispose()


def test_the_api_document_describes_bearer_tokens(sqlite_url):
    """Swagger UI's Authorize button takes a token; in required mode every /v1 operation
    carries the scheme and documents its 401, and the open routes do not."""
    for mode in ("off", "required"):
        app = create_app(make_settings(sqlite_url, auth=mode))
        schema = app.openapi()
        assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        job = schema["paths"]["/v1/jobs/{job_id}"]["get"]
        health = schema["paths"]["/healthz"]["get"]
        if mode == "required":
            assert job["security"] == [{"bearer": []}] and "401" in job["responses"]
        else:
            assert "security" not in job and "401" not in job["responses"]
        assert "security" not in health and "401" not in health["responses"]
