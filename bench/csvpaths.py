"""The two CSV writers side by side: the whole-array one the API uses and the row-by-row
one it replaced (:mod:`service.metrics.csvref`), for ``gradlab bench --only reads``."""

from __future__ import annotations

from service.metrics.csvref import csv_lines_by_row


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
