"""`gradlab serve` as a user starts it: a real process on a free port, driven with httpx."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from gradlab.procs import Server, kill_group, start_worker, wait_for
from service.jobs.examples import SEEDS

pytestmark = pytest.mark.slow


def wait_status(client: httpx.Client, job_id: str, *statuses: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        job = client.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(done, timeout=timeout, interval=0.05, what=f"job {job_id} to be {statuses}")


def test_serve_runs_the_cs231n_softmax_walkthrough_over_http(db_url, tmp_path):
    """The README's curl walk-through, with httpx: submit, poll, read loss and checks."""
    with Server(db_url, workers=1, log=tmp_path / "serve.log") as server, server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert "swagger" in http.get("/docs").text.lower()
        r = http.post("/v1/jobs", json=SEEDS["spiral_softmax"]["value"])
        assert r.status_code == 201
        job = wait_status(http, r.json()["id"], "succeeded", "failed")
        assert job["status"] == "succeeded"
        loss = http.get(f"/v1/jobs/{job['id']}/metrics?format=columns").json()["columns"]["loss"]
        assert len(loss) == 200
        assert loss[0] == pytest.approx(1.0986, abs=2e-3)  # ≈ ln 3 at the start
        checks = http.get(f"/v1/jobs/{job['id']}/gradient-checks").json()["checks"]
        assert [c["passed"] for c in checks] == [True, True]
        assert job["summary"]["final_accuracy"] > 0.45
    assert server.proc.returncode == 0


def test_serve_hands_running_jobs_back_on_sigterm_and_they_finish_later(db_url, tmp_path):
    spec = {
        "model": {"kind": "mlp", "hidden_sizes": [100]},
        "data": {"kind": "spiral"},
        "optimizer": {"kind": "gd", "learning_rate": 1.0},
        "l2": 1e-3,
        "iterations": 10000,
    }
    server = Server(db_url, workers=2, log=tmp_path / "serve.log").start()
    try:
        with server.client() as http:
            job_id = http.post("/v1/jobs", json=spec).json()["id"]
            wait_for(
                lambda: http.get(f"/v1/jobs/{job_id}").json()["iterations_done"] > 0,
                what="the job to record points",
            )
        sent = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=30) == 0
        assert time.monotonic() - sent < 20
    finally:
        kill_group(server.proc)

    with Server(db_url, workers=1, log=tmp_path / "serve2.log") as again, again.client() as http:
        job = http.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] in ("queued", "running")
        job = wait_status(http, job_id, "succeeded", timeout=120)
        assert job["attempts"] == 2
        total = http.get(f"/v1/jobs/{job_id}/metrics?format=columns").json()
        assert total["columns"]["iteration"] == list(range(10000))
        outcomes = [a for a in (tmp_path / "serve.log").read_text().splitlines() if "released" in a]
        assert outcomes, "the first server's worker should have handed the job back"


def test_the_api_restarted_while_jobs_run_loses_nothing(db_url, tmp_path):
    spec = {
        "model": {"kind": "mlp", "hidden_sizes": [50]},
        "data": {"kind": "spiral"},
        "optimizer": {"kind": "gd", "learning_rate": 1.0},
        "iterations": 3000,
    }
    worker = start_worker(db_url, log=tmp_path / "worker.log")
    api = Server(db_url, workers=0, log=tmp_path / "api1.log").start()
    try:
        with api.client() as http:
            ids = [
                http.post("/v1/jobs", json={**spec, "name": f"r{i}"}).json()["id"] for i in range(3)
            ]
            wait_for(lambda: http.get(f"/v1/jobs/{ids[0]}").json()["iterations_done"] > 0)
        assert api.stop() == 0
        api = Server(db_url, workers=0, port=api.port, log=tmp_path / "api2.log").start()
        with api.client() as http:
            for job_id in ids:
                job = wait_status(http, job_id, "succeeded", "failed", timeout=120)
                assert job["status"] == "succeeded" and job["attempts"] == 1
                body = http.get(f"/v1/jobs/{job_id}/metrics?format=columns").json()
                assert body["columns"]["iteration"] == list(range(3000))
    finally:
        api.stop()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
        kill_group(worker)


def test_fifty_concurrent_clients_on_sqlite_see_no_5xx_and_no_lock_errors(sqlite_url, tmp_path):
    """50 clients submit and poll at once against the SQLite default with two workers."""
    small = {
        "model": {"kind": "logistic_regression"},
        "data": {"kind": "blobs", "n_samples": 60},
        "optimizer": {"kind": "gd"},
        "iterations": 300,
    }
    problems: list[str] = []
    finished: list[str] = []

    def student(index: int, base: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for round_ in range(3):
                r = http.post(
                    "/v1/jobs",
                    json={**small, "name": f"s{index}"},
                    headers={"Idempotency-Key": f"s{index}-{round_}"},
                )
                if r.status_code != 201:
                    problems.append(f"POST {r.status_code} {r.text[:200]}")
                    continue
                job_id = r.json()["id"]
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    for path in ("", "/metrics?max_points=50"):
                        g = http.get(f"/v1/jobs/{job_id}{path}")
                        if g.status_code >= 500 or "locked" in g.text:
                            problems.append(f"GET {g.status_code} {g.text[:200]}")
                    if (
                        g.status_code == 200
                        and http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
                    ):
                        finished.append(job_id)
                        break
                    time.sleep(0.05)

    with Server(sqlite_url, workers=2, log=tmp_path / "serve.log") as server:
        threads = [threading.Thread(target=student, args=(i, server.base)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert problems == []
    assert len(finished) == len(set(finished)) == 150
    assert "database is locked" not in (tmp_path / "serve.log").read_text()
