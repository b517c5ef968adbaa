"""Input validation shared by the datasets, the models, the optimizers and the trainer.

Each helper turns a value into the form the engine computes with, or raises the
specific :mod:`engine.errors` exception with a sentence naming the value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import EngineError, ShapeError, SpecError


def as_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """``value`` as a Python int (integral floats accepted), at least ``minimum``."""
    if isinstance(value, bool):
        raise SpecError(f"{name} must be an integer, got {value!r}.")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        result = operator.index(value)
    except TypeError:
        raise SpecError(f"{name} must be an integer, got {value!r}.") from None
    if minimum is not None and result < minimum:
        raise SpecError(f"{name} must be at least {minimum}, got {result}.")
    return result


def as_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    positive: bool = False,
    below: float | None = None,
) -> float:
    """``value`` as a finite Python float, optionally bounded (``below`` is exclusive)."""
    if isinstance(value, bool):
        raise SpecError(f"{name} must be a number, got {value!r}.")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(result):
        raise SpecError(f"{name} must be a finite number, got {result}.")
    if positive and result <= 0:
        raise SpecError(f"{name} must be greater than 0, got {result:g}.")
    if minimum is not None and result < minimum:
        raise SpecError(f"{name} must be at least {minimum:g}, got {result:g}.")
    if below is not None and result >= below:
        raise SpecError(f"{name} must be less than {below:g}, got {result:g}.")
    return result


def as_matrix(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a C-contiguous float64 array of shape (m, n), non-empty and finite.

    Raises ShapeError for ragged rows, a wrong number of dimensions or an empty array,
    and EngineError for values that are not finite numbers.
    """
    if isinstance(X, Sequence) and not isinstance(X, str | bytes):
        rows = list(X)
        if rows and all(isinstance(r, Sequence) and not isinstance(r, str | bytes) for r in rows):
            width = len(rows[0])
            for i, row in enumerate(rows):
                if len(row) != width:
                    raise ShapeError(
                        f"{name} is ragged: row 0 has {width} values but row {i} has "
                        f"{len(row)}; every row must have the same number of features."
                    )
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        if "inhomogeneous" in str(exc) or "sequence" in str(exc):
            raise ShapeError(
                f"{name} is ragged: its rows do not all have the same length."
            ) from None
        raise EngineError(f"{name} must contain only numbers ({exc}).") from None
    if arr.ndim >= 1 and arr.shape[0] == 0:
        raise ShapeError(f"{name} is empty: it has no rows (samples).")
    if arr.ndim != 2:
        raise ShapeError(
            f"{name} must be a 2-D array of shape (samples, features), "
            f"but it has shape {arr.shape}."
        )
    if arr.shape[1] == 0:
        raise ShapeError(f"{name} has no columns (features).")
    check_finite(arr, name)
    return np.ascontiguousarray(arr)


def as_vector(y: Any, name: str = "y") -> np.ndarray:
    """``y`` as a float64 array of shape (m,), non-empty (finiteness not checked)."""
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        if "inhomogeneous" in str(exc) or "sequence" in str(exc):
            raise ShapeError(f"{name} must be a flat list of numbers, one per sample.") from None
        raise EngineError(f"{name} must contain only numbers ({exc}).") from None
    if arr.ndim != 1:
        raise ShapeError(
            f"{name} must be 1-D with one value per sample, but it has shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ShapeError(f"{name} is empty: it has no values.")
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise EngineError naming the first nan/inf entry of ``arr``."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = ", ".join(str(int(i)) for i in bad)
        raise EngineError(
            f"{name} contains {arr[tuple(bad)]} at index ({where}); "
            "every value must be a finite number."
        )


def choice(value: Any, name: str, options: Sequence[str], *, what: str = "") -> str:
    """``value`` if it is one of ``options``, else SpecError listing them."""
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(options)
        raise SpecError(f"Unknown {name} {value!r}{what}; choose one of {listed}.")
    return value
