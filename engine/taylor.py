"""The Taylor test: an epsilon-free check of a gradient, as pyadjoint's ``taylor_test`` does it.

Along a seeded random direction v (unit length over all the tensors), the first-order Taylor
remainder ``r(h) = |L(θ + hv) − L(θ) − h·⟨g, v⟩|`` shrinks as h² when g is the gradient of L
at θ, and only as h when it is not: on a log-log plot of r against h the slope is 2 for a
right gradient and 1 for a wrong one, whatever the scale of the loss.  No finite-difference
step has to be chosen well, which is the point: it only needs L.

The steps run from 1e-1 down to 1e-5.  Once the remainder falls to what rounding leaves of
L (``ROUNDING`` ulps of the values subtracted) it carries no more information, so the slope
is fitted by least squares over the leading steps whose remainder stays above that; the
test passes when it is at least ``MIN_SLOPE``.  A loss that is linear along v (MAE between
its kinks) has a remainder at rounding level at every small step: its gradient is exact
there, and the test passes.  The check costs ``1 + len(STEPS)`` loss evaluations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .models import Model

STEPS: tuple[float, ...] = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
MIN_SLOPE = 1.8
ROUNDING = 256 * float(np.finfo(np.float64).eps)
"""A remainder at most this times |L(θ)| + |L(θ + hv)| + |h·⟨g, v⟩| is rounding, not signal."""


def _json(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


@dataclass
class TaylorCheck:
    """One Taylor test.  ``residuals[i]`` is the remainder at ``steps[i]`` (None when the loss
    there is not finite); ``used`` says which steps the slope was fitted over, ``kinks`` which
    crossed a kink of the loss (set aside); ``rates`` are
    the slopes between consecutive used steps; ``slope`` is None with fewer than two."""

    seed: int
    steps: list[float]
    residuals: list[float | None] = field(default_factory=list)
    used: list[bool] = field(default_factory=list)
    kinks: list[bool] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    slope: float | None = None
    min_slope: float = MIN_SLOPE
    available: bool = True
    reason: str | None = None
    passed: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form, with the keys every stored gradient check has (a Taylor test
        has no epsilon, tolerances or per-tensor entries: those are null or empty)."""
        return {
            "reference": "taylor",
            "epsilon": None,
            "rtol": None,
            "atol": None,
            "available": self.available,
            "reason": self.reason,
            "passed": self.passed,
            "max_relative_error": None,
            "parameters": {},
            "seed": self.seed,
            "steps": list(self.steps),
            "residuals": [_json(r) for r in self.residuals],
            "used": list(self.used),
            "kinks": list(self.kinks),
            "rates": [_json(r) for r in self.rates],
            "slope": _json(self.slope),
            "min_slope": self.min_slope,
        }


def unavailable(reason: str, *, seed: int = 0) -> TaylorCheck:
    """A Taylor test that could not be run (a gradient of the wrong shape, say)."""
    return TaylorCheck(seed=seed, steps=list(STEPS), available=False, reason=reason)


def taylor_test(
    loss: Callable[[Mapping[str, np.ndarray]], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    *,
    seed: int = 0,
    steps: Sequence[float] = STEPS,
    min_slope: float = MIN_SLOPE,
    kinks: Callable[[Mapping[str, np.ndarray]], np.ndarray | None] | None = None,
) -> TaylorCheck:
    """The Taylor test of ``grads`` as the gradient of ``loss`` at ``params``.

    params, grads: {name: array} with the same names and shapes (float64, finite); loss:
    the scalar loss of a parameter dict; kinks: a signature of the loss's nondifferentiable
    pieces (``Model.kinks``): a step whose signature differs from θ's crosses a kink, where no
    Taylor expansion holds, and is set aside (``kinks`` lists it).  v is drawn from
    ``np.random.default_rng(seed)``, one standard normal per coordinate in ``params`` order,
    scaled to unit norm.  The
    caller's arrays are never modified.
    """
    rng = np.random.default_rng(seed)
    v = {name: rng.standard_normal(np.shape(w)) for name, w in params.items()}
    norm = math.sqrt(sum(float(np.vdot(d, d)) for d in v.values())) or 1.0
    for d in v.values():
        d /= norm
    with np.errstate(all="ignore"):
        slope_g = sum(float(np.vdot(grads[name], d)) for name, d in v.items())
        base = float(loss(params))
        work = {name: np.array(w, dtype=np.float64) for name, w in params.items()}
        check = TaylorCheck(seed=seed, steps=[float(h) for h in steps], min_slope=min_slope)
        signature = kinks(params) if kinks is not None else None
        stays = True  # the leading steps, until the first one at rounding level
        at_rounding = False
        for h in check.steps:
            for name, w in work.items():
                np.multiply(v[name], h, out=w)
                w += params[name]
            value = float(loss(work))
            residual = abs(value - base - h * slope_g)
            after = kinks(work) if kinks is not None and signature is not None else None
            crossed = (
                signature is not None and after is not None and not np.array_equal(signature, after)
            )
            check.kinks.append(crossed)
            if not math.isfinite(residual):
                check.residuals.append(None)
                check.used.append(False)
                continue
            floor = ROUNDING * (abs(base) + abs(value) + abs(h * slope_g))
            at_rounding = residual <= floor
            stays = stays and not at_rounding
            check.residuals.append(residual)
            check.used.append(stays and not crossed)
    points = [
        (math.log10(h), math.log10(r))
        for h, r, used in zip(check.steps, check.residuals, check.used, strict=True)
        if used and r is not None
    ]
    check.rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(points)]
    if len(points) >= 2:
        x = np.array([p[0] for p in points])
        y = np.array([p[1] for p in points])
        check.slope = float(np.polyfit(x, y, 1)[0])
        check.passed = check.slope >= min_slope
    else:
        # At rounding level already by the smallest step: L is linear along v there and the
        # gradient's first-order term is exact; a wrong one leaves h·|⟨g − ∇L, v⟩| above it.
        check.passed = check.residuals[-1] is not None and at_rounding
    return check


def model_taylor_test(
    model: Model,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    grads: Mapping[str, np.ndarray] | None = None,
    *,
    seed: int = 0,
) -> TaylorCheck:
    """The Taylor test of a model's loss at ``params`` on checked X: (m, n), y: (m,), with
    ``grads`` (the model's own analytic gradient when None: the built-in jobs' check)."""
    if grads is None:
        _, grads = model.loss_and_grads(params, X, y, l2)
    pattern = model.relu_pattern(params, X)  # walk along θ's smooth piece (see there)
    return taylor_test(
        lambda p: model.loss(p, X, y, l2, pattern=pattern),
        params,
        grads,
        seed=seed,
        kinks=lambda p: model.kinks(p, X, y, pattern=pattern),
    )
