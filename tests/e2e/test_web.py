"""The web surface of a real `gradlab serve`: foreign Host names refused, the headers on the
wire, the access log in its stderr, and the loopback rule of GRADLAB_AUTH=off."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from gradlab.procs import ROOT, Server, free_port, gradlab_env
from service.web.headers import DASHBOARD_CSP

pytestmark = pytest.mark.slow

ACCESS_LINE = re.compile(
    r"INFO gradlab\.access: (?P<user>\S+) (?P<method>[A-Z]+) (?P<route>\S+) (?P<status>\d{3}) "
    r"(?P<ms>\d+\.\d)ms$"
)


def access_lines(log) -> list[dict[str, str]]:
    found = [ACCESS_LINE.search(line) for line in log.read_text().splitlines()]
    return [m.groupdict() for m in found if m]


def test_a_foreign_host_is_refused_and_every_request_is_logged_once(sqlite_url, tmp_path):
    log = tmp_path / "serve.log"
    with Server(sqlite_url, workers=0, log=log) as server, server.client() as http:
        r = http.get("/v1/jobs", headers={"Host": "rebound.example"})
        assert r.status_code == 400 and r.json()["type"] == "host_not_allowed", r.text
        r = http.post("/v1/jobs", json={}, headers={"Host": f"attacker.example:{server.port}"})
        assert r.status_code == 400
        assert http.get("/v1/jobs", headers={"Host": f"localhost:{server.port}"}).status_code == 200

        page = http.get("/")
        assert page.headers["content-security-policy"] == DASHBOARD_CSP
        assert page.headers["x-content-type-options"] == "nosniff"
        assert not [h for h in page.headers if h.startswith("access-control-")]
        job = http.get("/v1/jobs/0123?x=1", headers={"Authorization": "Bearer s3cret-token"})
        assert job.status_code == 404
    lines = access_lines(log)
    shapes = [(x["user"], x["method"], x["route"], x["status"]) for x in lines]
    # A line is written when its answer is done, which a loaded machine may let the next
    # request's overtake: compare them as a multiset.
    assert sorted(s for s in shapes if s[2] != "/readyz") == sorted([
        ("-", "GET", "-", "400"),
        ("-", "POST", "-", "400"),
        ("local", "GET", "/v1/jobs", "200"),  # GRADLAB_AUTH=off: the local account's
        ("local", "GET", "/", "200"),
        ("local", "GET", "/v1/jobs/{job_id}", "404"),
    ])  # fmt: skip
    assert ("local", "GET", "/readyz", "200") in shapes
    text = log.read_text()
    assert "s3cret-token" not in text and "0123" not in text
    assert '"GET /v1/jobs HTTP/1.1"' not in text  # uvicorn's own access log stays off


def test_cors_headers_only_for_a_listed_origin(sqlite_url, tmp_path):
    listed = "http://course.example:3000"
    with (
        Server(sqlite_url, workers=0, log=tmp_path / "serve.log", cors_origins=listed) as server,
        server.client() as http,
    ):
        r = http.get("/v1/jobs", headers={"Origin": listed})
        assert r.headers["access-control-allow-origin"] == listed
        r = http.get("/v1/jobs", headers={"Origin": "http://other.example"})
        assert "access-control-allow-origin" not in r.headers


def serve(url: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = gradlab_env(url, **settings)
    return subprocess.run(
        [sys.executable, "-m", "gradlab", "serve", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_serve_without_auth_refuses_a_host_others_can_reach(host, tmp_path):
    db = tmp_path / "unused.db"
    done = serve(f"sqlite:///{db}", "--host", host, "--port", str(free_port()), auth="off")
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1 and message.count(". ") == 0, message
    assert "GRADLAB_AUTH=off" in message and "--allow-unauthenticated" in message
    assert not db.exists()  # refused before anything was migrated


def test_serve_without_auth_listens_beyond_loopback_when_told_to(sqlite_url, tmp_path):
    command = ("gradlab", "serve", "--host", "0.0.0.0", "--allow-unauthenticated")
    with (
        Server(sqlite_url, workers=0, log=tmp_path / "serve.log", command=command) as server,
        server.client() as http,
    ):
        assert http.get("/healthz").status_code == 200  # on loopback, of all addresses


def test_serve_answers_to_the_host_it_was_told_to_listen_on(sqlite_url, tmp_path):
    command = ("gradlab", "serve", "--host", "127.0.0.2")  # loopback, not a default name
    server = Server(sqlite_url, workers=0, log=tmp_path / "serve.log", command=command)
    server.base = f"http://127.0.0.2:{server.port}"
    with server, server.client() as http:
        assert http.get("/v1/jobs").status_code == 200
        assert http.get("/v1/jobs", headers={"Host": "localhost"}).status_code == 200
        assert http.get("/v1/jobs", headers={"Host": "127.0.0.3"}).status_code == 400
