"""Sweeps: a grid expanded into jobs, listed with their results, capped by a setting."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings

BASE = {
    "model": {"kind": "softmax_regression"},
    "data": {"kind": "spiral", "n_per_class": 30},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 60,
}
GRID = {"optimizer.learning_rate": [0.01, 0.1, 1.0], "l2": [0, 0.001]}


def test_a_sweep_makes_one_job_per_combination_and_sorts_their_results(client, drain):
    r = client.post("/v1/sweeps", json={"name": "lr-l2", "base": BASE, "grid": GRID})
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert client.get(r.headers["location"]).json()["id"] == sweep["id"]
    assert len(sweep["jobs"]) == 6
    combos = [
        (j["overrides"]["optimizer.learning_rate"], j["overrides"]["l2"]) for j in sweep["jobs"]
    ]
    assert combos == [(lr, l2) for lr in (0.01, 0.1, 1.0) for l2 in (0, 0.001)]
    assert all(j["status"] == "queued" for j in sweep["jobs"])
    assert sweep["jobs"][0]["name"] == "lr-l2[learning_rate=0.01,l2=0]"

    assert drain() == {"succeeded": 6}
    by_loss = client.get(f"/v1/sweeps/{sweep['id']}?sort=final_loss").json()["jobs"]
    losses = [j["final_loss"] for j in by_loss]
    assert losses == sorted(losses)
    assert by_loss[0]["overrides"]["optimizer.learning_rate"] == 1.0  # the big step wins here
    by_acc = client.get(f"/v1/sweeps/{sweep['id']}?sort=-final_accuracy").json()["jobs"]
    accs = [j["final_accuracy"] for j in by_acc]
    assert accs == sorted(accs, reverse=True)

    listed = client.get(f"/v1/jobs?sweep_id={sweep['id']}").json()["jobs"]
    assert {j["id"] for j in listed} == {j["id"] for j in sweep["jobs"]}
    tagged = client.get("/v1/jobs?tag=optimizer.learning_rate:0.1").json()["jobs"]
    assert len(tagged) == 2


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        ({"optimizer.learning_rate": [0.1, -1.0]}, "greater than 0"),
        ({"optimizer.nesterov": [True]}, "not permitted"),
        ({"model.nope.deep": [1]}, "not a field path"),
        ({"loss": ["mae"]}, "does not take the loss"),
        ({"l2": []}, "at least one value"),
    ],
)
def test_a_grid_with_a_bad_combination_is_refused_and_stores_nothing(client, grid, needle):
    r = client.post("/v1/sweeps", json={"base": BASE, "grid": grid})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["field"].startswith("grid")
    assert needle in detail["msg"]
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_a_grid_above_the_cap_is_refused(db_url):
    with TestClient(
        create_app(make_settings(db_url, max_sweep_jobs=5)), base_url="http://localhost"
    ) as client:
        r = client.post("/v1/sweeps", json={"base": BASE, "grid": GRID})
        assert r.status_code == 422
        assert "GRADLAB_MAX_SWEEP_JOBS" in r.json()["message"]
        assert client.get("/v1/jobs").json()["jobs"] == []


def test_an_unknown_sweep_is_404(client):
    assert client.get("/v1/sweeps/nope").status_code == 404


def test_reading_a_sweep_back_shows_what_creating_it_answered(client, drain):
    grid = {"optimizer.learning_rate": [0.1, 1.0], "model.kind": ["softmax_regression"]}
    created = client.post("/v1/sweeps", json={"name": "back", "base": BASE, "grid": grid}).json()
    assert client.get(f"/v1/sweeps/{created['id']}").json() == created
    assert client.get(f"/v1/sweeps/{created['id']}?sort=-created").json()["jobs"] == list(
        reversed(created["jobs"])
    )

    assert drain() == {"succeeded": 2}
    first, second = (j["id"] for j in created["jobs"])
    assert client.delete(f"/v1/jobs/{first}").status_code == 204
    [job] = client.get(f"/v1/sweeps/{created['id']}").json()["jobs"]
    full = client.get(f"/v1/jobs/{second}").json()
    assert job == {
        "id": second,
        "name": full["name"],
        "status": "succeeded",
        "overrides": {"optimizer.learning_rate": 1.0, "model.kind": "softmax_regression"},
        "final_loss": full["summary"]["final_loss"],
        "final_accuracy": full["summary"]["final_accuracy"],
        "best_loss": full["summary"]["best_loss"],
        "iterations_done": 60,
    }
