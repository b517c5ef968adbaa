"""Plot routes: PNG or SVG images of a job's loss, fit and gradient checks, and of several
jobs' losses side by side, for a report or a notebook.

Every endpoint has one shape: take a renderer slot (503 when none is free, see
``renderers``), read what it draws in the threadpool and end the transaction, then have a
renderer process draw it while the request waits on the event loop. An endpoint's docstring
is its description.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from service.deps import CallerDep
from service.errors import ErrorBody, InvalidSpec
from service.plots import fit, render, service, trajectory
from service.plots.renderers import Renderers
from store.accounts import Caller
from store.db import Database
from store.tables import Job

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
    for status, description in (*extra, BUSY):
        out[status] = {"model": ErrorBody, "description": description}
    return out


NO_JOB = (404, "No job with this id.")
BUSY = (503, "Every renderer is busy and the plot queue is full; see `Retry-After`.")

# What an endpoint reads, in a read session: the function that draws and its arguments.
Drawing = tuple[Callable[..., bytes], tuple[Any, ...]]


def _read(db: Database, read: Callable[[Session], Drawing]) -> Drawing:
    with db.read_session() as session:
        return read(session)


async def _plot(
    request: Request, read: Callable[[Session], Drawing], fmt: Fmt, name: str
) -> Response:
    """Read, then draw in a renderer, then answer with the image as ``name.fmt``."""
    renderers: Renderers = request.app.state.renderers
    async with renderers.slot():
        draw, args = await run_in_threadpool(_read, request.app.state.db, read)
        content = await renderers.render(draw, *args)
    return Response(
        content=content,
        media_type=render.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'inline; filename="{name}.{fmt}"'},
    )


async def _job_plot(
    request: Request,
    caller: Caller,
    job_id: str,
    what: str,
    fmt: Fmt,
    read: Callable[[Session, Job], Drawing],
) -> Response:
    """A plot of one job, ``{job_id}-{what}.{fmt}``: ``read`` gets the job, or 404 when
    there is none the caller may see."""

    def read_job(session: Session) -> Drawing:
        return read(session, service.get_job(session, job_id, caller))

    return await _plot(request, read_job, fmt, f"{job_id}-{what}")


@router.get(
    "/v1/jobs/{job_id}/plots/loss.{fmt}",
    responses=_responses(NO_JOB),
    summary="Loss curve (and training accuracy) as PNG or SVG",
)
async def loss_plot(
    request: Request,
    caller: CallerDep,
    job_id: str,
    fmt: Fmt,
    log: Log = False,
    max_points: MaxPoints = 2000,
) -> Response:
    """The loss against iteration; for classifiers the training accuracy on a second axis.
    A job linked to its recipe's reference run (an external run with a recipe) overlays
    "yours" and "reference" instead.
    Long runs are drawn from at most `max_points` points that keep each bucket's lowest and
    highest loss, so spikes and the minimum are never hidden. A job without points yet gets
    an empty chart that says so."""

    def read(session: Session, job: Job) -> Drawing:
        overlay = service.reference_curves(session, job, max_points)
        if overlay is not None:
            return render.compare_chart, (overlay, service.title(job), log, fmt)
        curve = service.curve(session, job, max_points)
        return render.loss_chart, (curve, service.title(job), log, fmt)

    return await _job_plot(request, caller, job_id, "loss", fmt, read)


@router.get(
    "/v1/jobs/{job_id}/plots/fit.{fmt}",
    responses=_responses(NO_JOB, (409, "No fit plot for this data and model, or no parameters.")),
    summary="Decision regions or fitted curve as PNG or SVG",
)
async def fit_plot(request: Request, caller: CallerDep, job_id: str, fmt: Fmt) -> Response:
    """For a classifier on 2-D data (logistic, softmax, or an mlp with log_loss or
    cross_entropy): the predicted class over a grid covering the data, with the training
    points coloured by label. For a regression on 1-D data: the points and the fitted line
    or curve. Drawn with the job's latest checkpointed parameters, so a running job shows
    its progress. 409 for other shapes of data and for a job with no parameters yet."""

    def read(session: Session, job: Job) -> Drawing:
        source = fit.load(session, job)
        return fit.chart, (source, service.title(job, f"after {source.iteration} iterations"), fmt)

    return await _job_plot(request, caller, job_id, "fit", fmt, read)


@router.get(
    "/v1/jobs/{job_id}/plots/trajectory.{fmt}",
    responses=_responses(
        NO_JOB,
        (409, "The job has recorded no parameters yet."),
        (422, "A compared job differs in its data or model, or too many."),
    ),
    summary="The loss surface as contours, with the parameters' path across it",
)
async def trajectory_plot(
    request: Request,
    caller: CallerDep,
    job_id: str,
    fmt: Fmt,
    compare: Annotated[
        str | None,
        Query(
            description="More job ids, comma-separated, on the same data and model: their "
            "paths overlaid on this job's surface."
        ),
    ] = None,
) -> Response:
    """For a two-parameter problem (one-feature linear or logistic regression) the surface
    over `w` and `b` and the path of every iteration's parameters, exactly. For larger
    models the plane through the initial parameters spanned by the direction to the final
    ones and a seeded random direction orthogonal to it, normalised per layer (Li et al.,
    2018), with the kept parameters (every k-th iteration, bounded) projected onto it. ● is
    the start, ★ the last point. 409 for a job with no parameters yet."""

    def read(session: Session, job: Job) -> Drawing:
        others: list[Job] = []
        if compare is not None:
            try:
                others = service.compared_jobs(session, compare, None, caller)[0]
            except InvalidSpec as exc:  # said of `ids`, compare.png's name for the list
                problems = [p._replace(loc=("query:compare",)) for p in exc.problems]
                raise InvalidSpec(problems) from None
        land = trajectory.load(session, job, [o for o in others if o.id != job.id])
        return trajectory.chart, (land, fmt)

    return await _job_plot(request, caller, job_id, "trajectory", fmt, read)


@router.get(
    "/v1/jobs/{job_id}/plots/gradient-checks.{fmt}",
    responses=_responses(NO_JOB, (409, "The job has no gradient checks yet.")),
    summary="Gradient-check errors over iterations as PNG or SVG",
)
async def gradient_checks_plot(
    request: Request, caller: CallerDep, job_id: str, fmt: Fmt
) -> Response:
    """Per parameter tensor (and per reference, when both numeric and torch ran), the
    largest relative error between the analytic gradient and the reference at each checked
    iteration, on a log axis, with the pass threshold `rtol` drawn as a line. 409 when no
    check has been recorded."""

    def read(session: Session, job: Job) -> Drawing:
        checks = service.checks(session, job)
        title = service.title(job, f"gradient checks: {checks.verdict}")
        return render.checks_chart, (checks.series, checks.rtol, title, fmt)

    return await _job_plot(request, caller, job_id, "gradient-checks", fmt, read)


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
async def compare_plot(
    request: Request,
    caller: CallerDep,
    fmt: Fmt,
    ids: Annotated[str | None, Query(description="Job ids, comma-separated.")] = None,
    sweep: Annotated[str | None, Query(description="A sweep's id: compare its jobs.")] = None,
    log: Log = False,
    max_points: MaxPoints = 2000,
) -> Response:
    def read(session: Session) -> Drawing:
        jobs, title = service.compared_jobs(session, ids, sweep, caller)
        curves = service.compare_curves(session, jobs, max_points)
        return render.compare_chart, (curves, title, log, fmt)

    return await _plot(request, read, fmt, "compare")
