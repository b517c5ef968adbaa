"""The storage format of a job's points: one ``metric_chunks`` row per flush.

A point is ``(iteration, loss, data_loss, reg_loss, grad_norm, accuracy)``; a block of
points is an ``(n, 6)`` float64 array with accuracy NaN where it does not apply. A chunk
holds ``n`` consecutive iterations from ``first_iteration``: each series packed as float64,
the loss's min/max/last, and ``extremes``, the full points at the lowest and highest loss
(``(2, 6)``), which is all a downsampled read of a long history needs from the chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Any

import numpy as np

from store.codec import pack, unpack


class Col(IntEnum):
    """A column of a block of points, named as ``engine.IterationRecord`` names its fields:
    ``block[:, Col.LOSS]``."""

    ITERATION = 0
    LOSS = 1
    DATA_LOSS = 2
    REG_LOSS = 3
    GRAD_NORM = 4
    ACCURACY = 5


COLUMNS = tuple(c.name.lower() for c in Col)
SERIES = COLUMNS[1:]
WIDTH = len(COLUMNS)


def records_block(records: Sequence[Sequence[Any]]) -> np.ndarray:
    """Consecutive iteration records as an ``(n, 6)`` float64 block (accuracy NaN where it
    does not apply), each column contiguous. Converting column by column costs about a
    third of ``np.array(records)``, and a flush of 1,000 points is on the write path."""
    n = len(records)
    first, last = records[0][Col.ITERATION], records[-1][Col.ITERATION]
    if last != first + n - 1:
        raise ValueError(f"records {first}..{last} are not {n} consecutive iterations")
    columns = list(zip(*records, strict=True))
    block = np.empty((len(Col), n))
    block[Col.ITERATION] = np.arange(first, first + n)
    for j in (Col.LOSS, Col.DATA_LOSS, Col.REG_LOSS, Col.GRAD_NORM):
        block[j] = columns[j]
    accuracy = columns[Col.ACCURACY]
    block[Col.ACCURACY] = np.nan if accuracy[0] is None else accuracy
    return block.T


REFERENCE_LOSS = "reference_loss"
"""A student's job's extra series: the reference solution's loss at each point's parameters
(stored beside the six, never in ``extremes``; NULL for every other job)."""


def chunk_row(
    job_id: str, block: np.ndarray, reference_loss: np.ndarray | None = None
) -> dict[str, Any]:
    """The ``metric_chunks`` row for a block of consecutive points, shape ``(n, 6)``, and
    for a student's job the reference loss at each of them, shape ``(n,)``."""
    if block.ndim != 2 or block.shape[1] != WIDTH or not len(block):
        raise ValueError(f"a chunk needs an (n, {WIDTH}) block of points, got {block.shape}")
    loss = block[:, Col.LOSS]
    lo, hi = int(loss.argmin()), int(loss.argmax())
    accuracy = block[:, Col.ACCURACY]
    return {
        "job_id": job_id,
        "first_iteration": int(block[0, Col.ITERATION]),
        "count": len(block),
        **{name: pack(block[:, Col[name.upper()]]) for name in SERIES[:-1]},
        "accuracy": None if np.isnan(accuracy).all() else pack(accuracy),
        "loss_min": float(loss[lo]),
        "loss_max": float(loss[hi]),
        "loss_last": float(loss[-1]),
        "extremes": pack(block[[lo, hi]]),
        REFERENCE_LOSS: None if reference_loss is None else pack(reference_loss),
    }


def series(blob: bytes | None, count: int) -> np.ndarray:
    """One stored series; a missing accuracy series reads as NaN."""
    if blob is None:
        return np.full(count, np.nan)
    return unpack(blob)


def extremes(blob: bytes) -> np.ndarray:
    """The lowest- and highest-loss points of one chunk's ``extremes`` (or of several,
    concatenated), as rows of an ``(2k, 6)`` array."""
    return unpack(blob).reshape(-1, WIDTH)
