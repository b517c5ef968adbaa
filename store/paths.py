"""The parameters' path: a job's parameters every k iterations, for the trajectory plot.

The worker keeps the parameters of iterations 0, k, 2k, … and the last (each the point the
loss of that iteration was computed at, before its update) and writes them with each flush,
one ``parameter_paths`` row per flush: the iterations as int64 and the parameters as an
``(n, P)`` float64 block (the model's tensors raveled in their order, W then b, …). k is
the smallest step that keeps a job's whole path within :data:`MAX_PATH_VALUES` numbers, so
a two-parameter problem keeps every iteration of up to half a million, and a network with a
million parameters a point or two: bounded storage, whatever the job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from store.tables import ParameterPath

MAX_PATH_VALUES = 1_000_000
"""The most numbers (iterations × parameters) a job's path keeps: 8 MB of float64."""

_I8, _F8 = np.dtype("<i8"), np.dtype("<f8")


def every(iterations: int, n_params: int) -> int:
    """The step k between kept iterations for a job of this length and size (at least 1)."""
    return max(1, math.ceil(iterations * n_params / MAX_PATH_VALUES))


def kept(i: int, k: int, last: int) -> bool:
    """Whether iteration ``i`` is on the path: a multiple of k, or the last."""
    return i % k == 0 or i == last


def flat(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """A model's parameters as one float64 vector, in their order."""
    return np.concatenate([np.ravel(w) for w in params.values()]).astype(_F8)


def snapshot(params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """A copy of each tensor, the cheapest record of one kept iteration (the worker takes
    one per iteration of a small model: a tensor copy each; the block is built at flush)."""
    return tuple(w.copy() for w in params.values())


def path_row(job_id: str, iterations: list[int], kept: list[tuple[np.ndarray, ...]]) -> dict:
    """One flush's kept points (:func:`snapshot` each), as a ``parameter_paths`` row."""
    n = len(kept)
    block = np.hstack(
        [np.stack(tensors).reshape(n, -1) for tensors in zip(*kept, strict=True)]
    ).astype(_F8, copy=False)
    return {
        "job_id": job_id,
        "first_iteration": iterations[0],
        "count": n,
        "width": block.shape[1],
        "iterations": np.asarray(iterations, dtype=_I8).tobytes(),
        "params": np.ascontiguousarray(block).tobytes(),
    }


def read(conn: Connection | Session, job_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The job's kept iterations ``(n,)`` and parameters ``(n, P)``, in order (empty when
    it has none)."""
    query = (
        select(
            ParameterPath.count, ParameterPath.width, ParameterPath.iterations, ParameterPath.params
        )
        .where(ParameterPath.job_id == job_id)
        .order_by(ParameterPath.first_iteration)
    )
    # As plain tuples: a Row's .count is tuple.count, not the column.
    rows: list[tuple[int, int, bytes, bytes]] = [
        (int(r[0]), int(r[1]), r[2], r[3]) for r in conn.execute(query)
    ]
    if not rows:
        return np.empty(0, dtype=_I8), np.empty((0, 0))
    iterations = np.concatenate([np.frombuffer(its, _I8, n) for n, _, its, _ in rows])
    params = np.concatenate([np.frombuffer(ps, _F8, n * w).reshape(n, w) for n, w, _, ps in rows])
    # A resumed attempt rewrites from its checkpoint: keep each iteration's last write.
    _, last = np.unique(iterations[::-1], return_index=True)
    order = len(iterations) - 1 - last
    return iterations[order], params[order]
