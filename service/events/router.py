"""``GET /v1/jobs/{id}/events``: Server-Sent Events of a job as it trains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from service.deps import CallerDep, DatabaseDep
from service.errors import ErrorBody
from service.events.response import JobStream
from service.events.service import Cursor, JobEvents
from service.events.streams import Streams
from service.jobs import service as jobs

router = APIRouter(prefix="/v1/jobs", tags=["events"])


@router.get(
    "/{job_id}/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
        404: {"model": ErrorBody, "description": "No job with this id."},
        429: {
            "model": ErrorBody,
            "description": "This client holds GRADLAB_MAX_STREAMS_PER_CLIENT streams already.",
        },
        503: {"model": ErrorBody, "description": "GRADLAB_MAX_STREAMS streams are open."},
    },
    summary="Live events: new points, gradient checks, status, and the end",
    description=(
        "Server-Sent Events. `status` (the job, whenever its status or attempts change), "
        "`metrics` (`{first, last, columns}`: every point recorded since the previous event, "
        "batched), `check` (one gradient check), and a final `end` (the finished job), after "
        "which the stream closes. Every event's id is a cursor: reconnect with "
        "`Last-Event-ID` to resume without gaps or repeats. Streams are capped per client "
        "address (429) and in all (503), both with `Retry-After`; a client that reads nothing "
        "for GRADLAB_STREAM_SEND_TIMEOUT_SECONDS is disconnected."
    ),
)
async def events(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    job_id: str,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    interval: Annotated[
        float, Query(ge=0.02, le=10, description="Seconds between looks at the database.")
    ] = 0.25,
) -> EventSourceResponse:
    await jobs.view_async(db, job_id, caller)  # 404 before a slot is taken
    streams: Streams = request.app.state.streams
    client = request.client.host if request.client else "unknown"
    streams.acquire(client)  # the response gives it back, however it ends
    stream = JobEvents(streams, job_id, caller, Cursor.parse(last_event_id), interval)
    return JobStream(stream, streams, client, job_id)
