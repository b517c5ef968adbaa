"""Shared reference runs: the recipe of a job, run once by a worker for every job that
shares it, and where its loss series first departs from the job's.

A job that carries a recipe it did not train with gradlab's own gradients — an external run
with a recipe (its owner's own loop), later a job with the student's code (``JobSpec.student``)
— is compared with the *reference run* of that recipe: the same spec as a plain worker job.
Recipes are keyed by :func:`recipe_hash`, and ``reference_runs``' primary key on it makes it
one run per distinct recipe, however many jobs share it (a class of 300 submitting the same
exercise costs one run) and however concurrently they are submitted.

Reference runs belong to the ``local`` account (:data:`store.tables.LOCAL_USER`), never to a
student: they hold only the recipe's own curve, which every job linked to them may read
through its link (``GET /v1/jobs/{id}/reference``, the loss plot's overlay), while ``GET
/v1/jobs/{ref}`` itself stays an instructor's or admin's, as for any job not one's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.chunks import series
from store.spec import ExternalRun, JobSpec
from store.tables import Job, MetricChunk, ReferenceRun

DIVERGENCE_RTOL = 1e-6
"""Two losses differ when ``|a − b| > DIVERGENCE_RTOL · max(|a|, |b|)``."""

_NOT_RECIPE = ("name", "tags", "runner", "student")
"""What a job spec holds that is not part of its recipe: two specs that differ only in these
share a reference run."""


def reference_recipe(spec: JobSpec | ExternalRun) -> JobSpec | None:
    """The recipe a job is compared with, as a plain worker job's spec; None for a job that
    has none to compare with (a worker job trains the recipe itself; an external run may
    give none); a student job's is the same spec without ``student``: the solution."""
    if isinstance(spec, ExternalRun) or (spec.runner != "external" and spec.student is None):
        return None
    return spec.model_copy(update={"runner": "worker", "student": None, "name": None, "tags": {}})


def recipe_hash(recipe: JobSpec) -> str:
    """The key of a recipe's reference run: the SHA-256 of its normalised spec (defaults
    filled in, inline data as its content hash) without name, tags, runner or student."""
    normal = {k: v for k, v in recipe.normalised().items() if k not in _NOT_RECIPE}
    return hashlib.sha256(orjson.dumps(normal, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _existing(session: Session, digest: str) -> str | None:
    query = select(ReferenceRun.job_id).where(ReferenceRun.recipe_hash == digest)
    return session.scalars(query).first()


def reference_job(session: Session, digest: str, make: Callable[[], Job]) -> str:
    """The id of the reference run of the recipe ``digest``: the one stored, or the job
    ``make()`` builds, added as it. Of concurrent submissions of a new recipe, one adds its
    run; the others' inserts of the same key fail (on PostgreSQL once the first commits),
    roll back to their savepoint, and read the first's."""
    existing = _existing(session, digest)
    if existing is not None:
        return existing
    job = make()
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
            row = ReferenceRun(recipe_hash=digest, job_id=job.id, created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = _existing(session, digest)
        if existing is None:
            raise
        return existing
    return job.id


def first_divergence(yours: np.ndarray, reference: np.ndarray) -> dict[str, Any] | None:
    """The first iteration both series have where the losses differ by more than
    :data:`DIVERGENCE_RTOL` relative, with both values; None when they never do."""
    n = min(len(yours), len(reference))
    a, b = yours[:n], reference[:n]
    with np.errstate(invalid="ignore"):
        differ = ~(np.abs(a - b) <= DIVERGENCE_RTOL * np.maximum(np.abs(a), np.abs(b)))
    hits = np.flatnonzero(differ)
    if not len(hits):
        return None
    i = int(hits[0])
    return {"iteration": i, "yours": float(a[i]), "reference": float(b[i])}


def loss_series(session: Session, job_id: str) -> np.ndarray:
    """A job's whole loss series, iterations ``0 .. iterations_done − 1``."""
    query = (
        select(MetricChunk.count, MetricChunk.loss)
        .where(MetricChunk.job_id == job_id)
        .order_by(MetricChunk.first_iteration)
    )
    parts = [series(blob, count) for count, blob in session.execute(query)]
    return np.concatenate(parts) if parts else np.empty(0)
