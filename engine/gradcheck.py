"""Gradient checking: the model's analytic gradients against a reference.

The default reference is central differences in float64, as CS231n's
``eval_numerical_gradient`` computes them: perturb one coordinate by ±epsilon in place,
evaluate the loss, restore the exact original value.  Every parameter tensor is checked,
on every coordinate or on a seeded sample of at most ``max_coordinates`` of them.  The
optional second reference is PyTorch autograd in float64 (see ``torchref``).

Per coordinate the error is CS231n's relative error with a floor,
``|a − n| / max(|a|, |n|, atol/rtol)``, so gradients too small for finite differences to
resolve are judged on their absolute error.  Coordinates whose two probes fall on
different sides of a kink (``Model.kinks``) are reported and never counted as failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._checks import as_float, as_int, choice
from .errors import EngineError, ShapeError
from .models import Model

REFERENCES = ("numeric", "torch")
MAX_KINK_INDICES = 5


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass
class TensorCheck:
    """The check of one parameter tensor.

    max_abs_error / max_relative_error are over the checked non-kink coordinates;
    worst_index is the coordinate with the largest relative error, with the analytic
    and reference ("numeric") values there; checked of total coordinates were checked;
    kink_count of them straddled a kink, the first few listed in kink_indices.
    """

    max_abs_error: float
    max_relative_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    checked: int
    total: int
    kink_count: int = 0
    kink_indices: list[tuple[int, ...]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs_error": _json_float(self.max_abs_error),
            "max_relative_error": _json_float(self.max_relative_error),
            "worst_index": [int(i) for i in self.worst_index],
            "analytic": _json_float(self.analytic),
            "numeric": _json_float(self.numeric),
            "checked": self.checked,
            "total": self.total,
            "kinks": {
                "count": self.kink_count,
                "indices": [[int(i) for i in index] for index in self.kink_indices],
            },
        }


@dataclass
class GradientCheck:
    """The whole check.  passed: every tensor's max_relative_error <= rtol (None when
    the reference is unavailable); max_relative_error: the largest over the tensors."""

    reference: str
    epsilon: float | None
    rtol: float
    atol: float
    available: bool = True
    reason: str | None = None
    passed: bool | None = None
    max_relative_error: float | None = None
    parameters: dict[str, TensorCheck] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form the HTTP API returns verbatim (non-finite floats -> None)."""
        return {
            "reference": self.reference,
            "epsilon": self.epsilon,
            "rtol": self.rtol,
            "atol": self.atol,
            "available": self.available,
            "reason": self.reason,
            "passed": self.passed,
            "max_relative_error": (
                None if self.max_relative_error is None else _json_float(self.max_relative_error)
            ),
            "parameters": {name: check.to_dict() for name, check in self.parameters.items()},
        }


def compare(
    analytic: np.ndarray,
    reference: np.ndarray,
    coords: np.ndarray,
    kinks: np.ndarray,
    *,
    rtol: float,
    atol: float,
) -> TensorCheck:
    """Compare one tensor's analytic gradient with reference values at some coordinates.

    analytic: the full gradient tensor; coords: (c,) flat indices checked; reference:
    (c,) the reference derivative at each; kinks: (c,) bool, coordinates to report and
    skip.  Returns the TensorCheck.
    """
    a = analytic.ravel()[coords]
    abs_err = np.abs(a - reference)
    denom = np.maximum(np.maximum(np.abs(a), np.abs(reference)), atol / rtol)
    rel_err = abs_err / denom
    rel_err[np.isnan(rel_err)] = np.inf
    abs_err[np.isnan(abs_err)] = np.inf
    smooth = ~kinks
    if smooth.any():
        pos = int(np.flatnonzero(smooth)[np.argmax(rel_err[smooth])])
        max_abs, max_rel = float(abs_err[smooth].max()), float(rel_err[pos])
    else:  # every checked coordinate straddles a kink: nothing to judge
        pos, max_abs, max_rel = 0, 0.0, 0.0
    shape = analytic.shape

    def index(flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(int(flat), shape))

    kink_coords = coords[kinks]
    return TensorCheck(
        max_abs_error=max_abs,
        max_relative_error=max_rel,
        worst_index=index(coords[pos]),
        analytic=float(a[pos]),
        numeric=float(reference[pos]),
        checked=int(coords.size),
        total=int(analytic.size),
        kink_count=int(kink_coords.size),
        kink_indices=[index(c) for c in kink_coords[:MAX_KINK_INDICES]],
    )


