"""External runs and reference links: appending a run's points, finishing it, and how a
job compares with its recipe's shared reference run (``store.external``,
``store.references``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.errors import Conflict, InvalidSpec, NotApplicable, Problem
from service.jobs import schemas
from service.jobs.service import get
from store import external, lifecycle, references
from store.accounts import Caller
from store.chunks import Col
from store.settings import Settings
from store.status import Status
from store.tables import Job


class PointConflict(Conflict):
    """A point differs from the one stored for its iteration (``iteration`` in the body)."""

    type = "point_conflict"

    def __init__(self, message: str, iteration: int) -> None:
        super().__init__(message)
        self.iteration = iteration

    def body(self) -> dict[str, Any]:
        return {**super().body(), "iteration": self.iteration}


class PointGap(PointConflict):
    type = "points_gap"


def _consecutive(points: list[schemas.PointIn], settings: Settings) -> None:
    """A 422 naming ``points`` for a batch too long, or ``points[i].iteration`` for one not
    following on from the point before it."""
    limit = settings.max_points_per_batch
    if len(points) > limit:
        why = (
            f"holds {len(points)} points; a batch may hold at most {limit} "
            "(GRADLAB_MAX_POINTS_PER_BATCH)."
        )
        raise InvalidSpec([Problem(("points",), why)])
    first = points[0]["iteration"]
    for i, point in enumerate(points):
        if point["iteration"] != first + i:
            why = (
                f"is {point['iteration']}, but the batch's points must be consecutive "
                f"iterations in order: expected {first + i}."
            )
            raise InvalidSpec([Problem(("points", i, "iteration"), why)])


def running_external(session: Session, job_id: str, caller: Caller) -> Job:
    """The caller's running external run, its row held for the transaction; 404 when the
    caller may not see it, 409 when it is not external or no longer running."""
    job = get(session, job_id, caller)
    lifecycle.lock_external(session, job)
    if job.runner != lifecycle.EXTERNAL:
        raise Conflict(
            f"Job {job_id} is trained by a worker, which records its points itself; only an "
            'external run ("runner": "external") takes points.'
        )
    if not lifecycle.appendable(job):
        raise Conflict(f"Job {job_id} is {job.status}: a finished run takes no more points.")
    return job


def append(
    session: Session, job_id: str, batch: schemas.PointsIn, caller: Caller, settings: Settings
) -> dict[str, Any]:
    """Append a batch to the caller's external run: each iteration exactly once."""
    _consecutive(batch.points, settings)
    job = running_external(session, job_id, caller)
    block = external.block_of(batch.points)
    try:
        done = external.append(session, job, block)
    except external.PointConflict as exc:
        raise PointConflict(str(exc), exc.iteration) from None
    except external.Gap as exc:
        raise PointGap(str(exc), exc.expected) from None
    return {
        "job_id": job_id,
        "stored": done.stored,
        "unchanged": done.unchanged,
        "iterations_done": done.iterations_done,
        "first_iteration": int(block[0, Col.ITERATION]),
    }


def finish(session: Session, job_id: str, status: Status, caller: Caller) -> Job:
    """End the caller's external run as ``status`` (succeeded or failed)."""
    job = running_external(session, job_id, caller)
    lifecycle.end_external(session, job_id, status)
    session.refresh(job)
    return job


def reference(session: Session, job_id: str, caller: Caller) -> dict[str, Any]:
    """How the caller's job compares with its recipe's reference run."""
    job = get(session, job_id, caller)
    if job.reference_job_id is None:
        raise NotApplicable(
            f"Job {job_id} has no reference run: only an external run with a recipe (or a "
            "job with student code) is compared with one."
        )
    ref = session.get(Job, job.reference_job_id)
    yours = references.loss_series(session, job_id)
    theirs = references.loss_series(session, ref.id) if ref is not None else yours[:0]
    compared = min(len(yours), len(theirs))
    return {
        "job_id": job.reference_job_id,
        "status": None if ref is None else ref.status,
        "iterations_done": 0 if ref is None else ref.iterations_done,
        "compared": compared,
        "rtol": references.DIVERGENCE_RTOL,
        "first_divergence": references.first_divergence(yours, theirs),
    }
