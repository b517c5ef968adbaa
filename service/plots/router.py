"""Plot routes: PNG or SVG images of a job's loss, fit and gradient checks, and of several
jobs' losses side by side, for a report or a notebook.

Endpoints are plain ``def``: FastAPI runs them in its threadpool, off the event loop. Each
reads what it draws, ends its transaction, then renders (see ``render``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from service.deps import ReadSessionDep
from service.errors import ErrorBody
from service.plots import fit, render, service

router = APIRouter(tags=["plots"])

Fmt = Literal["png", "svg"]
Log = Annotated[bool, Query(description="Draw the loss on a logarithmic axis.")]
MaxPoints = Annotated[
    int,
    Query(
        ge=3,
        le=100_000,
        description="Draw at most this many points per curve: the first, the last, and each "
        "bucket's lowest and highest loss, so spikes stay visible.",
    ),
]


def _responses(*extra: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        200: {
            "content": {"image/png": {}, "image/svg+xml": {}},
            "description": "The image, as PNG or SVG by the path's suffix.",
        }
    }
    for status, description in extra:
        out[status] = {"model": ErrorBody, "description": description}
    return out


NO_JOB = (404, "No job with this id.")


def _image(content: bytes, fmt: Fmt, name: str) -> Response:
    return Response(
        content=content,
        media_type=render.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'inline; filename="{name}.{fmt}"'},
    )


@router.get(
    "/v1/jobs/{job_id}/plots/loss.{fmt}",
    responses=_responses(NO_JOB),
    summary="Loss curve (and training accuracy) as PNG or SVG",
    description="The loss against iteration; for classifiers the training accuracy on a "
    "second axis. Long runs are drawn from at most `max_points` points that keep each "
    "bucket's lowest and highest loss, so spikes and the minimum are never hidden. A job "
    "without points yet gets an empty chart that says so.",
)
def loss_plot(
    session: ReadSessionDep,
    job_id: str,
    fmt: Fmt,
    log: Log = False,
    max_points: MaxPoints = 2000,
) -> Response:
    job = service.get_job(session, job_id)
    curve, title = service.curve(session, job, max_points), service.title(job)
    session.rollback()
    return _image(render.loss_chart(curve, title, log, fmt), fmt, f"{job_id}-loss")


@router.get(
    "/v1/jobs/{job_id}/plots/fit.{fmt}",
    responses=_responses(NO_JOB, (409, "No fit plot for this data and model, or no parameters.")),
    summary="Decision regions or fitted curve as PNG or SVG",
    description="For a classifier on 2-D data (logistic, softmax, or an mlp with log_loss or "
    "cross_entropy): the predicted class over a grid covering the data, with the training "
    "points coloured by label. For a regression on 1-D data: the points and the fitted line "
    "or curve. Drawn with the job's latest checkpointed parameters, so a running job shows "
    "its progress. 409 for other shapes of data and for a job with no parameters yet.",
)
def fit_plot(session: ReadSessionDep, job_id: str, fmt: Fmt) -> Response:
    job = service.get_job(session, job_id)
    source = fit.load(session, job)
    title = service.title(job, f"after {source.iteration} iterations")
    session.rollback()
    picture = fit.picture(source)
    if isinstance(picture, render.Regions):
        content = render.regions_chart(picture, title, fmt)
    else:
        content = render.line_chart(picture, title, fmt)
    return _image(content, fmt, f"{job_id}-fit")


@router.get(
    "/v1/jobs/{job_id}/plots/gradient-checks.{fmt}",
    responses=_responses(NO_JOB, (409, "The job has no gradient checks yet.")),
    summary="Gradient-check errors over iterations as PNG or SVG",
    description="Per parameter tensor (and per reference, when both numeric and torch ran), "
    "the largest relative error between the analytic gradient and the reference at each "
    "checked iteration, on a log axis, with the pass threshold `rtol` drawn as a line. "
    "409 when no check has been recorded.",
)
def gradient_checks_plot(session: ReadSessionDep, job_id: str, fmt: Fmt) -> Response:
    job = service.get_job(session, job_id)
    checks = service.checks(session, job)
    title = service.title(job, f"gradient checks: {checks.verdict}")
    session.rollback()
    content = render.checks_chart(checks.series, checks.rtol, title, fmt)
    return _image(content, fmt, f"{job_id}-gradient-checks")


@router.get(
    "/v1/plots/compare.{fmt}",
    responses=_responses(
        (404, "An id names no job, or no sweep has this id."),
        (422, "Neither or both of ids and sweep, or too many jobs."),
    ),
    summary="Several jobs' loss curves overlaid as PNG or SVG",
    description=f"Give `ids` (comma-separated, at most {service.MAX_COMPARED}) or `sweep` "
    "(a sweep's id, for all its jobs). Each curve is labelled with its job's name, or its "
    "model and key hyperparameters (learning rate, L2).",
)
def compare_plot(
    session: ReadSessionDep,
    fmt: Fmt,
    ids: Annotated[str | None, Query(description="Job ids, comma-separated.")] = None,
    sweep: Annotated[str | None, Query(description="A sweep's id: compare its jobs.")] = None,
    log: Log = False,
    max_points: MaxPoints = 2000,
) -> Response:
    jobs, title = service.compared_jobs(session, ids, sweep)
    curves = service.compare_curves(session, jobs, max_points)
    session.rollback()
    return _image(render.compare_chart(curves, title, log, fmt), fmt, "compare")
