"""A student's job: training with the student's gradients, judged on the worker's side.

:class:`StudentModel` is the reference model (the spec's ``model`` and ``loss``) with the
student's ``loss_and_grads``: the engine's :class:`~engine.Trainer` trains it unchanged, every
call going through the sandbox, and each call also computes the reference loss at the same
parameters (recorded per point as ``reference_loss``). :func:`student_checks` records, at a
check's iteration, the three verdicts — ``numeric`` (the student's gradient against central
differences of their own loss, also through the sandbox), ``solution`` (against the
reference gradient, with a diagnosis per tensor) and ``taylor`` (on their loss and
gradient). Everything that decides ``passed`` runs here, outside the sandbox.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine.gradcheck import compare, summarize
from engine.models import Loss, Model
from engine.studentcheck import check_gradients
from engine.taylor import taylor_test
from store.spec import GradientCheckSpec
from worker.sandbox import Sandbox

STUDENT_MAX_COORDINATES = 10
"""The numeric check of a student's code evaluates their loss twice per coordinate, through
the sandbox: at most this many coordinates per tensor (fewer when the spec asks)."""


class StudentModel:
    """The reference model whose loss and gradients are the student's (through ``sandbox``).

    ``last_reference`` is the reference loss at the parameters of the latest call."""

    def __init__(self, model: Model, sandbox: Sandbox) -> None:
        self.model, self.sandbox = model, sandbox
        self.last_reference = math.nan

    def __getattr__(self, name: str) -> Any:  # everything but the gradients: the reference's
        return getattr(self.model, name)

    def loss_and_grads(
        self, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, l2: float
    ) -> tuple[Loss, dict[str, np.ndarray]]:
        loss, grads = self.sandbox.call(params)
        assert grads is not None
        if X is not self.sandbox.X:  # the sandbox holds the full batch only (no sgd)
            raise ValueError("a student's job trains on the whole data set")
        reference = self.model.evaluate(params, X, y, l2)
        self.last_reference = reference.loss
        reg = reference.reg_loss
        return Loss(loss, loss - reg, reg, reference.accuracy), grads


def student_checks(
    model: Model,
    sandbox: Sandbox,
    params: Mapping[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    options: GradientCheckSpec,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """``{"numeric": …, "solution": …, "taylor": …}``: each a stored check's ``result``."""
    work = {name: np.array(w, dtype=np.float64) for name, w in params.items()}
    loss, grads = sandbox.call(work)
    assert grads is not None
    rtol, atol = options.rtol, options.atol
    return {
        "numeric": _numeric(model, sandbox, work, grads, X, y, options, seed),
        "solution": _solution(model, work, grads, loss, X, y, l2, rtol, atol, seed),
        "taylor": _taylor(model, sandbox, work, grads, X, y, seed),
    }


def _taylor(
    model: Model,
    sandbox: Sandbox,
    work: dict[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """The Taylor test on the student's own loss. Their loss cannot be held on one smooth
    piece (as the reference's is, for ReLU nets): when kinks leave fewer than two steps to
    fit a slope over, the test has no verdict (``passed`` null, with the reason)."""
    check = taylor_test(sandbox.loss, work, grads, seed=seed, kinks=lambda p: model.kinks(p, X, y))
    if check.slope is None and any(check.kinks):
        check.passed = None
        check.reason = "the steps crossed kinks of the loss (ReLU, |r|): no slope to judge"
    return check.to_dict()


def _numeric(
    model: Model,
    sandbox: Sandbox,
    work: dict[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    options: GradientCheckSpec,
    seed: int,
) -> dict[str, Any]:
    """Central differences of the student's own loss: is their code self-consistent?"""
    eps, rng = options.epsilon, np.random.default_rng(seed)
    limit = min(options.max_coordinates or STUDENT_MAX_COORDINATES, STUDENT_MAX_COORDINATES)
    tensors = {}
    for name, w in work.items():
        if limit >= w.size:
            coords = np.arange(w.size)
        else:
            coords = np.sort(rng.choice(w.size, size=limit, replace=False))
        numeric = np.empty(coords.size)
        kinks = np.zeros(coords.size, dtype=bool)
        flat = w.reshape(-1)
        for c, ix in enumerate(coords):
            old = flat[ix]
            flat[ix] = old + eps
            f_plus, k_plus = sandbox.loss(work), model.kinks(work, X, y)
            flat[ix] = old - eps
            f_minus, k_minus = sandbox.loss(work), model.kinks(work, X, y)
            flat[ix] = old
            numeric[c] = (f_plus - f_minus) / (2.0 * eps)
            kinks[c] = k_plus is not None and not np.array_equal(k_plus, k_minus)  # type: ignore[arg-type]
        tensors[name] = compare(
            grads[name], numeric, coords, kinks, rtol=options.rtol, atol=options.atol
        )
    return summarize("numeric", eps, options.rtol, options.atol, tensors).to_dict()


def _solution(
    model: Model,
    work: dict[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    loss: float,
    X: np.ndarray,
    y: np.ndarray,
    l2: float,
    rtol: float,
    atol: float,
    seed: int,
) -> dict[str, Any]:
    """The student's gradient and loss against the reference solution's, each tensor's slip
    named (``engine.studentcheck``, the same verdicts as ``POST /v1/gradient-checks``)."""
    verdict = check_gradients(
        model, work, X, y, l2, grads, loss_value=loss, rtol=rtol, atol=atol, seed=seed
    )
    errors = [t["max_relative_error"] for t in verdict["parameters"].values()]
    finite = [e for e in errors if e is not None]
    return {
        "reference": "solution",
        "epsilon": None,
        "rtol": rtol,
        "atol": atol,
        "available": True,
        "reason": None,
        "passed": verdict["passed"],
        "max_relative_error": max(finite) if finite else None,
        "parameters": verdict["parameters"],
        "loss": verdict["loss"],
    }
