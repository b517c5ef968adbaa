"""Checking a student's own gradients, given as numbers, against the engine's analytic ones.

The engine's gradient is the reference (it is itself checked against central differences and
PyTorch autograd by the test suite).  Each tensor gets the same figures a job's stored check
has (``gradcheck.TensorCheck``), a verdict and a :mod:`diagnosis <engine.diagnose>`; the loss,
when the student gives theirs, is compared too; and a Taylor test (:mod:`engine.taylor`) of
the student's gradient on the reference loss says, without any epsilon, whether it is a
gradient of that loss at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .diagnose import diagnose, diagnose_loss, relative_errors, roles
from .errors import EngineError, SpecError
from .gradcheck import compare
from .models import Model
from .taylor import model_taylor_test, unavailable


def _json(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _unchecked(total: int) -> dict[str, Any]:
    """A tensor's check figures when its shape is wrong: nothing could be compared."""
    return {
        "max_abs_error": None,
        "max_relative_error": None,
        "worst_index": None,
        "analytic": None,
        "numeric": None,
        "checked": 0,
        "total": total,
        "kinks": {"count": 0, "indices": []},
    }


def check_gradients(
    model: Model,
    params: Mapping[str, Any],
    X: Any,
    y: Any,
    l2: float,
    gradients: Mapping[str, np.ndarray],
    *,
    loss_value: float | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    seed: int = 0,
) -> dict[str, Any]:
    """The verdict on a student's ``gradients`` of ``model``'s loss at ``params`` on X, y.

    gradients: {name: float64 array} with exactly the model's names, of any shape (a wrong
    shape is a verdict) and any values (NaN is a verdict).  Returns the JSON-able answer::

        {"passed": bool,
         "parameters": {name: {<TensorCheck.to_dict() fields>, "passed", "diagnosis"}},
         "loss": {"reference", "yours", "relative_error", "passed", "diagnosis"},
         "taylor": <TaylorCheck.to_dict()>}

    ``numeric`` in a tensor's entry is the reference's value at the worst index, as in a
    job's stored checks; ``passed`` is True when every tensor (and the loss, when given)
    matches within rtol.  Raises SpecError for missing or unknown gradient names and
    EngineError when the loss is not finite at ``params``.
    """
    X = model.check_X(X)
    y = model.check_targets(y)
    work = model.check_params(params)
    names = list(model.param_shapes())
    if set(gradients) != set(names):
        raise SpecError(
            f"The gradients must be exactly {', '.join(names)}; got {', '.join(gradients)}."
        )
    with np.errstate(all="ignore"):
        loss, reference = model.loss_and_grads(work, X, y, l2)
    if not math.isfinite(loss.loss):
        raise EngineError(
            f"The loss is not finite at these parameters ({loss.loss}); "
            "gradients cannot be checked there."
        )
    reg = model.reg_grads(work, l2)
    m = X.shape[0]
    parts = roles(model)
    tensors: dict[str, Any] = {}
    for name in names:
        yours, ref = np.asarray(gradients[name], dtype=np.float64), reference[name]
        with np.errstate(all="ignore"):
            diagnosis = diagnose(
                yours, ref, ref - reg[name], reg[name], work[name], parts[name],
                m=m, l2=l2, rtol=rtol, atol=atol,
            )  # fmt: skip
        if yours.shape == ref.shape:
            coords = np.arange(ref.size)
            figures = compare(
                yours, ref.ravel(), coords, np.zeros(ref.size, dtype=bool), rtol=rtol, atol=atol
            ).to_dict()
        else:
            figures = _unchecked(ref.size)
        passed = diagnosis.code == "correct"
        tensors[name] = {**figures, "passed": passed, "diagnosis": diagnosis.to_dict()}

    loss_answer: dict[str, Any] = {
        "reference": float(loss.loss),
        "yours": None,
        "relative_error": None,
        "passed": None,
        "diagnosis": None,
    }
    if loss_value is not None:
        err = relative_errors(np.array([loss_value]), np.array([loss.loss]), rtol=rtol, atol=atol)
        verdict = diagnose_loss(
            loss_value, loss.loss, loss.data_loss, loss.reg_loss, m=m, rtol=rtol, atol=atol
        )
        loss_answer.update(
            yours=_json(loss_value),
            relative_error=_json(float(err[0])),
            passed=verdict.code == "correct",
            diagnosis=verdict.to_dict(),
        )

    shaped = all(np.shape(gradients[n]) == reference[n].shape for n in names)
    finite = shaped and all(np.isfinite(gradients[n]).all() for n in names)
    if finite:
        grads = {n: np.asarray(gradients[n], dtype=np.float64) for n in names}
        taylor = model_taylor_test(model, work, X, y, l2, grads, seed=seed).to_dict()
    else:
        why = "a gradient has the wrong shape" if not shaped else "a gradient is not finite"
        taylor = unavailable(f"{why}, so ⟨g, v⟩ is not defined", seed=seed).to_dict()

    passed = all(t["passed"] for t in tensors.values()) and loss_answer["passed"] is not False
    return {"passed": passed, "parameters": tensors, "loss": loss_answer, "taylor": taylor}
