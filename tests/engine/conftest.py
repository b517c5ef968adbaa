"""Shared helpers for the engine tests, as fixtures (test modules here are not a package):
small random problems and a reference central difference written independently of
``engine.gradcheck``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import engine as ml


def numeric_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of f() with respect to every entry of x (perturbed in place)."""
    grad = np.zeros_like(x)
    flat, flat_grad = x.reshape(-1), grad.reshape(-1)  # views: writing flat perturbs x
    assert np.shares_memory(flat, x)
    for ix in range(flat.size):
        old = flat[ix]
        flat[ix] = old + h
        fp = f()
        flat[ix] = old - h
        fm = f()
        flat[ix] = old
        flat_grad[ix] = (fp - fm) / (2 * h)
    return grad


def problem(
    kind: str,
    loss: str | None = None,
    *,
    m: int = 12,
    n: int = 3,
    K: int = 3,
    hidden_sizes: tuple[int, ...] = (5, 4),
    activation: str = "relu",
    seed: int = 0,
    scale: float = 0.5,
) -> tuple[ml.Model, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """A model with random parameters (biases too) and random data that fits it."""
    rng = np.random.default_rng(seed)
    softmax_head = loss == "cross_entropy" or (
        loss is None and kind in ("softmax_regression", "mlp")
    )
    model = ml.make_model(
        kind,
        n_features=n,
        n_classes=K if softmax_head else None,
        loss=loss,
        hidden_sizes=hidden_sizes,
        activation=activation,
    )
    params = {
        name: scale * rng.standard_normal(shape) for name, shape in model.param_shapes().items()
    }
    X = rng.standard_normal((m, n))
    if model.head == "softmax":
        y = rng.integers(0, K, size=m).astype(float)
    elif model.head == "sigmoid":
        y = rng.integers(0, 2, size=m).astype(float)
    else:
        y = rng.standard_normal(m)
    return model, params, X, model.check_targets(y)


@pytest.fixture(scope="session")
def spiral_data() -> ml.Dataset:
    """The CS231n spiral, 300 points in 3 arms."""
    return ml.spiral(n_per_class=100, n_classes=3, noise=0.2, seed=0)


@pytest.fixture(scope="session")
def make_problem() -> Callable[..., tuple]:
    """:func:`problem`: (model, random params, X, checked y)."""
    return problem


@pytest.fixture(scope="session")
def central_difference() -> Callable[..., np.ndarray]:
    """:func:`numeric_gradient`: central differences of a closure, entry by entry."""
    return numeric_gradient
