"""``POST /v1/gradient-checks``: a student's own gradients, given as numbers, checked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from starlette.responses import Response

from service.deps import SettingsDep
from service.errors import json_response
from service.gradchecks import schemas, service
from service.gradchecks.examples import EXAMPLES
from service.jobs.router import INVALID

router = APIRouter(prefix="/v1/gradient-checks", tags=["gradient checks"])


@router.post(
    "",
    response_model=schemas.GradientCheckAnswer,
    responses=INVALID,
    summary="Check your own gradients, given as numbers",
    description="The exercise as a job spec says it (`model`, `loss`, `l2`, `data`), the "
    "parameters and your gradients at them: per tensor the errors against the engine's "
    "analytic gradient, a verdict and a diagnosis of the slip; your loss against the "
    "reference's when `loss_value` is given; and a Taylor test of your gradients. Computed "
    "at once; nothing is stored. A tensor of the wrong shape is a verdict; a missing or "
    "extra tensor, or a non-numeric array, is a 422 naming it.",
)
def check_gradients(
    settings: SettingsDep,
    body: Annotated[schemas.GradientCheckRequest, Body(openapi_examples=EXAMPLES)],
) -> Response:
    # A plain def: FastAPI runs it in its threadpool, so the NumPy work never blocks the
    # event loop (and the GIL is released inside NumPy's kernels).
    return json_response(service.check(body, settings))
