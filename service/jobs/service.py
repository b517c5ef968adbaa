"""What the jobs API does, between the thin router and the repository."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.datasets import service as datasets_service
from service.errors import (
    Conflict,
    InvalidSpec,
    NotApplicable,
    NotFound,
    Problem,
    SandboxUnavailable,
)
from service.jobs import repository, schemas
from service.jobs.quota import check_quota
from service.jobs.validation import check_spec
from store import lifecycle, queue, references
from store.accounts import Caller
from store.codec import unpack_state
from store.datasets import is_reference
from store.db import Database
from store.sandboxing import sandbox_mode
from store.settings import Settings
from store.spec import ExternalRun, InlineData, JobSpec, TagKey, TagValue
from store.status import Status
from store.tables import LOCAL_USER as LOCAL
from store.tables import Job, new_id


def utcnow() -> datetime:
    return datetime.now(UTC)


def job_view(job: Job | SimpleNamespace) -> dict[str, Any]:
    """The job as the API shows it (``schemas.Job``), from an ORM object or the columns of
    :func:`repository.job_row`."""
    return schemas.Job.view(job)


_TAG_KEY: TypeAdapter[str] = TypeAdapter(TagKey)
_TAG_VALUE: TypeAdapter[str] = TypeAdapter(TagValue)


def tag_filter(tag: str | None) -> tuple[str, str | None] | None:
    """``key`` or ``key:value`` of ``GET /v1/jobs?tag=``, held to the spec's rules for tags:
    what no job's tag can be is a 422 naming ``tag``, never a JSON path SQL cannot read."""
    if tag is None:
        return None
    key, sep, value = tag.partition(":")
    for part, adapter, text in (("key", _TAG_KEY, key), ("value", _TAG_VALUE, value)):
        try:
            adapter.validate_python(text)
        except ValidationError as exc:
            message = f"the tag's {part}: {exc.errors()[0]['msg']}"
            raise InvalidSpec([Problem(("query:tag",), message)]) from None
    return key, value if sep else None


