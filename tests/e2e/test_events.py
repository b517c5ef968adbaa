"""The live event stream against a real server: every point once, across a reconnect."""

from __future__ import annotations

import httpx
import orjson
import pytest
from httpx_sse import connect_sse

from gradlab.procs import Server

pytestmark = pytest.mark.slow

SPEC = {
    "name": "stream-me",
    "model": {"kind": "mlp", "hidden_sizes": [100]},
    "data": {"kind": "spiral"},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "l2": 1e-3,
    "iterations": 8000,
    "gradient_check": {"every": 2000},
}


def read(http: httpx.Client, job_id: str, last_id: str | None, stop_after_metrics: int | None):
    """Events until ``end`` (or until ``stop_after_metrics`` metrics events): (events, last id)."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    events = []
    with connect_sse(
        http, "GET", f"/v1/jobs/{job_id}/events?interval=0.05", headers=headers
    ) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            events.append((sse.event, sse.id, orjson.loads(sse.data)))
            last_id = sse.id
            metrics = sum(1 for e in events if e[0] == "metrics")
            if stop_after_metrics is not None and metrics >= stop_after_metrics:
                break
    return events, last_id


def test_every_point_arrives_exactly_once_across_a_reconnect(db_url, tmp_path):
    with Server(db_url, workers=1, log=tmp_path / "serve.log") as server, server.client() as http:
        job_id = http.post("/v1/jobs", json=SPEC).json()["id"]
        first, last_id = read(http, job_id, None, stop_after_metrics=3)
        assert first[0][0] == "status"
        second, _ = read(http, job_id, last_id, stop_after_metrics=None)

        events = first + second
        iterations = []
        for kind, _, data in events:
            if kind == "metrics":
                cols = data["columns"]
                assert cols["iteration"] == list(range(data["first"], data["last"] + 1))
                assert set(cols) == {
                    "iteration",
                    "loss",
                    "data_loss",
                    "reg_loss",
                    "grad_norm",
                    "accuracy",
                }
                iterations += cols["iteration"]
        assert iterations == list(range(SPEC["iterations"]))  # every point, once, in order
        metrics_events = [e for e in events if e[0] == "metrics"]
        assert len(metrics_events) < SPEC["iterations"] / 10  # batched, not one per iteration

        checks = [data["iteration"] for kind, _, data in events if kind == "check"]
        assert checks == [0, 2000, 4000, 6000, 7999]
        assert events[-1][0] == "end" and events[-1][2]["status"] == "succeeded"
        statuses = [data["status"] for kind, _, data in events if kind == "status"]
        assert "running" in statuses or statuses[0] == "queued"

        # The streamed points are the stored points.
        stored = http.get(f"/v1/jobs/{job_id}/metrics?format=columns").json()["columns"]
        streamed_loss = [
            v for kind, _, d in events if kind == "metrics" for v in d["columns"]["loss"]
        ]
        assert streamed_loss == stored["loss"]

        # Reconnecting after the end replays nothing but the status and the end.
        tail, _ = read(http, job_id, events[-1][1], stop_after_metrics=None)
        assert [k for k, _, _ in tail] == ["status", "end"]


def test_events_of_an_unknown_job_are_404(sqlite_url, tmp_path):
    with (
        Server(sqlite_url, workers=0, log=tmp_path / "serve.log") as server,
        server.client() as http,
    ):
        assert http.get("/v1/jobs/nope/events").status_code == 404
