"""Update rules: full-batch gradient descent, minibatch SGD and Newton's method.

As in CS231n's ``optim.py`` the model computes gradients and the optimizer only updates.
Each optimizer says which rows the next iteration uses (``batch_indices``) and applies
one update in place (``step``).  Updates are in place so the trainer's parameter arrays
are always the current ones.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import numpy as np

from . import catalog
from ._checks import as_float, as_int, choice
from .errors import SpecError
from .models import Model

OPTIMIZER_KINDS = tuple(catalog.OPTIMIZERS)
Arrays = MutableMapping[str, np.ndarray]
"""Parameters (or their gradients, or velocities) by name, updated in place."""


class Optimizer:
    """Full-batch gradient descent, optionally with momentum (the seeds' loop).

    Without momentum each step is exactly ``w -= learning_rate * dw``.  With momentum μ
    it is CS231n's ``sgd_momentum``: ``v = μ·v − learning_rate·dw; w += v``.
    """

    kind = "gd"
    uses_hessian = False

    def __init__(
        self,
        *,
        learning_rate: float,
        momentum: float = 0.0,
        batch_size: int | None = None,
        damping: float = 1e-8,
        seed: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.damping = damping
        self.seed = seed

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, learning_rate={self.learning_rate:g}, "
            f"momentum={self.momentum:g}, batch_size={self.batch_size})"
        )

    def validate(self, model: Model) -> None:
        """Raise SpecError if this optimizer cannot train ``model``."""

    def batch_indices(self, iteration: int, m: int) -> np.ndarray | None:
        """Rows of X used by ``iteration``, or None for all of them."""
        return None

    def step(
        self, params: Arrays, grads: Arrays, velocity: Arrays, hessian: np.ndarray | None = None
    ) -> None:
        """Update ``params`` (and ``velocity`` when momentum > 0) in place."""
        lr = self.learning_rate
        if self.momentum:
            mu = self.momentum
            for name, w in params.items():
                v = velocity[name]
                v *= mu
                v -= lr * grads[name]
                w += v
        else:
            for name, w in params.items():
                w -= lr * grads[name]


class SGD(Optimizer):
    """Minibatch stochastic gradient descent (optionally with momentum).

    Epoch e visits the rows in the order ``np.random.default_rng([seed, e]).permutation(m)``
    in batches of ``batch_size`` (the last batch of an epoch may be smaller), so the batch
    of iteration j is a pure function of (seed, j) and a resumed run needs no RNG state.
    One iteration is one minibatch step, and the recorded loss is that minibatch's loss.
    """

    kind = "sgd"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._epoch: tuple[int, int] | None = None
        self._order = np.arange(0)

    def batch_indices(self, iteration: int, m: int) -> np.ndarray | None:
        B = self.batch_size
        assert B is not None
        per_epoch = -(-m // B)
        epoch, j = divmod(iteration, per_epoch)
        if self._epoch != (epoch, m):
            self._order = np.random.default_rng([self.seed, epoch]).permutation(m)
            self._epoch = (epoch, m)
        return self._order[j * B : (j + 1) * B]


class Newton(Optimizer):
    """Newton's method: θ ← θ − learning_rate·(H + damping·I)⁻¹ g with the exact Hessian.

    θ is every parameter flattened in ``param_shapes`` order.  Only for the convex seed
    models (linear regression with mse/half_mse, logistic regression with log_loss,
    softmax regression); ``validate`` refuses the others before training starts.
    """

    kind = "newton"
    uses_hessian = True

    def validate(self, model: Model) -> None:
        model.check_hessian()

    def step(
        self, params: Arrays, grads: Arrays, velocity: Arrays, hessian: np.ndarray | None = None
    ) -> None:
        if hessian is None:
            raise ValueError("Newton.step needs the Hessian.")
        g = np.concatenate([grads[name].ravel() for name in params])
        H = hessian
        if self.damping:
            H = H + self.damping * np.eye(H.shape[0])
        delta = np.linalg.solve(H, g)
        start = 0
        for w in params.values():
            w -= self.learning_rate * delta[start : start + w.size].reshape(w.shape)
            start += w.size


_CLASSES = {"gd": Optimizer, "sgd": SGD, "newton": Newton}


def make_optimizer(
    kind: str,
    *,
    learning_rate: float | None = None,
    momentum: float | None = None,
    batch_size: int | None = None,
    damping: float | None = None,
    seed: int | None = None,
) -> Optimizer:
    """Build an optimizer, checking every option.

    kind: one of ``catalog.OPTIMIZERS``, whose entries give each kind's options and their
    defaults (an option left None takes its default).  momentum in [0, 1) for gd and sgd;
    batch_size >= 1 for sgd only; damping >= 0 (used by newton); seed: the sgd shuffling
    seed.  Raises SpecError naming the bad option.
    """
    choice(kind, "optimizer", OPTIMIZER_KINDS)
    defaults = catalog.OPTIMIZERS[kind].options
    given = {"momentum": momentum, "batch_size": batch_size, "damping": damping, "seed": seed}
    for name, value in given.items():
        if value is not None and name not in defaults and (name != "momentum" or value):
            uses = [k for k, o in catalog.OPTIMIZERS.items() if name in o.options]
            raise SpecError(f"{name} applies to {' and '.join(uses)} only; {kind} does not use it.")

    def option(name: str, value: Any, fallback: Any) -> Any:
        return defaults.get(name, fallback) if value is None else value

    lr = as_float(option("learning_rate", learning_rate, None), "learning_rate", positive=True)
    momentum = as_float(option("momentum", momentum, 0.0), "momentum", minimum=0.0, below=1.0)
    damping = as_float(option("damping", damping, 0.0), "damping", minimum=0.0)
    seed = as_int(option("seed", seed, 0), "seed", minimum=0)
    if "batch_size" in defaults:
        batch_size = as_int(option("batch_size", batch_size, None), "batch_size", minimum=1)
    return _CLASSES[kind](
        learning_rate=lr, momentum=momentum, batch_size=batch_size, damping=damping, seed=seed
    )


def validate_combination(model: Model, optimizer: Optimizer) -> None:
    """Raise SpecError if ``optimizer`` cannot train ``model`` (e.g. newton on an mlp)."""
    optimizer.validate(model)
