"""Analytic gradients (and Hessians) against central differences and against autograd."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import engine as ml
from engine import torchref

# Every model × loss × activation the engine accepts.
CASES = [
    ("linear_regression", "mse", "relu"),
    ("linear_regression", "half_mse", "relu"),
    ("linear_regression", "mae", "relu"),
    ("linear_regression", "huber", "relu"),
    ("logistic_regression", "log_loss", "relu"),
    ("logistic_regression", "mse", "relu"),
    ("softmax_regression", "cross_entropy", "relu"),
] + [
    ("mlp", loss, activation)
    for loss in ml.MODEL_LOSSES["mlp"]
    for activation in ml.ACTIVATION_NAMES
]
IDS = [f"{kind}-{loss}" + (f"-{act}" if kind == "mlp" else "") for kind, loss, act in CASES]

# float64 central differences with h = 1e-6 are good to ~1e-9 absolute on these losses.
RTOL, ATOL = 1e-6, 1e-8


@pytest.mark.parametrize(("kind", "loss", "activation"), CASES, ids=IDS)
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_gradients_match_central_differences(
    kind, loss, activation, l2, make_problem, central_difference
):
    model, params, X, y = make_problem(kind, loss, activation=activation, seed=3)
    result, grads = model.loss_and_grads(params, X, y, l2)

    assert list(grads) == list(model.param_shapes())
    for name, shape in model.param_shapes().items():
        assert grads[name].shape == shape
        numeric = central_difference(lambda: model.loss(params, X, y, l2), params[name])
        assert_allclose(grads[name], numeric, rtol=RTOL, atol=ATOL, err_msg=name)
    assert result.loss == pytest.approx(result.data_loss + result.reg_loss, rel=1e-15)
    assert result.loss == pytest.approx(model.loss(params, X, y, l2), rel=1e-15)
    reg = 0.5 * l2 * sum(np.sum(w * w) for n, w in params.items() if n.startswith("W"))
    assert result.reg_loss == pytest.approx(reg, rel=1e-12, abs=1e-300)


@pytest.mark.skipif(not torchref.torch_available(), reason="torch is not installed")
@pytest.mark.parametrize(("kind", "loss", "activation"), CASES, ids=IDS)
def test_gradients_match_torch_autograd(kind, loss, activation, make_problem):
    model, params, X, y = make_problem(kind, loss, activation=activation, seed=5, m=16)
    result, grads = model.loss_and_grads(params, X, y, 0.05)
    torch_loss, torch_grads = torchref.torch_loss_and_grads(model, params, X, y, 0.05)

    assert result.loss == pytest.approx(torch_loss, rel=1e-12)
    for name in grads:
        assert_allclose(grads[name], torch_grads[name], rtol=1e-10, atol=1e-13, err_msg=name)


@settings(max_examples=25, deadline=None)
@given(
    kind_loss=st.sampled_from(
        [
            ("linear_regression", "mse"),
            ("linear_regression", "half_mse"),
            ("logistic_regression", "log_loss"),
            ("logistic_regression", "mse"),
            ("softmax_regression", "cross_entropy"),
        ]
    ),
    m=st.integers(1, 8),
    n=st.integers(1, 4),
    K=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_linear_models_match_central_differences_for_any_shape(
    kind_loss, m, n, K, seed, make_problem, central_difference
):
    kind, loss = kind_loss
    model, params, X, y = make_problem(kind, loss, m=m, n=n, K=K, seed=seed, scale=1.0)
    _, grads = model.loss_and_grads(params, X, y, 0.01)
    for name in grads:
        numeric = central_difference(lambda: model.loss(params, X, y, 0.01), params[name])
        assert_allclose(grads[name], numeric, rtol=RTOL, atol=ATOL, err_msg=name)


HESSIAN_CASES = [
    ("linear_regression", "mse"),
    ("linear_regression", "half_mse"),
    ("logistic_regression", "log_loss"),
    ("softmax_regression", "cross_entropy"),
]


@pytest.mark.parametrize(("kind", "loss"), HESSIAN_CASES)
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_hessian_matches_differences_of_the_gradient(kind, loss, l2, make_problem):
    model, params, X, y = make_problem(kind, loss, m=15, n=3, K=3, seed=7)
    names = list(model.param_shapes())

    def flat_grad() -> np.ndarray:
        _, grads = model.loss_and_grads(params, X, y, l2)
        return np.concatenate([grads[name].ravel() for name in names])

    H = model.hessian(params, X, y, l2)
    P = sum(params[name].size for name in names)
    assert H.shape == (P, P)
    assert_allclose(H, H.T, atol=1e-14)
    columns, h = [], 1e-6
    for name in names:
        flat = params[name].reshape(-1)
        for ix in range(flat.size):
            old = flat[ix]
            flat[ix] = old + h
            gp = flat_grad()
            flat[ix] = old - h
            gm = flat_grad()
            flat[ix] = old
            columns.append((gp - gm) / (2 * h))
    assert_allclose(H, np.column_stack(columns), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("kind", "loss", "why"),
    [
        ("mlp", "cross_entropy", "mlp"),
        ("linear_regression", "mae", "zero"),
        ("logistic_regression", "mse", "not convex"),
    ],
)
def test_hessian_is_refused_where_it_is_undefined_or_useless(kind, loss, why, make_problem):
    model, params, X, y = make_problem(kind, loss)
    with pytest.raises(ml.SpecError, match=why):
        model.hessian(params, X, y, 0.0)


def test_extreme_logits_stay_finite_without_warnings():
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    logistic = ml.make_model("logistic_regression", n_features=1)
    params = {"W": np.array([[1000.0]]), "b": np.array([0.0])}
    y = logistic.check_targets([1, 0, 0, 1])  # two right with certainty, two wrong
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        result, grads = logistic.loss_and_grads(params, X, y, 0.0)
        probabilities = logistic.predict(params, X)
    assert result.loss == pytest.approx(500.0)  # the two wrong ones cost 1000 each, /4
    assert_allclose(grads["W"], [[0.5]])  # (σ(z) − y)·x summed over the two wrong ones, /4
    assert_allclose(probabilities, [1.0, 0.0, 1.0, 0.0])

    softmax = ml.make_model("softmax_regression", n_features=1, n_classes=2)
    params = {"W": np.array([[1000.0, -1000.0]]), "b": np.zeros(2)}
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        result, grads = softmax.loss_and_grads(params, X, softmax.check_targets([0, 1, 1, 0]), 0)
    assert result.loss == pytest.approx(1000.0)
    assert result.accuracy == 0.5
    assert np.isfinite(grads["W"]).all()


def test_relu_and_mae_subgradients_are_zero_at_the_kink():
    model = ml.make_model("linear_regression", n_features=1, loss="mae")
    params = {"W": np.array([[2.0]]), "b": np.array([1.0])}
    X = np.array([[0.0], [1.0]])
    _, grads = model.loss_and_grads(params, X, model.check_targets([1.0, 0.0]), 0.0)
    # residuals 0 and 3: sign(0) = 0, so only the second sample contributes, /2
    assert_allclose(grads["W"], [[0.5]])
    assert_allclose(grads["b"], [0.5])

    net = ml.make_model("mlp", n_features=1, n_classes=2, hidden_sizes=[1])
    params = net.init_params("zeros")
    _, grads = net.loss_and_grads(params, X, net.check_targets([0, 1]), 0.0)
    assert not grads["W1"].any() and not grads["b1"].any()  # ReLU'(0) = 0
