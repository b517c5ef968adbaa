"""``GET /v1/jobs/{id}/metrics``: a job's recorded points."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from starlette.responses import Response, StreamingResponse

from service.deps import CallerDep, DatabaseDep
from service.errors import ErrorBody, InvalidSpec, Problem
from service.jobs.schemas import Metrics
from service.jobs.service import no_job
from service.metrics import repository, service
from service.metrics.repository import Span
from store.spec import MAX_COUNT

router = APIRouter(prefix="/v1/jobs", tags=["metrics"])
STREAM_ABOVE = 50_000  # points; smaller answers are built whole and sent with a length


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
    db: DatabaseDep,
    caller: CallerDep,
    job_id: str,
    start: Annotated[int, Query(ge=0, le=MAX_COUNT, description="First iteration.")] = 0,
    end: Annotated[
        int | None, Query(ge=0, le=MAX_COUNT, description="Last iteration (inclusive).")
    ] = None,
    max_points: Annotated[
        int | None, Query(ge=3, le=1_000_000, description="Downsample to at most this many.")
    ] = None,
    format: Annotated[Literal["points", "columns", "csv"] | None, Query()] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    if end is not None and end < start:
        raise InvalidSpec([Problem(("query:end",), "end must not be before start.")])
    fmt = format or ("csv" if accept and "text/csv" in accept else "points")
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    headers = (
        {"Content-Disposition": f'attachment; filename="{job_id}.csv"'} if fmt == "csv" else None
    )
    with db.engine.connect() as conn:
        if not repository.job_exists(conn, job_id, caller):
            raise no_job(job_id)
        sp = repository.span(conn, job_id, start, end)
        if max_points is not None and sp.total > max_points:
            block = service.downsample(conn, job_id, sp, max_points)
            body = b"".join(service.render_block(fmt, job_id, sp.total, block))
            return Response(body, media_type=media, headers=headers)
        if sp.total <= STREAM_ABOVE:
            body = b"".join(service.render(fmt, conn, job_id, sp))
            return Response(body, media_type=media, headers=headers)
    return StreamingResponse(_stream(db, job_id, sp, fmt), media_type=media, headers=headers)


def _stream(db: DatabaseDep, job_id: str, sp: Span, fmt: str) -> Iterator[bytes]:
    """A long history, piece by piece, on a connection of its own. The span was fixed
    before answering: chunks written meanwhile are not part of this response."""
    with db.engine.connect() as conn:
        yield from service.render(fmt, conn, job_id, sp)
