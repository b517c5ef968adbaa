"""Operations, as an operator sees them: a real ``gradlab serve`` (its API and a job-worker
process) with GRADLAB_AUTH=required and GRADLAB_LOG_FORMAT=json, scraped at /metrics with an
admin's token; and a lone ``gradlab worker`` serving its own metrics on a port (compose)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import migrations as migrate
from gradlab.procs import Server, free_port, kill_group, start_worker, wait_for
from store.telemetry import MULTIPROC_ENV
from tests.service.lab import Lab, make_lab

pytestmark = pytest.mark.slow

SPEC = {
    "name": "ops-line",
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 30,
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape as ``(sample name, sorted labels) -> value``."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_done(http: httpx.Client, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = http.get(f"/v1/jobs/{job_id}", headers=headers).json()
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_for(done, timeout=60, interval=0.05, what=f"job {job_id} to finish")


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[Server, Lab, Path, str]]:
    """One server for the module: a job of alice's run by its worker, two requests that
    fail, and the metrics directory the supervisor gave its children."""
    tmp = tmp_path_factory.mktemp("ops")
    url = f"sqlite:///{tmp / 'gradlab.db'}"
    migrate.upgrade(url)
    lab = make_lab(url)
    log = tmp / "serve.log"
    server = Server(url, workers=1, log=log, auth="required", log_format="json").start()
    try:
        with server.client() as http:
            alice = lab.headers("alice")
            job_id = http.post("/v1/jobs", json=SPEC, headers=alice).json()["id"]
            assert wait_done(http, job_id, alice)["status"] == "succeeded"
            assert http.get("/v1/jobs/nope", headers=alice).status_code == 404
            assert http.get("/v1/jobs").status_code == 401
        yield server, lab, log, metrics_dir_of(server)
    finally:
        server.stop()
        kill_group(server.proc)


def _children(pid: int, command: str) -> list[int]:
    from gradlab.procs import children

    return [child for child, argv in children(pid).items() if command in argv]


def scrape_as(server: Server, headers: dict[str, str]) -> httpx.Response:
    with server.client() as http:
        return http.get("/metrics", headers=headers)


def test_metrics_sum_the_api_and_the_job_workers_processes(served):
    server, lab, _, metrics_dir = served
    r = scrape_as(server, lab.headers("ada"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    scrape = samples(r.text)
    # The API's requests, by route template and status class; never a raw path or a user.
    jobs_route = {"method": "GET", "route": "/v1/jobs/{job_id}"}
    assert value(scrape, "gradlab_http_requests_total", **jobs_route, status="2xx") >= 1
    assert value(scrape, "gradlab_http_requests_total", **jobs_route, status="4xx") == 1
    # Refused before any route matched (no token): the template is "-".
    assert value(scrape, "gradlab_http_requests_total", method="GET", route="-", status="4xx") == 1
    count = value(scrape, "gradlab_http_request_duration_seconds_count", **jobs_route, status="4xx")
    assert count == 1
    assert "nope" not in r.text and "alice" not in r.text
    # The worker process's: its claim, the job's pickup, its flushes and its one attempt.
    assert value(scrape, "gradlab_claim_duration_seconds_count", result="job") == 1
    assert value(scrape, "gradlab_claim_duration_seconds_count", result="empty") >= 1
    assert value(scrape, "gradlab_job_pickup_seconds_count", model="linear_regression") == 1
    assert value(scrape, "gradlab_flush_duration_seconds_count", final="yes") == 1
    outcome = {"model": "linear_regression", "outcome": "succeeded"}
    assert value(scrape, "gradlab_job_duration_seconds_count", **outcome) == 1
    assert 0 < value(scrape, "gradlab_job_duration_seconds_sum", **outcome) < 60
    # From the database at scrape time.
    assert value(scrape, "gradlab_jobs", status="succeeded") == 1
    assert value(scrape, "gradlab_jobs", status="queued") == 0
    assert value(scrape, "gradlab_queue_depth") == 0
    # The worker wrote them in the supervisor's private directory (files named by its pid).
    worker_pid = next(iter(_children(server.proc.pid, "worker")))
    assert list(Path(metrics_dir).glob(f"*_{worker_pid}.db"))


def test_only_an_admins_token_scrapes(served):
    server, lab, _, _ = served
    assert scrape_as(server, {}).status_code == 401
    for name in ("alice", "ian"):
        r = scrape_as(server, lab.headers(name))
        assert r.status_code == 403 and r.json()["type"] == "forbidden"


def test_json_log_lines_carry_requests_and_transitions_and_no_token(served):
    _, lab, log, _ = served
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(e) for e in lines)
    access = [e for e in lines if e["logger"] == "gradlab.access"]
    submitted = [e for e in access if e["method"] == "POST" and e["route"] == "/v1/jobs"]
    assert submitted and submitted[0]["user"] == "alice" and submitted[0]["status"] == 201
    assert isinstance(submitted[0]["ms"], float)
    refused = [e for e in access if e["route"] == "-" and e["status"] == 401]
    assert refused and refused[0]["user"] == "-"
    moves = [e for e in lines if e["logger"] == "gradlab.jobs"]
    assert [(e["from"], e["to"], e["attempt"], e["owner"]) for e in moves] == [
        ("queued", "running", 1, "alice"),
        ("running", "succeeded", 1, "alice"),
    ]
    assert len({e["job_id"] for e in moves}) == 1
    text = log.read_text()
    assert not [t for t in lab.tokens.values() if t in text], "a token reached the log"
    assert "glab_" not in text


def metrics_dir_of(server: Server) -> str:
    """The PROMETHEUS_MULTIPROC_DIR the supervisor gave its API process."""
    api_pid = next(iter(_children(server.proc.pid, "api")))
    environ = Path(f"/proc/{api_pid}/environ").read_bytes().split(b"\0")
    entry = next(e for e in environ if e.startswith(MULTIPROC_ENV.encode() + b"="))
    return entry.split(b"=", 1)[1].decode()


def test_a_lone_worker_serves_its_metrics_on_its_port(tmp_path):
    """compose's topology: `gradlab serve --workers 0` and a `gradlab worker` of its own,
    which serves its metrics on GRADLAB_WORKER_METRICS_PORT. And `gradlab serve` removes
    its metrics directory when it stops."""
    url = f"sqlite:///{tmp_path / 'gradlab.db'}"
    port = free_port()
    with Server(url, workers=0) as server, server.client() as http:
        metrics_dir = metrics_dir_of(server)
        assert os.path.isdir(metrics_dir)
        worker = start_worker(url, log=tmp_path / "worker.log", worker_metrics_port=port)
        try:
            job_id = http.post("/v1/jobs", json=SPEC).json()["id"]
            assert wait_done(http, job_id, {})["status"] == "succeeded"

            def scraped() -> dict | None:
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                except httpx.HTTPError:
                    return None
                found = samples(text)
                counted = value(
                    found, "gradlab_job_duration_seconds_count",
                    model="linear_regression", outcome="succeeded",
                )  # fmt: skip
                return found if counted == 1 else None

            scrape = wait_for(scraped, timeout=20, what="the worker's metrics")
            assert value(scrape, "gradlab_job_pickup_seconds_count", model="linear_regression") == 1
        finally:
            worker.terminate()
            worker.wait(timeout=20)
            kill_group(worker)
    assert not os.path.exists(metrics_dir)
