"""``GET /metrics``: Prometheus' text format. Open with GRADLAB_AUTH=off; with ``required``,
an admin's token (Prometheus' ``authorization: {credentials: TOKEN}``): an operator's view
of the whole server, which no student or instructor needs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from service.deps import CallerDep
from service.errors import ErrorBody, Forbidden
from service.telemetry.service import scrape
from store.accounts import Role

router = APIRouter(tags=["operations"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus' text exposition format.",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
    401: {"model": ErrorBody, "description": "GRADLAB_AUTH=required and no valid token."},
    403: {"model": ErrorBody, "description": "The token is not an admin's."},
}


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Requests by route template and status class, jobs by status, queue depth, "
    "claim and pickup latency, flush and attempt durations, summed over the API and its "
    "workers. With GRADLAB_AUTH=required it needs an admin's token.",
    response_class=Response,
    responses=RESPONSES,
)
def metrics(request: Request, caller: CallerDep) -> Response:
    if caller.role is not Role.ADMIN:
        raise Forbidden("GET /metrics needs an admin's token.")
    state = request.app.state
    return Response(scrape(state.request_metrics, state.job_gauges), media_type=CONTENT_TYPE_LATEST)
