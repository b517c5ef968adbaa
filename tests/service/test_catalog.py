"""GET /v1/catalog, and the spec, validation and worker that derive from the same catalog."""

from __future__ import annotations

import pytest

from engine import catalog
from store.status import TERMINAL, Status

OUTLIERS = {
    "model": {"kind": "linear_regression"},
    "loss": "huber",
    "data": {
        "kind": "inline",
        "X": [[x / 10] for x in range(-10, 11)],
        "y": [2 * x / 10 + 1 + (8.0 if x % 7 == 0 else 0.0) for x in range(-10, 11)],
    },
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 400,
}


def test_the_catalog_lists_every_kind_with_its_defaults_and_the_statuses(client):
    body = client.get("/v1/catalog").json()
    assert list(body["models"]) == list(catalog.MODELS)
    assert body["models"]["linear_regression"]["losses"] == ["mse", "half_mse", "mae", "huber"]
    assert body["models"]["mlp"]["options"]["activation"] == {
        "default": "relu",
        "type": "choice",
        "choices": ["relu", "sigmoid", "tanh"],
    }
    assert body["losses"]["huber"]["options"] == {"delta": {"default": 1.0, "type": "float"}}
    assert body["optimizers"]["sgd"]["options"]["batch_size"] == {"default": 32, "type": "int"}
    assert body["optimizers"]["newton"]["options"]["learning_rate"]["default"] == 1.0
    assert body["inits"]["random"]["options"]["scale"]["default"] == 0.01
    assert body["statuses"]["terminal"] == [s.value for s in TERMINAL]
    assert set(body["statuses"]["all"]) == {s.value for s in Status}


def test_a_spec_takes_its_defaults_from_the_catalog(client):
    spec = {**OUTLIERS, "optimizer": {"kind": "sgd"}, "init": {"kind": "random"}}
    stored = client.post("/v1/jobs", json=spec).json()["spec"]
    assert stored["optimizer"] == {"kind": "sgd", **catalog.OPTIMIZERS["sgd"].options}
    assert stored["init"] == {"kind": "random", **catalog.INITS["random"]}
    assert stored["loss_options"] == {"delta": 1.0}
    mlp = client.post("/v1/jobs", json={**OUTLIERS, "model": {"kind": "mlp"}}).json()["spec"]
    assert mlp["model"]["hidden_sizes"] == list(catalog.MODELS["mlp"].options["hidden_sizes"])
    plain = client.post("/v1/jobs", json={**OUTLIERS, "loss": None}).json()["spec"]
    assert (plain["loss"], plain["loss_options"]) == ("mse", {})


def test_a_huber_job_fits_the_line_through_its_outliers_better_than_mse(client, drain):
    ids = {}
    for loss in ("huber", "mse"):
        ids[loss] = client.post("/v1/jobs", json={**OUTLIERS, "loss": loss}).json()["id"]
    assert drain() == {"succeeded": 2}
    b = {}
    for loss, job_id in ids.items():
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["gradient_checks_passed"] is True
        b[loss] = client.get(f"/v1/jobs/{job_id}/parameters").json()["parameters"]["b"]
    assert abs(b["huber"][0] - 1.0) < abs(b["mse"][0] - 1.0) / 3


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"loss_options": {"width": 2.0}}, "loss_options.width", "its options: delta"),
        ({"loss_options": {"delta": 0.0}}, "loss_options.delta", "greater than 0"),
        ({"loss": "mse", "loss_options": {"delta": 1.0}}, "loss_options.delta", "none"),
        ({"optimizer": {"kind": "newton"}}, "optimizer.kind", "huber"),
        ({"model": {"kind": "logistic_regression"}}, "loss", "log_loss, mse"),
    ],
)
def test_loss_rules_from_the_catalog_get_422s_naming_the_field(client, change, field, fragment):
    r = client.post("/v1/jobs", json={**OUTLIERS, **change})
    assert r.status_code == 422, r.text
    problem = next(d for d in r.json()["detail"] if d["field"] == field)
    assert fragment in problem["msg"]
    assert client.get("/v1/jobs").json()["jobs"] == []
