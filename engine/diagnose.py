"""What is wrong with a student's gradient: the slip in the derivation, named.

A student's gradient of one tensor is compared with the engine's analytic one (the
reference r) and with the reference's two parts: the data part d (the gradient of the data
loss alone) and the L2 part q (``Model.reg_grads``: l2·W on the weights, zero on the
biases, the engine's one definition of L2).  Each rule below predicts what a particular slip
would have produced; the first prediction the student's gradient matches names it:

==============  ==================================================  ====================
code            the student's gradient                               applies to
==============  ==================================================  ====================
wrong_shape     has another shape than its parameter                 every tensor
transposed      has the transposed shape, or equals rᵀ               2-D tensors (weights)
not_finite      holds NaN or ±inf                                    every tensor
correct         r                                                    every tensor
sign_flipped    −r, or −d + q                                        every tensor
missing_l2      d                                                    weights, l2 > 0
l2_scaled       d + c·q, c ≠ 1 (``factor`` c)                        weights, l2 > 0
l2_on_bias      d + l2·b                                             biases ≠ 0, l2 > 0
not_averaged    m·d + q, or m·r (``factor`` m, the examples)         m > 1
scaled          c·r, or c·d + q (``factor`` c)                       every tensor
partial         r at most coordinates, wrong in some rows/columns    tensors of 2+ entries
other           none of these                                        every tensor
==============  ==================================================  ====================

"Matches" is the gradient check's own test: every coordinate's relative error
``|a − b| / max(|a|, |b|, atol/rtol)`` at most rtol.  Fitted factors are least squares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CODES = (
    "correct",
    "scaled",
    "sign_flipped",
    "not_averaged",
    "transposed",
    "missing_l2",
    "l2_on_bias",
    "l2_scaled",
    "wrong_shape",
    "not_finite",
    "partial",
    "other",
)
MAX_LISTED = 5


@dataclass
class Diagnosis:
    """A verdict on one tensor: ``code`` (one of ``CODES``), a sentence pointing at the likely
    slip, and the fitted ``factor`` for scaled, not_averaged and l2_scaled; for partial, the
    wrong ``rows``, ``columns`` or ``indices``."""

    code: str
    message: str
    factor: float | None = None
    where: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.factor is not None:
            out["factor"] = self.factor
        out.update(self.where)
        return out


@dataclass(frozen=True)
class Roles:
    """What a tensor is in its model, for the sentences: its name, whether L2 applies to it,
    what its rows and columns stand for."""

    name: str
    weight: bool
    rows: str  # "feature", "hidden unit"
    columns: str  # "class", "hidden unit", "output"


def roles(model: Any) -> dict[str, Roles]:
    """Each parameter's :class:`Roles` in ``model`` (a :class:`engine.Model`)."""
    names = list(model.param_shapes())
    weights = set(model.weight_names)
    layers = [n for n in names if n in weights]
    out_unit = "class" if model.head == "softmax" else "output"
    result = {}
    for name in names:
        # A bias sits beside the weight of its layer: b ↔ W, b2 ↔ W2.
        layer = layers.index(name if name in weights else "W" + name[1:])
        rows = "feature" if layer == 0 else "hidden unit"
        columns = out_unit if layer == len(layers) - 1 else "hidden unit"
        result[name] = Roles(name, name in weights, rows, columns)
    return result


def relative_errors(a: np.ndarray, b: np.ndarray, *, rtol: float, atol: float) -> np.ndarray:
    """Per coordinate |a − b| / max(|a|, |b|, atol/rtol), the gradient check's measure (NaN
    counts as infinitely wrong)."""
    with np.errstate(all="ignore"):
        err = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), atol / rtol)
    err[np.isnan(err)] = np.inf
    return err


def _fit(g: np.ndarray, base: np.ndarray, direction: np.ndarray) -> float | None:
    """The c for which base + c·direction is nearest g (least squares), or None."""
    dd = float(np.vdot(direction, direction))
    if dd == 0.0:
        return None
    return float(np.vdot(g - base, direction)) / dd


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + (",)" if len(shape) == 1 else ")")


def _round(c: float) -> float:
    """A fitted factor as a student reads it: 2.0000000000003 is 2."""
    nearest = round(c)
    return float(nearest) if nearest and abs(c - nearest) <= 1e-9 * abs(c) else c