def request_hash(spec: JobSpec | ExternalRun) -> str:
    """The hash an Idempotency-Key is held to: of the normalised spec, whose inline data is
    its content hash (so the same arrays, however written, are the same request)."""
    return hashlib.sha256(orjson.dumps(spec.normalised(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def new_job(
    session: Session,
    spec: JobSpec | ExternalRun,
    settings: Settings,
    owner: str,
    sweep_id: str | None = None,
) -> Job:
    """A new job of ``owner``'s for a spec, after the checks that need several fields at
    once; its inline arrays stored once by content (``store.datasets``), its spec keeping
    their hash. Queued for a worker, or running from the start for an external run; linked
    to its recipe's shared reference run when it has one (``store.references``)."""
    if isinstance(spec, ExternalRun):
        return lifecycle.external(
            id=new_id(),
            owner=owner,
            name=spec.name,
            tags=dict(spec.tags),
            model_kind="",  # no recipe: no model
            spec=spec.normalised(),
            iterations=0,
            created_at=utcnow(),
            sweep_id=sweep_id,
        )
    check_spec(spec, settings)
    if spec.student is not None:
        mode = sandbox_mode(settings)
        if mode.kind is None:
            raise SandboxUnavailable(f"This server runs no student code: {mode.reason}.")
    normalised = spec.normalised()
    if isinstance(spec.data, InlineData):
        repository.put_dataset(session, spec.data)
    columns: dict[str, Any] = dict(
        id=new_id(),
        owner=owner,
        name=spec.name,
        tags=dict(spec.tags),
        model_kind=spec.model.kind,
        spec=normalised,
        iterations=spec.iterations,
        created_at=utcnow(),
        sweep_id=sweep_id,
    )
    recipe = references.reference_recipe(spec)
    if recipe is not None:
        columns["reference_job_id"] = reference_run(session, recipe, settings)
    if spec.runner == lifecycle.EXTERNAL:
        return lifecycle.external(**columns)
    return lifecycle.queued(**columns)


def reference_run(session: Session, recipe: JobSpec, settings: Settings) -> str:
    """The id of the recipe's shared reference run, queued now (for the ``local`` account)
    when it is the first job of that recipe; workers are woken when the transaction commits."""

    def make() -> Job:
        job = new_job(session, recipe.model_copy(update={"name": "reference"}), settings, LOCAL)
        queue.notify(session)
        return job

    return references.reference_job(session, references.recipe_hash(recipe), make)


def submit(
    session: Session,
    spec: JobSpec | ExternalRun,
    settings: Settings,
    caller: Caller,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Store a queued job of ``caller``'s (the quota applies to students); ``(job, created)``.
    A key the caller used before returns that key's job (keys are each owner's own), counting
    nothing against the quota."""
    owner, role = caller.name, caller.role
    spec = datasets_service.resolve(session, spec, caller)  # an upload's arrays, by its id
    job = new_job(session, spec, settings, owner)
    if idempotency_key is None:
        check_quota(session, owner, role, 1, settings)
        repository.add_job(session, job)
        queue.notify(session)
        return job, True

    digest = request_hash(spec)
    existing = repository.get_by_idempotency_key(session, owner, idempotency_key)
    if existing is None:
        check_quota(session, owner, role, 1, settings)
        job.idempotency_key, job.request_hash = idempotency_key, digest
        try:
            with session.begin_nested():
                repository.add_job(session, job)
        except IntegrityError:  # another request with this key committed meanwhile
            existing = repository.get_by_idempotency_key(session, owner, idempotency_key)
            if existing is None:
                raise
        else:
            queue.notify(session)
            return job, True
    if existing.request_hash != digest:
        raise InvalidSpec(
            [
                Problem(
                    ("header:Idempotency-Key",),
                    "this Idempotency-Key was already used with a different job spec; "
                    "use a new key for a new job.",
                    "idempotency_key_reused",
                )
            ]
        )
    return existing, False


def no_job(job_id: str) -> NotFound:
    """The one answer for a job that does not exist or that the caller may not see."""
    return NotFound(f"There is no job {job_id!r}.")


async def view_async(db: Database, job_id: str, caller: Caller) -> dict[str, Any]:
    """The job's view, straight from one indexed read, on the event loop."""
    row = await repository.job_row(db, job_id, caller)
    if row is None:
        raise no_job(job_id)
    return job_view(row)


def get(session: Session, job_id: str, caller: Caller) -> Job:
    """The job, or NotFound when there is none ``caller`` may see."""
    job = repository.get_job(session, job_id, caller)
    if job is None:
        raise no_job(job_id)
    return job


def cancel(session: Session, job_id: str, caller: Caller) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next flush."""
    job = get(session, job_id, caller)
    if job.status in (Status.SUCCEEDED, Status.FAILED):
        raise Conflict(f"Job {job_id} already {job.status}; there is nothing to cancel.")
    if job.status == Status.QUEUED and not lifecycle.cancel_queued(
        session, job_id, job.owner, job.attempts
    ):
        session.refresh(job)  # a worker claimed it meanwhile (PostgreSQL's read committed)
    if job.runner == lifecycle.EXTERNAL:  # no worker to ask: it ends now
        lifecycle.end_external(session, job_id, Status.CANCELLED)
    elif job.status == Status.RUNNING:
        lifecycle.request_cancel(session, job_id)
    session.refresh(job)
    return job


def delete(session: Session, job_id: str, caller: Caller) -> None:
    job = get(session, job_id, caller)
    if not lifecycle.delete_terminal(session, job_id):
        raise Conflict(
            f"Job {job_id} is {job.status}; cancel it and wait until it stops before deleting it."
        )


def data(session: Session, job_id: str, caller: Caller) -> dict[str, Any]:
    """The arrays a job trains on, ``{"X": (m, n), "y": (m,)}``. Generated datasets (line,
    blobs, spiral) are not stored, only their seeded options: 409 saying how to make them."""
    job = get(session, job_id, caller)
    spec_data = job.spec.get("data")
    if spec_data is None:
        raise NotApplicable(f"Job {job_id} is an external run without a recipe: it has no data.")
    if not is_reference(spec_data):
        raise NotApplicable(
            f"Job {job_id} trains on the generated {spec_data['kind']} dataset, which is not "
            "stored: its spec's data options (seeded) make it again, e.g. with "
            "engine.make_dataset in Python."
        )
    arrays = repository.dataset(session, spec_data["sha256"])
    if arrays is None:  # the row is only ever added with the job: never expected
        raise NotFound(f"Job {job_id}'s dataset {spec_data['sha256']} is not stored.")
    X, y = arrays
    return {"X": X, "y": y}


def gradient_checks(session: Session, job_id: str, caller: Caller) -> list[dict[str, Any]]:
    get(session, job_id, caller)
    return [row.result for row in repository.gradient_checks(session, job_id)]


def parameters(session: Session, job_id: str, caller: Caller) -> dict[str, Any]:
    job = get(session, job_id, caller)
    row = repository.checkpoint(session, job_id)
    if row is None:
        raise NotApplicable(f"Job {job_id} is {job.status} and has recorded no parameters yet.")
    state = unpack_state(row.state)
    params = state["params"]
    return {
        "iteration": state["iteration"],
        "parameters": {name: a.tolist() for name, a in params.items()},
        "shapes": {name: list(a.shape) for name, a in params.items()},
    }
