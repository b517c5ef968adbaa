"""HTTP routes for sweeps."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from service.deps import CallerDep, DatabaseDep, ReadSessionDep, SettingsDep
from service.errors import ErrorBody, json_response
from service.sweeps import repository, schemas, service

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])

SortKey = Literal[
    "created", "-created", "final_loss", "-final_loss", "final_accuracy", "-final_accuracy",
    "best_loss", "-best_loss",
]  # fmt: skip

EXAMPLE = {
    "learning_rates": {
        "summary": "The CS231n softmax classifier: learning rate × L2",
        "value": {
            "name": "softmax-lr-l2",
            "base": {
                "model": {"kind": "softmax_regression"},
                "data": {"kind": "spiral"},
                "optimizer": {"kind": "gd", "learning_rate": 1.0},
                "iterations": 200,
            },
            "grid": {"optimizer.learning_rate": [0.01, 0.1, 1.0], "l2": [0, 0.001]},
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=schemas.Sweep,
    responses={
        422: {
            "model": ErrorBody,
            "description": "Invalid base, grid, or too many jobs, or the body is not JSON "
            "(not UTF-8, nested too deeply; its `field` is `body`).",
        },
        413: {
            "model": ErrorBody,
            "description": "The body is larger than GRADLAB_MAX_BODY_BYTES "
            "(type `body_too_large`).",
        },
    },
    summary="Start a sweep: one job per combination of the grid",
)
def create_sweep(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    body: Annotated[schemas.SweepRequest, Body(openapi_examples=EXAMPLE)],
) -> Response:
    with db.write_session() as session:
        sweep, jobs = service.create(session, body, settings, caller)
        view = service.view(sweep, jobs)
    headers = {"Location": str(request.url_for("get_sweep", sweep_id=sweep.id))}
    return json_response(view, 201, headers)


@router.get("", response_model=schemas.SweepList, summary="List sweeps, newest first")
def list_sweeps(
    session: ReadSessionDep,
    caller: CallerDep,
    owner: Annotated[
        str | None,
        Query(
            max_length=64, description="Only this account's sweeps (a student sees only theirs)."
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=32, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    found = repository.list_sweeps(session, caller, owner=owner, before=cursor, limit=limit + 1)
    page = found[:limit]
    more = len(found) > limit
    return json_response(
        {
            "sweeps": [service.summary(s) for s in page],
            "next_cursor": page[-1].id if more and page else None,
        }
    )


@router.get(
    "/{sweep_id}",
    response_model=schemas.Sweep,
    responses={404: {"model": ErrorBody, "description": "No sweep with this id."}},
    summary="A sweep's jobs with their final loss and accuracy",
)
def get_sweep(
    session: ReadSessionDep,
    caller: CallerDep,
    sweep_id: str,
    sort: Annotated[
        SortKey, Query(description="Order of the jobs; '-' for descending.")
    ] = "created",
) -> Response:
    sweep, jobs = service.get(session, sweep_id, caller)
    return json_response(service.view(sweep, jobs, sort))