def summarize(
    reference: str, epsilon: float | None, rtol: float, atol: float, tensors: dict[str, TensorCheck]
) -> GradientCheck:
    worst = max(check.max_relative_error for check in tensors.values())
    return GradientCheck(
        reference=reference,
        epsilon=epsilon,
        rtol=rtol,
        atol=atol,
        available=True,
        passed=bool(worst <= rtol),
        max_relative_error=worst,
        parameters=tensors,
    )


def gradient_check(
    model: Model,
    params: Any,
    X: Any,
    y: Any,
    l2: float,
    *,
    reference: str = "numeric",
    epsilon: float = 1e-5,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    max_coordinates: int | None = None,
    seed: int = 0,
) -> GradientCheck:
    """Check ``model``'s analytic gradients at ``params`` on X: (m, n), y: (m,).

    reference "numeric": central differences (f(θ+ε) − f(θ−ε)) / 2ε on every coordinate
    of every tensor, or on ``max_coordinates`` per tensor sampled without replacement by
    ``np.random.default_rng(seed)``.  reference "torch": PyTorch autograd in float64 on
    every coordinate (``available=False`` with a reason when torch is not installed).
    The caller's arrays are never modified.
    """
    choice(reference, "gradient check reference", REFERENCES)
    epsilon = as_float(epsilon, "epsilon", positive=True)
    rtol = as_float(rtol, "rtol", positive=True)
    atol = as_float(atol, "atol", minimum=0.0)
    l2 = as_float(l2, "l2", minimum=0.0)
    if max_coordinates is not None:
        max_coordinates = as_int(max_coordinates, "max_coordinates", minimum=1)
    seed = as_int(seed, "seed", minimum=0)
    X = model.check_X(X)
    y = model.check_targets(y)
    if y.shape[0] != X.shape[0]:
        raise ShapeError(
            f"X has {X.shape[0]} rows but y has {y.shape[0]} values; they need one target per row."
        )
    work = model.check_params(params)  # private float64 copies, perturbed in place below
    loss, grads = model.loss_and_grads(work, X, y, l2)
    if not math.isfinite(loss.loss):
        raise EngineError(
            f"The loss is not finite at these parameters ({loss.loss}); "
            "gradients cannot be checked there."
        )

    if reference == "torch":
        from . import torchref

        if not torchref.torch_available():
            return GradientCheck(
                reference="torch",
                epsilon=None,
                rtol=rtol,
                atol=atol,
                available=False,
                reason="torch is not installed",
            )
        _, ref_grads = torchref.torch_loss_and_grads(model, work, X, y, l2)
        tensors = {}
        for name, g in grads.items():
            coords = np.arange(g.size)
            tensors[name] = compare(
                g,
                ref_grads[name].ravel(),
                coords,
                np.zeros(g.size, dtype=bool),
                rtol=rtol,
                atol=atol,
            )
        return summarize("torch", None, rtol, atol, tensors)

    rng = np.random.default_rng(seed)
    tensors = {}
    for name, w in work.items():
        if max_coordinates is None or max_coordinates >= w.size:
            coords = np.arange(w.size)
        else:
            coords = np.sort(rng.choice(w.size, size=max_coordinates, replace=False))
        numeric = np.empty(coords.size)
        kinks = np.zeros(coords.size, dtype=bool)
        flat = w.reshape(-1)  # a view: writing to it perturbs work[name]
        for c, ix in enumerate(coords):
            old = flat[ix]
            flat[ix] = old + epsilon
            f_plus = model.loss(work, X, y, l2)
            k_plus = model.kinks(work, X, y)
            flat[ix] = old - epsilon
            f_minus = model.loss(work, X, y, l2)
            k_minus = model.kinks(work, X, y)
            flat[ix] = old
            numeric[c] = (f_plus - f_minus) / (2.0 * epsilon)
            kinks[c] = k_plus is not None and not np.array_equal(k_plus, k_minus)  # type: ignore[arg-type]
        tensors[name] = compare(grads[name], numeric, coords, kinks, rtol=rtol, atol=atol)
    return summarize("numeric", epsilon, rtol, atol, tensors)
