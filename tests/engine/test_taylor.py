"""The Taylor test: slope 2 for the engine's gradients on every model, 1 for wrong ones; the
smooth piece a ReLU net is walked along; what a Taylor check costs; the diagnosis's rules
against the models they apply to."""

from __future__ import annotations

import json

import numpy as np
import pytest

import engine as ml
from engine import estimate, taylor
from engine.diagnose import diagnose, roles
from engine.taylor import model_taylor_test

MODELS = [
    ("linear_regression", "mse", "relu"),
    ("linear_regression", "huber", "relu"),
    ("logistic_regression", "log_loss", "relu"),
    ("softmax_regression", "cross_entropy", "relu"),
    ("mlp", "cross_entropy", "relu"),
    ("mlp", "cross_entropy", "tanh"),
    ("mlp", "mse", "sigmoid"),
    ("mlp", "log_loss", "relu"),
]


@pytest.mark.parametrize(("kind", "loss", "activation"), MODELS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_engines_gradient_has_slope_two_and_a_wrong_one_slope_one(
    make_problem, kind, loss, activation, seed
):
    model, params, X, y = make_problem(
        kind, loss, m=40, activation=activation, hidden_sizes=(30,), seed=seed
    )
    right = model_taylor_test(model, params, X, y, 0.01, seed=seed)
    assert right.passed is True, right
    assert right.slope == pytest.approx(2.0, abs=0.15)
    _, grads = model.loss_and_grads(params, X, y, 0.01)
    summed = {name: 40 * g for name, g in grads.items()}  # the sum where the mean belongs
    wrong = model_taylor_test(model, params, X, y, 0.01, summed, seed=seed)
    assert wrong.passed is False
    assert wrong.slope == pytest.approx(1.0, abs=0.15)


def test_a_2_layer_relu_net_at_its_kinks_is_walked_along_its_smooth_piece(spiral_data):
    # b1 = 0 and the spiral's first points at the origin: pre-activations exactly 0, and
    # thousands more within 1e-5 of it. Along the true loss the remainder is O(h) there.
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100])
    params = model.init_params(seed=0)
    X, y = spiral_data.X, model.check_targets(spiral_data.y)
    pattern = model.relu_pattern(params, X)
    assert pattern is not None and pattern[0].shape == (300, 100)
    assert model.loss(params, X, y, 1e-3, pattern=pattern) == model.loss(params, X, y, 1e-3)
    check = model_taylor_test(model, params, X, y, 1e-3, seed=0)
    assert check.passed is True and check.slope == pytest.approx(2.0, abs=0.05)
    assert check.kinks == [False] * len(taylor.STEPS)  # the pattern is held: no kink crossed
    _, grads = model.loss_and_grads(params, X, y, 1e-3)
    along_true_loss = taylor.taylor_test(lambda p: model.loss(p, X, y, 1e-3), params, grads)
    assert along_true_loss.slope is not None and along_true_loss.slope < 1.8


def test_a_loss_linear_along_v_passes_at_rounding_level_and_a_wrong_gradient_does_not():
    data = ml.line(n_samples=50, seed=0)
    model = ml.make_model("linear_regression", n_features=1, loss="mae")
    params = model.init_params(scale=0.5)
    X, y = model.check_X(data.X), model.check_targets(data.y)
    right = model_taylor_test(model, params, X, y, 0.0)
    assert right.passed is True
    assert right.residuals[-1] is not None and right.residuals[-1] < 1e-13
    _, grads = model.loss_and_grads(params, X, y, 0.0)
    flipped = model_taylor_test(model, params, X, y, 0.0, {k: -g for k, g in grads.items()})
    assert flipped.passed is False


def test_the_taylor_check_is_seeded_and_json_able(make_problem):
    model, params, X, y = make_problem("softmax_regression", m=20)
    a = model_taylor_test(model, params, X, y, 0.1, seed=5).to_dict()
    b = model_taylor_test(model, params, X, y, 0.1, seed=5).to_dict()
    c = model_taylor_test(model, params, X, y, 0.1, seed=6).to_dict()
    assert a == b and a["residuals"] != c["residuals"]
    assert json.loads(json.dumps(a, allow_nan=False)) == a
    assert a["reference"] == "taylor" and a["steps"] == list(taylor.STEPS)
    assert a["min_slope"] == taylor.MIN_SLOPE


def test_a_taylor_check_costs_one_evaluation_plus_one_per_step():
    shapes = {"W": (2, 3), "b": (3,)}
    numeric = estimate.check_evaluations(
        shapes, iterations=100, every=10, max_coordinates=None, references=["numeric"]
    )
    both = estimate.check_evaluations(
        shapes, iterations=100, every=10, max_coordinates=None, references=["numeric", "taylor"]
    )
    checked = estimate.check_iterations(100, 10)
    assert numeric == 2 * 9 * checked
    assert both - numeric == (1 + len(taylor.STEPS)) * checked
    alone = estimate.check_evaluations(
        shapes, iterations=100, every=10, max_coordinates=None, references=["taylor"]
    )
    assert alone == (1 + len(taylor.STEPS)) * checked


def _codes(model, params, X, y, l2, student):
    _, ref = model.loss_and_grads(params, X, y, l2)
    reg = model.reg_grads(params, l2)
    parts = roles(model)
    return {
        name: diagnose(
            student[name], ref[name], ref[name] - reg[name], reg[name], params[name],
            parts[name], m=X.shape[0], l2=l2, rtol=1e-6, atol=1e-9,
        ).code
        for name in ref
    }  # fmt: skip


def test_the_l2_rules_follow_the_engines_definition_weights_only(make_problem):
    model, params, X, y = make_problem("mlp", "cross_entropy", m=20, hidden_sizes=(4,))
    assert model.weight_names == ("W1", "W2")
    reg = model.reg_grads(params, 0.1)
    assert np.array_equal(reg["W2"], 0.1 * params["W2"]) and not reg["b1"].any()
    _, data = model.loss_and_grads(params, X, y, 0.0)
    # Without L2 in the loss, the data gradient is the right one: no l2 rule can fire.
    assert set(_codes(model, params, X, y, 0.0, data).values()) == {"correct"}
    # With it, leaving it out is missing_l2 on the weights, and right on the biases.
    assert _codes(model, params, X, y, 0.1, data) == {
        "W1": "missing_l2", "b1": "correct", "W2": "missing_l2", "b2": "correct",
    }  # fmt: skip
    on_bias = {k: g + (0.1 * params[k] if k.startswith("b") else 0.0) for k, g in data.items()}
    on_bias = {k: g + model.reg_grads(params, 0.1)[k] for k, g in on_bias.items()}
    assert _codes(model, params, X, y, 0.1, on_bias)["b2"] == "l2_on_bias"


def test_roles_name_rows_and_columns_as_the_model_has_them(make_problem):
    model, *_ = make_problem("mlp", "cross_entropy", hidden_sizes=(4, 5))
    parts = roles(model)
    assert (parts["W1"].rows, parts["W1"].columns) == ("feature", "hidden unit")
    assert (parts["W2"].rows, parts["W2"].columns) == ("hidden unit", "hidden unit")
    assert (parts["W3"].rows, parts["W3"].columns) == ("hidden unit", "class")
    assert parts["b3"].columns == "class" and not parts["b3"].weight
    linear, *_ = make_problem("linear_regression")
    assert roles(linear)["W"].columns == "output"
