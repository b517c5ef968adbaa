"""``GET /v1/jobs/{id}/metrics``: a job's recorded points."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from starlette.responses import Response, StreamingResponse

from service.deps import DatabaseDep, ReadSessionDep
from service.errors import ErrorBody, InvalidSpec, Problem
from service.jobs import service as jobs
from service.jobs.schemas import Metrics
from service.metrics import repository, service
from service.metrics.chunks import COLUMNS

router = APIRouter(prefix="/v1/jobs", tags=["metrics"])


@router.get(
    "/{job_id}/metrics",
    response_model=Metrics,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Points (JSON), columns, or CSV."},
        404: {"model": ErrorBody, "description": "No job with this id."},
    },
    summary="Recorded points, in iteration order",
    description="One point per iteration: loss, data_loss, reg_loss, grad_norm and accuracy "
    "(null for regression). `start`/`end` select an iteration range (inclusive); `max_points` "
    "downsamples it deterministically, keeping the range's first and last point and each "
    "bucket's lowest- and highest-loss point, so spikes and the minimum stay visible. "
    "`format=columns` returns one array per field (fastest); `format=csv` or "
    "`Accept: text/csv` returns CSV. Long histories are streamed.",
)
def metrics(
    session: ReadSessionDep,
    db: DatabaseDep,
    job_id: str,
    start: Annotated[int, Query(ge=0, description="First iteration.")] = 0,
    end: Annotated[int | None, Query(ge=0, description="Last iteration (inclusive).")] = None,
    max_points: Annotated[
        int | None, Query(ge=3, le=1_000_000, description="Downsample to at most this many.")
    ] = None,
    format: Annotated[Literal["points", "columns", "csv"] | None, Query()] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    jobs.get(session, job_id)
    session.rollback()  # done with the session; the stream reads on its own connection
    if end is not None and end < start:
        raise InvalidSpec([Problem(("query:end",), "end must not be before start.")])
    fmt = format or ("csv" if accept and "text/csv" in accept else "points")
    body = _stream(db, job_id, start, end, max_points, fmt)
    first = next(body)  # reads the span (and any 404-free errors) before answering
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    headers = (
        {"Content-Disposition": f'attachment; filename="{job_id}.csv"'} if fmt == "csv" else None
    )
    return StreamingResponse(_prepend(first, body), media_type=media, headers=headers)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _stream(
    db: DatabaseDep, job_id: str, start: int, end: int | None, max_points: int | None, fmt: str
) -> Iterator[bytes]:
    with db.engine.connect() as conn:
        sp = repository.span(conn, job_id, start, end)
        if max_points is not None and sp.total > max_points:
            block = service.downsample(conn, job_id, sp, max_points)
            if fmt == "csv":
                yield from service.csv_rows(iter([block]))
            elif fmt == "columns":
                yield from service.columns_json(
                    job_id, sp.total, True, service.block_columns(block)
                )
            else:
                yield from service.points_json(job_id, sp.total, True, iter([block]))
            return
        if fmt == "csv":
            yield from service.csv_rows(service.iter_blocks(conn, job_id, sp))
        elif fmt == "columns":
            columns = ((name, service.iter_column(conn, job_id, sp, name)) for name in COLUMNS)
            yield from service.columns_json(job_id, sp.total, False, columns)
        else:
            yield from service.points_json(
                job_id, sp.total, False, service.iter_blocks(conn, job_id, sp)
            )
