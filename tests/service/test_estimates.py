"""Specs whose estimated cost is over the server's limits get a 422 before anything is stored:
the peak memory (data, parameters, activations per batch, the Newton Hessian) against
GRADLAB_JOB_MEMORY_MB, the gradient checks' loss evaluations against
GRADLAB_MAX_CHECK_EVALUATIONS. The estimates' accuracy is measured in bench/estimates.py."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine import estimate
from service.app import create_app
from tests.conftest import make_settings

SPIRAL = {"kind": "spiral", "n_per_class": 33_333, "n_classes": 3}
BIG_BLOBS = {"kind": "blobs", "n_samples": 100_000, "n_features": 1000, "n_classes": 1000}
GD = {"kind": "gd", "learning_rate": 0.1}


@pytest.mark.parametrize(
    ("case", "spec", "field", "fragment"),
    [
        (
            "mlp activations",
            {"model": {"kind": "mlp", "hidden_sizes": [512]}, "data": SPIRAL, "optimizer": GD},
            "model.hidden_sizes",
            "activations",
        ),
        (
            "minibatch activations",
            {
                "model": {"kind": "mlp", "hidden_sizes": [2048]},
                "data": SPIRAL,
                "optimizer": {"kind": "sgd", "batch_size": 50_000},
            },
            "optimizer.batch_size",
            "activations",
        ),
        (
            "softmax on 100k x 1000 x 1000",
            {"model": {"kind": "softmax_regression"}, "data": BIG_BLOBS, "optimizer": GD},
            "data.n_samples",
            "data",
        ),
        (
            "newton's hessian",
            {
                "model": {"kind": "softmax_regression"},
                "data": {"kind": "blobs", "n_samples": 1000, "n_features": 300, "n_classes": 30},
                "optimizer": {"kind": "newton"},
            },
            "optimizer.kind",
            "hessian",
        ),
    ],
)
def test_a_job_over_the_memory_limit_gets_a_422_naming_what_to_shrink(
    client, case, spec, field, fragment
):
    r = client.post("/v1/jobs", json={**spec, "iterations": 10})
    assert r.status_code == 422, r.text
    problem = next(d for d in r.json()["detail"] if d["field"] == field)
    assert fragment in problem["msg"] and "GRADLAB_JOB_MEMORY_MB" in problem["msg"]
    assert "1,024 MB" in problem["msg"]  # the limit, in the sentence
    assert client.get("/v1/jobs").json()["jobs"] == []


def post_with(db_url: str, spec: dict, **settings):
    with TestClient(
        create_app(make_settings(db_url, **settings)), base_url="http://localhost"
    ) as client:
        return client.post("/v1/jobs", json=spec)


def test_the_memory_limit_is_the_setting(db_url):
    spec = {
        "model": {"kind": "mlp", "hidden_sizes": [256]},
        "data": {"kind": "spiral", "n_per_class": 20_000},
        "optimizer": GD,
        "iterations": 5,
    }
    assert post_with(db_url, spec, job_memory_mb=1024).status_code == 201
    small = post_with(db_url, spec, job_memory_mb=300)
    assert small.status_code == 422
    assert small.json()["detail"][0]["field"] == "model.hidden_sizes"


@pytest.mark.parametrize(
    ("checks", "field"),
    [
        ({"every": 1, "max_coordinates": None}, "gradient_check.max_coordinates"),
        ({"every": 1, "max_coordinates": 50}, "gradient_check.every"),
    ],
)
def test_gradient_checks_over_the_evaluation_limit_get_a_422(client, checks, field):
    spec = {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "blobs", "n_samples": 200, "n_features": 999, "n_classes": 100},
        "optimizer": GD,
        "iterations": 5_000,
        "gradient_check": checks,
    }
    r = client.post("/v1/jobs", json=spec)
    assert r.status_code == 422, r.text
    problem = next(d for d in r.json()["detail"] if d["field"] == field)
    assert "GRADLAB_MAX_CHECK_EVALUATIONS" in problem["msg"] and "200,000" in problem["msg"]
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_every_seed_exercise_is_within_the_default_limits(client):
    from service.jobs.examples import SEEDS

    for example in SEEDS.values():
        assert client.post("/v1/jobs", json=example["value"]).status_code == 201


@pytest.mark.parametrize(
    ("iterations", "every", "expected"),
    [
        (1, 0, [0]),
        (2, 0, [0, 1]),
        (10, 0, [0, 9]),
        (10, 3, [0, 3, 6, 9]),
        (11, 3, [0, 3, 6, 9, 10]),
    ],
)
def test_the_count_of_checked_iterations_matches_the_worker(iterations, every, expected):
    from worker.runner import JobRun

    checked, i = [], JobRun._next_check(0, every, iterations - 1)
    while i != -1:
        checked.append(i)
        i = JobRun._next_check(i + 1, every, iterations - 1)
    assert checked == expected
    assert estimate.check_iterations(iterations, every) == len(expected)
