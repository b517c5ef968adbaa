"""The gradient checker: passes right gradients, catches wrong ones, reports kinks."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import engine as ml
from engine import torchref
from engine.models import Model


class OffByOne(Model):
    """A model with one deliberately wrong gradient coordinate (or a wrong tensor)."""

    def __init__(self, *args, wrong: tuple[str, tuple[int, ...]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.wrong = wrong

    def loss_and_grads(self, params, X, y, l2):
        result, grads = super().loss_and_grads(params, X, y, l2)
        assert self.wrong is not None
        name, index = self.wrong
        grads[name][index] *= 1.01  # a 1% error in one coordinate
        return result, grads


def buggy(wrong: tuple[str, tuple[int, ...]]) -> OffByOne:
    return OffByOne(
        "mlp",
        "cross_entropy",
        n_features=3,
        n_classes=3,
        hidden_sizes=(6,),
        activation="tanh",
        wrong=wrong,
    )


@pytest.mark.parametrize(
    ("kind", "loss", "activation"),
    [
        ("linear_regression", "mse", "relu"),
        ("logistic_regression", "log_loss", "relu"),
        ("softmax_regression", "cross_entropy", "relu"),
        ("mlp", "cross_entropy", "relu"),
        ("mlp", "log_loss", "sigmoid"),
        ("mlp", "half_mse", "tanh"),
    ],
)
def test_correct_gradients_pass(kind, loss, activation, make_problem):
    model, params, X, y = make_problem(kind, loss, activation=activation, seed=2)
    check = ml.gradient_check(model, params, X, y, 1e-2)
    assert check.passed, check.to_dict()
    assert check.available and check.reason is None
    assert check.max_relative_error is not None and check.max_relative_error <= 1e-6
    assert list(check.parameters) == list(model.param_shapes())
    for name, tensor in check.parameters.items():
        assert tensor.checked == tensor.total == params[name].size


def test_a_wrong_gradient_fails_and_is_located(make_problem):
    _, params, X, y = make_problem("mlp", "cross_entropy", hidden_sizes=(6,), seed=4)
    model = buggy(("W2", (4, 1)))
    check = ml.gradient_check(model, params, X, y, 0.0)
    assert check.passed is False
    assert check.max_relative_error == pytest.approx(0.01 / 1.01, rel=1e-4)
    report = check.parameters["W2"]
    assert report.worst_index == (4, 1)
    assert report.analytic == pytest.approx(report.numeric * 1.01, rel=1e-6)
    for name in ("W1", "b1", "b2"):
        assert check.parameters[name].max_relative_error <= 1e-6


def test_sampling_is_seeded_and_bounded(make_problem):
    _, params, X, y = make_problem("mlp", "cross_entropy", hidden_sizes=(6,), seed=4)
    model = buggy(("W1", (2, 5)))  # W1 has 18 coordinates; one is wrong
    outcomes = {}
    for seed in range(12):
        check = ml.gradient_check(model, params, X, y, 0.0, max_coordinates=4, seed=seed)
        assert [t.checked for t in check.parameters.values()] == [4, 4, 4, 3]  # b2 has 3
        assert [t.total for t in check.parameters.values()] == [18, 6, 18, 3]
        again = ml.gradient_check(model, params, X, y, 0.0, max_coordinates=4, seed=seed)
        assert again.to_dict() == check.to_dict()
        outcomes[seed] = check.passed
    # a sample of 4 of 18 coordinates catches the bad one only sometimes
    assert set(outcomes.values()) == {True, False}


def test_mae_at_an_exact_fit_reports_kinks_not_failures():
    rng = np.random.default_rng(0)
    model = ml.make_model("linear_regression", n_features=2, loss="mae")
    params = {"W": rng.standard_normal((2, 1)), "b": rng.standard_normal(1)}
    X = rng.standard_normal((10, 2))
    y = (X @ params["W"] + params["b"]).ravel()  # every residual is exactly 0
    check = ml.gradient_check(model, params, X, y, 0.0)
    assert check.passed is True
    for name, tensor in check.parameters.items():
        assert tensor.kink_count == tensor.checked == params[name].size
        assert tensor.max_relative_error == 0.0
    assert check.to_dict()["parameters"]["W"]["kinks"] == {"count": 2, "indices": [[0, 0], [1, 0]]}


def test_relu_at_zero_init_reports_kinks_in_the_first_layer_only():
    rng = np.random.default_rng(1)
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[7])
    params = model.init_params("zeros")
    X, y = rng.standard_normal((9, 2)), rng.integers(0, 3, 9)
    check = ml.gradient_check(model, params, X, y, 0.0)
    assert check.passed is True
    kinks = {name: t.kink_count for name, t in check.parameters.items()}
    assert kinks == {"W1": 14, "b1": 7, "W2": 0, "b2": 0}
    assert len(check.parameters["W1"].kink_indices) == 5  # a few indices, not all
    assert check.parameters["W1"].kink_indices[0] == (0, 0)


def test_the_callers_arrays_are_left_exactly_as_they_were(make_problem):
    model, params, X, y = make_problem("mlp", "mae", hidden_sizes=(4,), seed=6)
    before = {name: value.copy() for name, value in params.items()}
    ml.gradient_check(model, params, X, y, 0.1, max_coordinates=3)
    for name in params:
        np.testing.assert_array_equal(params[name], before[name])


def test_to_dict_has_exactly_the_api_shape_and_is_json(make_problem):
    model, params, X, y = make_problem("softmax_regression", seed=1)
    result = ml.gradient_check(model, params, X, y, 0.01, max_coordinates=2).to_dict()
    assert set(result) == {
        "reference", "epsilon", "rtol", "atol", "available", "reason", "passed",
        "max_relative_error", "parameters",
    }  # fmt: skip
    assert result["reference"] == "numeric" and result["epsilon"] == 1e-5
    assert result["rtol"] == 1e-6 and result["atol"] == 1e-9
    tensor = result["parameters"]["W"]
    assert set(tensor) == {
        "max_abs_error", "max_relative_error", "worst_index", "analytic", "numeric",
        "checked", "total", "kinks",
    }  # fmt: skip
    assert isinstance(tensor["worst_index"], list) and len(tensor["worst_index"]) == 2
    assert tensor["checked"] == 2 and tensor["total"] == 9
    assert tensor["kinks"] == {"count": 0, "indices": []}
    assert json.loads(json.dumps(result, allow_nan=False)) == result


@pytest.mark.skipif(not torchref.torch_available(), reason="torch is not installed")
def test_the_torch_reference_checks_every_coordinate(make_problem):
    model, params, X, y = make_problem("mlp", "mae", hidden_sizes=(5,), seed=3)
    check = ml.gradient_check(model, params, X, y, 0.02, reference="torch", rtol=1e-10, atol=1e-14)
    assert check.passed, check.to_dict()
    result = check.to_dict()
    assert result["reference"] == "torch" and result["epsilon"] is None
    for name, tensor in result["parameters"].items():
        assert tensor["checked"] == tensor["total"] == params[name].size
        assert tensor["kinks"] == {"count": 0, "indices": []}

    wrong = buggy(("b1", (3,)))
    _, params, X, y = make_problem("mlp", "cross_entropy", hidden_sizes=(6,), seed=4)
    assert ml.gradient_check(wrong, params, X, y, 0.0, reference="torch").passed is False


def test_without_torch_the_reference_is_unavailable_not_failed(monkeypatch, make_problem):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert ml.torch_available() is False
    model, params, X, y = make_problem("softmax_regression")
    result = ml.gradient_check(model, params, X, y, 0.0, reference="torch").to_dict()
    assert result["available"] is False
    assert result["reason"] == "torch is not installed"
    assert result["passed"] is None and result["max_relative_error"] is None
    assert result["parameters"] == {}


def test_bad_options_are_refused(make_problem):
    model, params, X, y = make_problem("softmax_regression")
    with pytest.raises(ml.SpecError, match="reference"):
        ml.gradient_check(model, params, X, y, 0.0, reference="jax")
    with pytest.raises(ml.SpecError, match="epsilon"):
        ml.gradient_check(model, params, X, y, 0.0, epsilon=0)
    with pytest.raises(ml.SpecError, match="max_coordinates"):
        ml.gradient_check(model, params, X, y, 0.0, max_coordinates=0)
    with pytest.raises(ml.ShapeError, match="W"):
        ml.gradient_check(model, {"W": params["W"][:1], "b": params["b"]}, X, y, 0.0)