def diagnose(
    yours: np.ndarray,
    reference: np.ndarray,
    data: np.ndarray,
    reg: np.ndarray,
    param: np.ndarray,
    role: Roles,
    *,
    m: int,
    l2: float,
    rtol: float,
    atol: float,
) -> Diagnosis:
    """Name what is wrong with ``yours`` as the gradient of one tensor.

    reference = data + reg, the engine's gradient; data: its data-loss part; reg: its L2
    part (zero for a bias); param: the tensor's value; m: the examples the loss averages
    over; every array of the parameter's shape except ``yours``, which may have any.
    """
    d = f"d{role.name}"
    want = reference.shape
    if yours.shape != want:
        if len(want) == 2 and yours.shape == want[::-1]:
            right = _close(yours.T, reference, rtol, atol)
            tail = " (its transpose is right)" if right else ""
            return Diagnosis(
                "transposed",
                f"{d} has shape {_shape(yours.shape)} but {role.name} has shape "
                f"{_shape(want)}: transposed?{tail} A weight's gradient is the layer's input "
                f"transposed times the gradient of its scores (X.T·dscores), shaped like "
                f"{role.name}.",
            )
        hint = ""
        if len(want) == 1 and yours.size == reference.size:
            hint = (
                f" gradlab's biases are flat, {_shape(want)}; the notes' b is (1, K): flatten {d}."
            )
        return Diagnosis(
            "wrong_shape",
            f"{d} has shape {_shape(yours.shape)} but {role.name} has shape {_shape(want)}: "
            f"a gradient has the shape of its parameter.{hint}",
        )
    if not np.isfinite(yours).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(yours))[0])
        return Diagnosis(
            "not_finite",
            f"{d} holds {yours[bad]} at {list(bad)}: an exp that overflowed or a log of 0? "
            "Shift the scores by their row's max before exp, and take logs of probabilities "
            "that cannot be 0.",
        )
    if _close(yours, reference, rtol, atol):
        return Diagnosis("correct", f"{d} matches the reference gradient.")
    square = reference.ndim == 2 and reference.shape[0] == reference.shape[1]
    if square and _close(yours, reference.T, rtol, atol):
        return Diagnosis(
            "transposed",
            f"{d} is the transpose of the right gradient: it is the layer's input "
            f"transposed times the gradient of its scores (X.T·dscores), not the other "
            f"way round.",
        )
    if _close(yours, -reference, rtol, atol) or _close(yours, reg - data, rtol, atol):
        return Diagnosis(
            "sign_flipped",
            f"{d} has the wrong sign: the gradient points uphill, and descent subtracts it "
            f"(dscores is p − 1 at the correct class, not 1 − p).",
        )
    regularised = l2 > 0 and bool(np.any(reg))
    if role.weight and regularised:
        if _close(yours, data, rtol, atol):
            return Diagnosis(
                "missing_l2",
                f"{d} lacks the regularisation term: the loss has 0.5·l2·Σ‖W‖², whose "
                f"gradient adds l2·{role.name} to {d}.",
            )
        c = _fit(yours, data, reg)
        if c is not None and _close(yours, data + c * reg, rtol, atol):
            c = _round(c)
            return Diagnosis(
                "l2_scaled",
                f"{d}'s regularisation term is {c:g}·l2·{role.name} instead of "
                f"l2·{role.name}: the derivative of 0.5·l2·‖{role.name}‖² is l2·{role.name} "
                f"(the ½ cancels the 2).",
                factor=c,
            )
    bias_l2 = not role.weight and l2 > 0 and bool(np.any(param))
    if bias_l2 and _close(yours, data + l2 * param, rtol, atol):
        return Diagnosis(
            "l2_on_bias",
            f"{d} includes l2·{role.name}: L2 regularises the weights only, never the "
            f"biases; drop that term from {d}.",
        )
    if m > 1 and (
        _close(yours, m * data + reg, rtol, atol) or _close(yours, m * reference, rtol, atol)
    ):
        return Diagnosis(
            "not_averaged",
            f"your {d} is m = {m} times too large: you summed over the examples where the "
            f"mean belongs (divide dscores by m).",
            factor=float(m),
        )
    for base, direction in ((np.zeros_like(reference), reference), (reg, data)):
        c = _fit(yours, base, direction)
        if c is not None and c != 0 and _close(yours, base + c * direction, rtol, atol):
            c = _round(c)
            extra = ""
            if m > 1 and math.isclose(c, 1 / m, rel_tol=1e-6):
                extra = " (1/m: divided by m twice?)"
            return Diagnosis(
                "scaled",
                f"your {d} is {c:g} times the right one{extra}: a constant factor slipped "
                f"(a ½ or a 2 lost in the derivative, or a 1/m too many or too few).",
                factor=c,
            )
    return _partial(yours, reference, role, rtol, atol)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return bool(np.all(relative_errors(a, b, rtol=rtol, atol=atol) <= rtol))


