"""The CSV writer ``GET /v1/jobs/{id}/metrics?format=csv`` had before whole-array lines
(``service.metrics.service._csv_lines``): orjson formats the numbers, then each line is
spliced from two fields with one bytes-format per block. ``gradlab bench --only reads``
times the two side by side, and the tests check that they write the same bytes."""

from __future__ import annotations

from itertools import chain

import numpy as np
import orjson

from store.chunks import Col

_NUMPY = orjson.OPT_SERIALIZE_NUMPY


def _tokens(values: np.ndarray) -> list[bytes]:
    return orjson.dumps(np.ascontiguousarray(values), option=_NUMPY)[1:-1].split(b",")


def csv_lines_by_row(block: np.ndarray) -> bytes:
    """CSV lines of an ``(n, 6)`` block: the iteration and one ready-made row per line."""
    iterations = _tokens(block[:, Col.ITERATION].astype(np.int64))
    accuracy = block[:, Col.ACCURACY]
    missing = np.isnan(accuracy)
    if missing.all():  # regression: no accuracy column to write
        values, template = block[:, 1:5], b"%b,%b,\n"
    else:
        values, template = block[:, 1:6], b"%b,%b\n"
    dumped = orjson.dumps(np.ascontiguousarray(values), option=_NUMPY)[2:-2].split(b"],[")
    lines = template * len(block) % tuple(chain.from_iterable(zip(iterations, dumped, strict=True)))
    return lines.replace(b"null", b"") if missing.any() and not missing.all() else lines


def paired_ratios(url: str, job_id: str, repeats: int = 5) -> list[float]:
    """The whole-array CSV writer's time over the row writer's, on a job's blocks read once,
    the two timed alternately in this process (each pair under the same load)."""
    import time

    from service.metrics import repository, service
    from store.db import Database
    from store.settings import Settings

    db = Database(url, Settings(database_url=url))
    try:
        with db.engine.connect() as conn:
            blocks = list(service.iter_blocks(conn, job_id, repository.span(conn, job_id, 0, None)))
    finally:
        db.dispose()
    ratios = []
    for _ in range(repeats):
        times = []
        for write in (service._csv_lines, csv_lines_by_row):
            start = time.perf_counter()
            for block in blocks:
                write(block)
            times.append(time.perf_counter() - start)
        ratios.append(times[0] / times[1])
    return ratios
