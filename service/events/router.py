"""``GET /v1/jobs/{id}/events``: Server-Sent Events of a job as it trains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse

from service.deps import DatabaseDep, ReadSessionDep
from service.errors import ErrorBody
from service.events.service import Cursor, JobEvents
from service.jobs import service as jobs

router = APIRouter(prefix="/v1/jobs", tags=["events"])


@router.get(
    "/{job_id}/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream."},
        404: {"model": ErrorBody, "description": "No job with this id."},
    },
    summary="Live events: new points, gradient checks, status, and the end",
    description=(
        "Server-Sent Events. `status` (the job, whenever its status or attempts change), "
        "`metrics` (`{first, last, columns}`: every point recorded since the previous event, "
        "batched), `check` (one gradient check), and a final `end` (the finished job), after "
        "which the stream closes. Every event's id is a cursor: reconnect with "
        "`Last-Event-ID` to resume without gaps or repeats."
    ),
)
def events(
    session: ReadSessionDep,
    db: DatabaseDep,
    job_id: str,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    interval: Annotated[
        float, Query(ge=0.02, le=10, description="Seconds between looks at the database.")
    ] = 0.25,
) -> EventSourceResponse:
    jobs.get(session, job_id)
    stream = JobEvents(db, job_id, Cursor.parse(last_event_id), interval)
    return EventSourceResponse(stream, ping=15, send_timeout=30)