def _partial(
    yours: np.ndarray, reference: np.ndarray, role: Roles, rtol: float, atol: float
) -> Diagnosis:
    d = f"d{role.name}"
    wrong = relative_errors(yours, reference, rtol=rtol, atol=atol) > rtol
    n_wrong = int(np.count_nonzero(wrong))
    worst = tuple(
        int(i)
        for i in np.unravel_index(
            int(np.argmax(relative_errors(yours, reference, rtol=rtol, atol=atol))),
            reference.shape,
        )
    )
    if reference.size < 2 or n_wrong * 2 > reference.size:
        return Diagnosis(
            "other",
            f"{d} differs from the reference at {n_wrong} of {reference.size} coordinates "
            f"(worst at {list(worst)}) in no pattern gradlab recognises: rederive it step by "
            f"step, checking each intermediate's shape and a tiny case by hand.",
        )
    if reference.ndim == 1:
        entries = [int(i) for i in np.flatnonzero(wrong)]
        return Diagnosis(
            "partial",
            f"{d} is right except at {_listed(entries, role.columns)}: look at how "
            f"{_those(len(entries), role.columns)} the gradient.",
            where={"indices": [[i] for i in entries[:MAX_LISTED]]},
        )
    rows = [int(i) for i in np.flatnonzero(wrong.any(axis=1))]
    columns = [int(j) for j in np.flatnonzero(wrong.any(axis=0))]
    if len(columns) < wrong.shape[1] and len(columns) <= len(rows):
        what, lines, label = "column", columns, role.columns
    elif len(rows) < wrong.shape[0]:
        what, lines, label = "row", rows, role.rows
    else:
        indices = [[int(i) for i in ix] for ix in np.argwhere(wrong)[:MAX_LISTED]]
        return Diagnosis(
            "partial",
            f"{d} is right at {reference.size - n_wrong} of {reference.size} coordinates, "
            f"wrong at {n_wrong} scattered ones (first {indices}): an indexing slip, such as "
            f"the correct-class entries (dscores[range(m), y] -= 1)?",
            where={"indices": indices},
        )
    n = len(lines)
    listed = ", ".join(str(i) for i in lines[:MAX_LISTED]) + (
        "…" if len(lines) > MAX_LISTED else ""
    )
    return Diagnosis(
        "partial",
        f"{d} is right except in {_plural(what, n)} {listed} ({_plural(label, n)} {listed}): "
        f"look at how {_those(len(lines), label)} the gradient.",
        where={f"{what}s": lines[:MAX_LISTED]},
    )


def _plural(word: str, count: int) -> str:
    if count == 1:
        return word
    return word + ("es" if word.endswith("s") else "s")


def _those(count: int, label: str) -> str:
    """``that class enters`` or ``those classes enter``."""
    if count == 1:
        return f"that {label} enters"
    return f"those {_plural(label, count)} enter"


def _listed(entries: list[int], label: str) -> str:
    shown = ", ".join(str(i) for i in entries[:MAX_LISTED])
    return f"{_plural(label, len(entries))} {shown}" + ("…" if len(entries) > MAX_LISTED else "")


def diagnose_loss(
    yours: float,
    total: float,
    data_loss: float,
    reg_loss: float,
    *,
    m: int,
    rtol: float,
    atol: float,
) -> Diagnosis:
    """The same rules for the loss value: total = data_loss + reg_loss, the reference's."""

    def close(a: float, b: float) -> bool:
        return _close(np.array([a]), np.array([b]), rtol, atol)

    if not math.isfinite(yours):
        return Diagnosis("not_finite", f"your loss is {yours}: a log of 0 or an exp overflowed?")
    if close(yours, total):
        return Diagnosis("correct", "your loss matches the reference loss.")
    if close(yours, -total):
        return Diagnosis("sign_flipped", "your loss has the wrong sign: it is −mean(log p_y).")
    if reg_loss and close(yours, data_loss):
        return Diagnosis(
            "missing_l2", "your loss lacks the regularisation term 0.5·l2·Σ‖W‖² (weights only)."
        )
    if reg_loss and close(yours, data_loss + 2 * reg_loss):
        return Diagnosis(
            "l2_scaled",
            "your loss's regularisation term is l2·Σ‖W‖²; gradlab's (and the notes') is "
            "0.5·l2·Σ‖W‖².",
            factor=2.0,
        )
    if m > 1 and (close(yours, m * data_loss + reg_loss) or close(yours, m * total)):
        return Diagnosis(
            "not_averaged",
            f"your loss is the sum over the m = {m} examples where the mean belongs.",
            factor=float(m),
        )
    return Diagnosis(
        "other",
        f"your loss is {yours:.6g} where the reference's is {total:.6g} (data {data_loss:.6g}"
        f" + L2 {reg_loss:.6g}): recheck the mean over the examples and the L2 term.",
    )
