"""The API's checks on a spec, computed without the engine, agree with the engine."""

from __future__ import annotations

import pytest

from service.jobs.examples import SEEDS
from service.jobs.validation import data_shape, output_size, param_shapes
from store.build import build
from store.spec import MODEL_LOSSES, JobSpec

SPECS = [example["value"] for example in SEEDS.values()] + [
    {
        "model": {"kind": "mlp", "hidden_sizes": [7, 5], "activation": "tanh"},
        "loss": "mse",
        "data": {"kind": "blobs", "n_samples": 30, "n_features": 4},
        "optimizer": {"kind": "gd"},
        "iterations": 1,
    },
    {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "inline", "X": [[0.0, 1.0, 2.0]] * 4, "y": [0, 3, 1, 2]},
        "optimizer": {"kind": "sgd"},
        "iterations": 1,
    },
]


@pytest.mark.parametrize("raw", SPECS, ids=lambda s: s.get("name") or s["model"]["kind"])
def test_the_shapes_the_api_checks_are_the_shapes_the_engine_builds(raw):
    spec = JobSpec.model_validate(raw)
    loss = spec.loss or MODEL_LOSSES[spec.model.kind][0]
    shape = data_shape(spec)
    expected = param_shapes(
        spec, shape.features, output_size(spec.model.kind, loss, shape.n_classes)
    )
    built = build(spec.normalised())
    assert built.model.param_shapes() == expected
    assert built.data.X.shape == (shape.rows, shape.features)
