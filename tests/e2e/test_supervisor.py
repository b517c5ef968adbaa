"""`gradlab serve` supervises: its API process and its workers are started again when they
die, and a running job trains on while the API is down."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from gradlab.procs import Server, children, wait_for
from tests.e2e.test_serve import wait_status

pytestmark = pytest.mark.slow

SPEC = {
    "model": {"kind": "mlp", "hidden_sizes": [50]},
    "data": {"kind": "spiral"},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 6000,
}


def child_of(server: Server, command: str) -> int | None:
    assert server.proc is not None
    for pid, argv in children(server.proc.pid).items():
        if argv[1:4] == ["-m", "gradlab", command]:
            return pid
    return None


def ready(server: Server) -> bool:
    try:
        return httpx.get(f"{server.base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_killed_api_is_restarted_while_its_job_trains_on(sqlite_url, tmp_path):
    with Server(sqlite_url, workers=1, log=tmp_path / "serve.log") as server:
        with server.client() as http:
            job_id = http.post("/v1/jobs", json=SPEC).json()["id"]
            wait_for(lambda: http.get(f"/v1/jobs/{job_id}").json()["iterations_done"] > 0)
        api = child_of(server, "api")
        assert api is not None
        os.kill(api, signal.SIGKILL)
        wait_for(lambda: (pid := child_of(server, "api")) and pid != api, what="a new API")
        wait_for(lambda: ready(server), what="readyz again")
        with server.client() as http:
            job = wait_status(http, job_id, "succeeded", "failed", timeout=120)
            assert job["status"] == "succeeded" and job["attempts"] == 1
            body = http.get(f"/v1/jobs/{job_id}/metrics?format=columns").json()
            assert body["columns"]["iteration"] == list(range(SPEC["iterations"]))
    assert server.proc.returncode == 0


def test_a_killed_worker_is_restarted(sqlite_url, tmp_path):
    with Server(sqlite_url, workers=1, log=tmp_path / "serve.log") as server:
        worker = child_of(server, "worker")
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: (pid := child_of(server, "worker")) and pid != worker, what="a worker")
        with server.client() as http:
            job_id = http.post("/v1/jobs", json={**SPEC, "iterations": 50}).json()["id"]
            assert wait_status(http, job_id, "succeeded", "failed")["status"] == "succeeded"
    assert server.proc.returncode == 0
