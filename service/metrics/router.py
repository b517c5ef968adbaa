"""``GET /v1/jobs/{id}/metrics``: a job's recorded points."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import Response, StreamingResponse

from service.deps import CallerDep, DatabaseDep
from service.errors import ErrorBody, InvalidSpec, Problem
from service.jobs.schemas import Metrics
from service.jobs.service import no_job
from service.metrics import columnar, repository, service
from service.metrics.repository import Span
from service.web.prefetch import prefetched
from store.spec import MAX_COUNT

router = APIRouter(prefix="/v1/jobs", tags=["metrics"])
MEDIA = {"csv": "text/csv; charset=utf-8", **columnar.MEDIA}
SUFFIX = {"csv": "csv", "arrow": "arrows", "parquet": "parquet"}
STREAM_ABOVE = 50_000  # points; smaller answers are built whole and sent with a length


@router.get(
    "/{job_id}/metrics",
    response_model=Metrics,
    responses={
        200: {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                columnar.ARROW: {"schema": {"type": "string", "format": "binary"}},
                columnar.PARQUET: {"schema": {"type": "string", "format": "binary"}},
            },
            "description": "Points (JSON), columns, CSV, an Arrow IPC stream or Parquet.",
        },
        404: {"model": ErrorBody, "description": "No job with this id."},
        406: {
            "model": ErrorBody,
            "description": "Arrow or Parquet asked for, and this server has no pyarrow.",
        },
    },
    summary="Recorded points, in iteration order",
    description="One point per iteration: loss, data_loss, reg_loss, grad_norm and accuracy "
    "(null for regression). `start`/`end` select an iteration range (inclusive); `max_points` "
    "downsamples it deterministically, keeping the range's first and last point and each "
    "bucket's lowest- and highest-loss point, so spikes and the minimum stay visible. "
    "`format=columns` returns one array per field (fastest); `format=csv` or "
    "`Accept: text/csv` returns CSV. `format=arrow` (or `Accept: "
    f"{columnar.ARROW}`) returns an Arrow IPC stream and `format=parquet` (`{columnar.PARQUET}`) "
    "a Parquet file: `iteration` int64 and the five series float64, null where JSON has null, "
    "`job_id`, `total` and `downsampled` in the schema's metadata (needs `gradlab[arrow]` on "
    "the server, else 406). Long histories are streamed.",
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
    format: Annotated[service.Format | None, Query()] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    if end is not None and end < start:
        raise InvalidSpec([Problem(("query:end",), "end must not be before start.")])
    fmt = format or _accepted(accept)
    media = MEDIA.get(fmt, "application/json")
    if fmt in columnar.MEDIA:
        columnar.pyarrow()  # a 406 now, before anything is read, if it is missing
    headers = (
        {"Content-Disposition": f'attachment; filename="{job_id}.{SUFFIX[fmt]}"'}
        if fmt in SUFFIX
        else None
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


def _accepted(accept: str | None) -> str:
    """The format an ``Accept`` header asks for (JSON points unless it names another)."""
    for fmt, media in (("csv", "text/csv"), *columnar.MEDIA.items()):
        if accept and media in accept:
            return fmt
    return "points"


def _stream(db: DatabaseDep, job_id: str, sp: Span, fmt: str) -> Iterator[bytes]:
    """A long history, piece by piece, on a connection of its own. The span was fixed
    before answering: chunks written meanwhile are not part of this response. Rendered a
    few pieces ahead of the sending (:func:`~service.web.prefetch.prefetched`)."""

    def pieces() -> Iterator[bytes]:
        with db.engine.connect() as conn:
            yield from service.render(fmt, conn, job_id, sp)

    return prefetched(pieces())
