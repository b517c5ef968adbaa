"""The training loop: one record per iteration, resumable from a plain state dict.

Iterating a :class:`Trainer` runs the CS231n loop — forward, loss, backward, update — and
yields an :class:`IterationRecord` between the backward pass and the update.  So when
record i is yielded, ``trainer.params`` still hold the parameters the loss of record i
was computed at (iteration 0 is the initial loss, exactly as the seed loop prints it),
and ``trainer.state_dict()`` is the state iteration i is computed from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ._checks import as_float, as_int
from .errors import DivergedError, EngineError, ShapeError, SpecError
from .models import Model
from .optim import Optimizer, validate_combination


class IterationRecord(NamedTuple):
    """What one iteration reports.

    loss = data_loss + reg_loss at the parameters before this iteration's update (for
    sgd: on this iteration's minibatch); grad_norm is the global L2 norm over all the
    gradient tensors; accuracy is the training accuracy of the same forward pass for
    classifiers, None for regression.
    """

    iteration: int
    loss: float
    data_loss: float
    reg_loss: float
    grad_norm: float
    accuracy: float | None


class Trainer:
    """Trains ``model`` with ``optimizer`` on X, y for ``iterations`` iterations.

    X: (m, n); y: (m,) targets or labels.  Everything is checked here, before any
    iteration: X against ``model.n_features``, y with ``model.check_targets``, l2 >= 0,
    iterations >= 1, the optimizer/model combination (newton on an mlp is refused), the
    initial ``params`` (default ``model.init_params()``) and ``state``, a
    :meth:`state_dict` to resume from (it overrides ``params``, so a caller can always
    pass the job's initial parameters and add the checkpoint when there is one).

    ``for record in trainer:`` yields one :class:`IterationRecord` per iteration; break
    out of the loop to stop early.  While the loop is suspended at record i,
    ``trainer.params`` (current arrays, updated in place), ``trainer.batch`` (the (X, y)
    rows of iteration i), ``trainer.iteration`` (== i) and ``trainer.state_dict()`` are
    those before update i.  A non-finite loss or gradient raises :class:`DivergedError`
    before that iteration's record is yielded.
    """

    def __init__(
        self,
        model: Model,
        optimizer: Optimizer,
        X: Any,
        y: Any,
        *,
        iterations: int,
        l2: float = 0.0,
        params: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.X = model.check_X(X)
        self.y = model.check_targets(y)
        if self.y.shape[0] != self.X.shape[0]:
            raise ShapeError(
                f"X has {self.X.shape[0]} rows but y has {self.y.shape[0]} values; "
                "they need one target per row."
            )
        self.iterations = as_int(iterations, "iterations", minimum=1)
        self.l2 = as_float(l2, "l2", minimum=0.0)
        validate_combination(model, optimizer)

        self.iteration = 0
        if params is not None:  # checked even when a state overrides them
            self.params = model.check_params(params)
        if state is not None:
            self.iteration = as_int(state.get("iteration"), "state iteration", minimum=0)
            if self.iteration > self.iterations:
                raise SpecError(
                    f"The state is at iteration {self.iteration}, beyond iterations="
                    f"{self.iterations}."
                )
            self.params = model.check_params(state.get("params", {}), what="state's parameters")
        elif params is None:
            self.params = model.init_params()

        self.velocity: dict[str, np.ndarray] = {}
        if optimizer.momentum:
            saved = state.get("velocity") if state is not None else None
            if saved:
                self.velocity = model.check_params(saved, what="state's velocity")
            else:
                self.velocity = {name: np.zeros_like(w) for name, w in self.params.items()}
        self.batch: tuple[np.ndarray, np.ndarray] = (self.X, self.y)
        self.last_finite_loss: float | None = None

    def __iter__(self) -> Iterator[IterationRecord]:
        model, optimizer, l2 = self.model, self.optimizer, self.l2
        X, y, params, velocity = self.X, self.y, self.params, self.velocity
        m = X.shape[0]
        vdot, isfinite, sqrt, quiet = np.vdot, math.isfinite, math.sqrt, np.errstate
        for i in range(self.iteration, self.iterations):
            self.iteration = i
            rows = optimizer.batch_indices(i, m)
            if rows is None:
                Xb, yb = X, y
            else:
                Xb, yb = X[rows], y[rows]
                self.batch = (Xb, yb)
            # Overflow is reported as DivergedError below, not as NumPy warnings.
            with quiet(over="ignore", invalid="ignore"):
                loss, grads = model.loss_and_grads(params, Xb, yb, l2)
                grad_norm = sqrt(sum([vdot(g, g) for g in grads.values()]))
            if not isfinite(loss.loss):
                raise DivergedError(i, self.last_finite_loss, "loss")
            if not isfinite(grad_norm):
                raise DivergedError(i, self.last_finite_loss, "gradient")
            self.last_finite_loss = loss.loss
            yield IterationRecord(
                i, loss.loss, loss.data_loss, loss.reg_loss, grad_norm, loss.accuracy
            )
            hessian = model.hessian(params, Xb, yb, l2) if optimizer.uses_hessian else None
            try:
                optimizer.step(params, grads, velocity, hessian)
            except np.linalg.LinAlgError:
                raise EngineError(
                    f"The Newton step at iteration {i} failed: the Hessian is singular. "
                    "Add some damping or L2 regularisation."
                ) from None
            self.iteration = i + 1

    def run(self) -> list[IterationRecord]:
        """Run every remaining iteration and return the records (for notebooks)."""
        return list(self)

    def state_dict(self) -> dict[str, Any]:
        """The state the next iteration is computed from, as plain arrays and ints:
        ``{"iteration": i, "params": {name: array}, "velocity": {name: array}}``
        (velocity is empty without momentum).  Pass it as ``state=`` to resume.
        """
        return {
            "iteration": self.iteration,
            "params": {name: w.copy() for name, w in self.params.items()},
            "velocity": {name: v.copy() for name, v in self.velocity.items()},
        }
