"""HTTP routes for sweeps."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from service.deps import DatabaseDep, ReadSessionDep, SettingsDep
from service.errors import ErrorBody, json_response
from service.sweeps import schemas, service

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
    body: Annotated[schemas.SweepRequest, Body(openapi_examples=EXAMPLE)],
) -> Response:
    with db.write_session() as session:
        sweep, jobs = service.create(session, body, settings)
        view = service.view(sweep, jobs)
    headers = {"Location": str(request.url_for("get_sweep", sweep_id=sweep.id))}
    return json_response(view, 201, headers)


@router.get(
    "/{sweep_id}",
    response_model=schemas.Sweep,
    responses={404: {"model": ErrorBody, "description": "No sweep with this id."}},
    summary="A sweep's jobs with their final loss and accuracy",
)
def get_sweep(
    session: ReadSessionDep,
    sweep_id: str,
    sort: Annotated[
        SortKey, Query(description="Order of the jobs; '-' for descending.")
    ] = "created",
) -> Response:
    sweep, jobs = service.get(session, sweep_id)
    return json_response(service.view(sweep, jobs, sort))
