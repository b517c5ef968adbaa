"""Appending an external run's points: each iteration stored exactly once.

An external run's owner logs points from their own loop (``POST /v1/jobs/{id}/metrics``),
in batches of consecutive iterations, retried at will and from several senders at once. The
points are stored as the worker's are (:mod:`store.chunks`: one ``metric_chunks`` row per
batch of new points), so every read path serves them unchanged. That format holds the
iterations ``0 .. iterations_done − 1`` with no gap, and so does an append:

* the part of a batch below ``iterations_done`` is compared with what is stored: identical
  points are a no-op, a different value is a :class:`PointConflict` (nothing is written);
* the rest, if the batch starts at or below ``iterations_done``, is one new chunk, and the
  job's summary (``iterations_done``, final and best loss) follows it;
* a batch that starts above ``iterations_done`` would leave a gap: :class:`Gap`.

The caller holds the run's row (:func:`store.lifecycle.lock_external`) for the transaction,
so appends to one run are serialised and each compares against what the last committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from store.chunks import COLUMNS, SERIES, WIDTH, Col, chunk_row, series
from store.tables import Job, MetricChunk

chunks = cast(Table, MetricChunk.__table__)


class PointConflict(Exception):
    """A point of the batch differs from the one stored for its iteration."""

    def __init__(self, iteration: int, field: str, stored: float, sent: float) -> None:
        self.iteration, self.field, self.stored, self.sent = iteration, field, stored, sent
        super().__init__(
            f"Iteration {iteration} is stored already with {field} = {stored!r}; this batch "
            f"sends {field} = {sent!r}. A stored point never changes: re-send it as it was."
        )


class Gap(Exception):
    """The batch starts past the next iteration to store: it would leave a gap."""

    def __init__(self, first: int, expected: int) -> None:
        self.first, self.expected = first, expected
        super().__init__(
            f"This batch starts at iteration {first}, but the run has iterations "
            f"0..{expected - 1} stored: the next batch must start at or before {expected} "
            "(points are stored without gaps); send the missing points first."
        )


@dataclass(frozen=True)
class Appended:
    """What an append did: ``stored`` new points, ``unchanged`` ones already stored."""

    stored: int
    unchanged: int
    iterations_done: int


def _stored(session: Session, job_id: str, lo: int, hi: int) -> np.ndarray:
    """The stored points ``lo .. hi`` (all stored) as an ``(n, 6)`` block."""
    floor = (
        select(func.max(chunks.c.first_iteration))
        .where(chunks.c.job_id == job_id, chunks.c.first_iteration <= lo)
        .scalar_subquery()
    )
    query = (
        select(chunks.c.first_iteration, chunks.c.count, *(chunks.c[name] for name in SERIES))
        .where(
            chunks.c.job_id == job_id,
            chunks.c.first_iteration >= floor,
            chunks.c.first_iteration <= hi,
        )
        .order_by(chunks.c.first_iteration)
    )
    blocks = []
    for first, count, *blobs in session.execute(query):
        block = np.empty((count, WIDTH))
        block[:, Col.ITERATION] = np.arange(first, first + count)
        for j, blob in enumerate(blobs, start=1):
            block[:, j] = series(blob, count)
        blocks.append(block)
    whole = np.concatenate(blocks)
    return whole[(whole[:, Col.ITERATION] >= lo) & (whole[:, Col.ITERATION] <= hi)]


def _check_same(stored: np.ndarray, sent: np.ndarray) -> None:
    """Raise :class:`PointConflict` at the first point of ``sent`` that differs from
    ``stored`` (the same iterations; NaN, a series not given, equals NaN)."""
    same = (stored == sent) | (np.isnan(stored) & np.isnan(sent))
    if same.all():
        return
    row, col = np.argwhere(~same)[0]
    iteration = int(sent[row, Col.ITERATION])
    stored_value, sent_value = (float(a[row, col]) for a in (stored, sent))
    raise PointConflict(iteration, COLUMNS[col], stored_value, sent_value)


def append(session: Session, job: Job, block: np.ndarray) -> Appended:
    """Append a batch of consecutive points (an ``(n, 6)`` block in iteration order) to the
    external run ``job``, whose row the caller holds. Raises :class:`PointConflict` or
    :class:`Gap` having written nothing."""
    first, last = int(block[0, Col.ITERATION]), int(block[-1, Col.ITERATION])
    done = job.iterations_done
    if first > done:
        raise Gap(first, done)
    overlap = min(last, done - 1) - first + 1
    if overlap > 0:
        _check_same(_stored(session, job.id, first, first + overlap - 1), block[:overlap])
    new = block[max(overlap, 0) :]
    if not len(new):
        return Appended(0, len(block), done)
    session.execute(insert(chunks), [chunk_row(job.id, new)])
    loss = new[:, Col.LOSS]
    lowest = int(loss.argmin())
    if job.best_loss is None or loss[lowest] < job.best_loss:
        job.best_loss, job.best_iteration = float(loss[lowest]), int(new[lowest, Col.ITERATION])
    accuracy = float(new[-1, Col.ACCURACY])
    job.final_loss = float(new[-1, Col.LOSS])
    job.final_accuracy = None if np.isnan(accuracy) else accuracy
    job.iterations_done = last + 1
    session.flush()
    return Appended(len(new), len(block) - len(new), last + 1)


def block_of(points: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Points as dicts (``iteration``, ``loss`` and any of ``data_loss``, ``reg_loss``,
    ``grad_norm``, ``accuracy``; finite or None) as an ``(n, 6)`` block: ``data_loss``
    defaults to the loss, ``reg_loss`` to 0, the others to NaN (shown as null). Column by
    column, as :func:`store.chunks.records_block` does: a None becomes NaN in C."""
    block = np.empty((len(points), WIDTH))
    for col in Col:
        name = COLUMNS[col]
        block[:, col] = np.array([p.get(name) for p in points], dtype=np.float64)
    absent = np.isnan(block[:, Col.DATA_LOSS])
    block[absent, Col.DATA_LOSS] = block[absent, Col.LOSS]
    block[np.isnan(block[:, Col.REG_LOSS]), Col.REG_LOSS] = 0.0
    return block
