"""Every mistake raises its specific exception, before any iteration, with a sentence
that names the offending thing."""

from __future__ import annotations

import re

import numpy as np
import pytest

import engine as ml


def raises(exc: type[Exception], *fragments: str):
    """pytest.raises matching every fragment literally."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


def test_every_error_is_a_value_error_under_engine_error():
    for exc in (ml.SpecError, ml.ShapeError, ml.LabelError, ml.DivergedError):
        assert issubclass(exc, ml.EngineError)
    assert issubclass(ml.EngineError, ValueError)


@pytest.mark.parametrize(
    ("options", "exc", "fragments"),
    [
        ({"kind": "perceptron"}, ml.SpecError, ["'perceptron'", "linear_regression"]),
        ({"kind": "linear_regression", "loss": "hinge"}, ml.SpecError, ["'hinge'", "mse"]),
        (
            {"kind": "softmax_regression", "loss": "mse", "n_classes": 3},
            ml.SpecError,
            ["softmax_regression does not support loss 'mse'", "cross_entropy"],
        ),
        ({"kind": "softmax_regression"}, ml.SpecError, ["n_classes"]),
        ({"kind": "softmax_regression", "n_classes": 1}, ml.SpecError, ["n_classes", "2"]),
        ({"kind": "mlp"}, ml.SpecError, ["mlp with cross_entropy needs n_classes"]),
        ({"kind": "mlp", "loss": "mse", "hidden_sizes": []}, ml.SpecError, ["hidden"]),
        ({"kind": "mlp", "loss": "mse", "hidden_sizes": [4, 0]}, ml.SpecError, ["hidden_sizes[1]"]),
        ({"kind": "mlp", "loss": "mse", "hidden_sizes": "100"}, ml.SpecError, ["hidden_sizes"]),
        ({"kind": "mlp", "loss": "mse", "activation": "gelu"}, ml.SpecError, ["'gelu'", "relu"]),
        (
            {"kind": "logistic_regression", "n_classes": 3},
            ml.SpecError,
            ["binary", "n_classes is 3", "softmax_regression"],
        ),
        ({"kind": "linear_regression", "n_features": 0}, ml.SpecError, ["n_features"]),
    ],
)
def test_bad_model_options(options, exc, fragments):
    options = {"n_features": 2, **options}
    with raises(exc, *fragments):
        ml.make_model(options.pop("kind"), **options)


@pytest.mark.parametrize(
    ("kind", "options", "fragments"),
    [
        ("adam", {}, ["'adam'", "gd, sgd, newton"]),
        ("gd", {"learning_rate": 0.0}, ["learning_rate", "greater than 0"]),
        ("gd", {"learning_rate": -1.0}, ["learning_rate"]),
        ("gd", {"learning_rate": float("nan")}, ["learning_rate", "finite"]),
        ("gd", {"momentum": 1.0}, ["momentum", "less than 1"]),
        ("sgd", {"momentum": -0.1}, ["momentum", "at least 0"]),
        ("sgd", {"batch_size": 0}, ["batch_size", "at least 1"]),
        ("sgd", {"batch_size": 2.5}, ["batch_size", "integer"]),
        ("newton", {"damping": -1e-3}, ["damping"]),
        ("newton", {"momentum": 0.9}, ["momentum", "newton"]),
        ("gd", {"batch_size": 10}, ["batch_size applies to sgd only"]),
    ],
)
def test_bad_optimizer_options(kind, options, fragments):
    with raises(ml.SpecError, *fragments):
        ml.make_optimizer(kind, **options)


def test_newton_on_an_mlp_is_refused_before_training_starts():
    model = ml.make_model("mlp", n_features=2, n_classes=3)
    newton = ml.make_optimizer("newton")
    with raises(ml.SpecError, "newton", "mlp", "gd or sgd"):
        ml.validate_combination(model, newton)
    data = ml.spiral(n_per_class=5)
    with raises(ml.SpecError, "mlp"):
        ml.Trainer(model, newton, data.X, data.y, iterations=10)


@pytest.mark.parametrize(
    ("kind", "loss", "fragment"),
    [("linear_regression", "mae", "zero"), ("logistic_regression", "mse", "not convex")],
)
def test_newton_is_refused_for_losses_without_a_useful_hessian(kind, loss, fragment):
    model = ml.make_model(kind, n_features=1, loss=loss)
    with raises(ml.SpecError, "newton", loss, fragment):
        ml.validate_combination(model, ml.make_optimizer("newton"))


def test_label_errors_name_the_value_and_its_index():
    logistic = ml.make_model("logistic_regression", n_features=1)
    with pytest.raises(ml.LabelError) as caught:
        logistic.check_targets([0, 1, 1, 0, 1, 2, 0])
    assert str(caught.value) == (
        "logistic_regression needs labels 0 or 1, but y contains 2 (at index 5)."
    )
    softmax = ml.make_model("softmax_regression", n_features=1, n_classes=3)
    with raises(ml.LabelError, "labels 0, 1 or 2", "contains 3 (at index 1)"):
        softmax.check_targets([2, 3])
    with raises(ml.LabelError, "contains -1 (at index 0)"):
        softmax.check_targets([-1, 0])
    with raises(ml.LabelError, "whole-number", "0.5 (at index 2)"):
        softmax.check_targets([0, 1, 0.5])
    net = ml.make_model("mlp", n_features=1, n_classes=10)
    with raises(ml.LabelError, "mlp with cross_entropy with 10 classes", "labels 0 to 9"):
        net.check_targets([10])
    regression = ml.make_model("linear_regression", n_features=1)
    with raises(ml.LabelError, "finite", "nan (at index 1)"):
        regression.check_targets([0.0, np.nan])
    y = softmax.check_targets([0.0, 2.0, 1.0])
    assert y.dtype == np.int64 and y.tolist() == [0, 2, 1]


@pytest.mark.parametrize(
    ("X", "y", "exc", "fragments"),
    [
        ([1.0, 2.0], [0.0, 1.0], ml.ShapeError, ["2-D", "(2,)"]),
        ([[1.0, 2.0], [3.0]], [0.0, 1.0], ml.ShapeError, ["ragged", "row 1 has 1"]),
        (np.zeros((0, 2)), [], ml.ShapeError, ["X is empty"]),
        (np.zeros((3, 1)), [0.0, 1.0, 2.0], ml.ShapeError, ["1 features", "n_features=2"]),
        (np.zeros((3, 2)), [0.0, 1.0], ml.ShapeError, ["3 rows", "2 values"]),
        (np.zeros((2, 2)), [[0.0], [1.0]], ml.ShapeError, ["y must be 1-D", "(2, 1)"]),
        ([[1.0, np.inf], [0.0, 0.0]], [0.0, 1.0], ml.EngineError, ["X contains inf", "(0, 1)"]),
        ([["a", "b"]], [0.0], ml.EngineError, ["X must contain only numbers"]),
    ],
)
def test_bad_data_is_refused_by_the_trainer(X, y, exc, fragments):
    model = ml.make_model("linear_regression", n_features=2)
    with raises(exc, *fragments):
        ml.Trainer(model, ml.make_optimizer("gd"), X, y, iterations=5)


def test_bad_trainer_options():
    model = ml.make_model("linear_regression", n_features=1)
    data = ml.line(n_samples=5)
    gd = ml.make_optimizer("gd")
    with raises(ml.SpecError, "l2", "at least 0"):
        ml.Trainer(model, gd, data.X, data.y, iterations=5, l2=-0.1)
    with raises(ml.SpecError, "iterations", "at least 1"):
        ml.Trainer(model, gd, data.X, data.y, iterations=0)
    state = {"iteration": 9, "params": model.init_params(), "velocity": {}}
    with raises(ml.SpecError, "iteration 9", "iterations=5"):
        ml.Trainer(model, gd, data.X, data.y, iterations=5, state=state)


@pytest.mark.parametrize(
    ("given", "exc", "fragments"),
    [
        ({"W1": np.zeros((2, 3))}, ml.SpecError, ["missing b1", "W1, b1, W2, b2"]),
        (
            {"W1": np.zeros((2, 3)), "b1": np.zeros(3), "W2": np.zeros((3, 2)),
             "b2": np.zeros(2), "W3": np.zeros(1)},
            ml.SpecError,
            ["'W3'", "does not have"],
        ),
        (
            {"W1": np.zeros((3, 2)), "b1": np.zeros(3), "W2": np.zeros((3, 2)), "b2": np.zeros(2)},
            ml.ShapeError,
            ["W1 in the given parameters has shape (3, 2)", "needs (2, 3)"],
        ),
        (
            {"W1": [[0, 0, 0], [0, 0]], "b1": np.zeros(3), "W2": np.zeros((3, 2)),
             "b2": np.zeros(2)},
            ml.ShapeError,
            ["W1", "rectangular"],
        ),
        (
            {"W1": np.zeros((2, 3)), "b1": [0, np.nan, 0], "W2": np.zeros((3, 2)),
             "b2": np.zeros(2)},
            ml.EngineError,
            ["b1", "not finite"],
        ),
    ],
)  # fmt: skip
def test_bad_given_parameters_name_the_tensor(given, exc, fragments):
    model = ml.make_model("mlp", n_features=2, n_classes=2, hidden_sizes=[3])
    with raises(exc, *fragments):
        model.init_params("given", given=given)


def test_bad_init_options():
    model = ml.make_model("linear_regression", n_features=2)
    with raises(ml.SpecError, "'xavier'", "random, zeros, given"):
        model.init_params("xavier")
    with raises(ml.SpecError, "given"):
        model.init_params("given")
    with raises(ml.SpecError, "init='given'"):
        model.init_params("random", given=model.init_params())
    with raises(ml.SpecError, "scale"):
        model.init_params("random", scale=-1.0)


def test_init_follows_cs231n():
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[4, 5])
    params = model.init_params(seed=3, scale=0.01)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    rng = np.random.default_rng(3)
    for name, shape in [("W1", (2, 4)), ("W2", (4, 5)), ("W3", (5, 3))]:
        np.testing.assert_array_equal(params[name], 0.01 * rng.standard_normal(shape))
    assert not any(params[b].any() for b in ("b1", "b2", "b3"))
    zeros = model.init_params("zeros")
    assert all(
        v.shape == s and not v.any()
        for v, s in zip(zeros.values(), model.param_shapes().values(), strict=True)
    )
    given = model.init_params("given", given={k: v.astype(np.float32) for k, v in params.items()})
    assert all(v.dtype == np.float64 for v in given.values())
