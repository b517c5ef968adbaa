"""What the jobs and metrics tests share: a small regression job and submitting it."""

from __future__ import annotations

from fastapi.testclient import TestClient

LINE = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 50},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 40,
}


def submit(client: TestClient, spec: dict, **kw) -> dict:
    r = client.post("/v1/jobs", json=spec, **kw)
    assert r.status_code == 201, r.text
    return r.json()
