"""Sweeps: a grid of overrides on a base spec, expanded into one job per combination."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.datasets import service as datasets_service
from service.errors import InvalidSpec, NotFound, Problem, user_path
from service.jobs import repository as jobs_repo
from service.jobs import service as jobs_service
from service.jobs.quota import check_quota
from service.jobs.schemas import data_summary, iso
from service.jobs.validation import check_inline
from service.sweeps import repository
from service.sweeps.schemas import SweepRequest
from store.accounts import Caller
from store.queue import notify
from store.settings import Settings
from store.spec import InlineData, JobSpec
from store.tables import Job, Sweep


def get_path(spec: dict[str, Any], path: str) -> Any:
    node: Any = spec
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def set_path(spec: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            raise KeyError(key)
        node = child
    node[leaf] = value


def _bad_combination(
    overrides: dict[str, Any], loc: tuple[str | int, ...], why: str
) -> InvalidSpec:
    """The grid entry whose value put the spec wrong at ``loc``, or else the base's field
    there (the base and this combination do not fit), and why."""
    where = ".".join(str(p) for p in loc)
    culprit = next(
        (k for k in overrides if f"{where}.".startswith(f"{k}.") or k.startswith(f"{where}.")),
        None,
    )
    at = f"{where}: " if where else ""
    message = f"the combination {overrides} is not a valid spec: {at}{why}"
    field = ("grid", culprit) if culprit is not None else ("base", *loc)
    return InvalidSpec([Problem(field, message)])


def expand(request: SweepRequest, settings: Settings) -> list[tuple[dict[str, Any], JobSpec]]:
    """Every combination of the grid as ``(overrides, spec)``."""
    size = 1
    for key, values in request.grid.items():
        if not values:
            raise InvalidSpec([Problem(("grid", key), "give at least one value to try.")])
        size *= len(values)
    if size > settings.max_sweep_jobs:
        raise InvalidSpec(
            [
                Problem(
                    ("grid",),
                    f"this grid makes {size} jobs, above this server's limit of "
                    f"{settings.max_sweep_jobs} (GRADLAB_MAX_SWEEP_JOBS).",
                )
            ]
        )
    # Inline arrays are not copied per combination: every job gets the base's validated
    # data (so its hash is computed once), or, when the grid changes a data field, a new
    # dict holding the same arrays.
    inline = request.base.data if isinstance(request.base.data, InlineData) else None
    exclude = {"data"} if inline is not None else None
    base = request.base.model_dump(mode="json", exclude_unset=True, exclude=exclude)
    touches_data = any(key == "data" or key.startswith("data.") for key in request.grid)
    combos: list[tuple[dict[str, Any], JobSpec]] = []
    for choice in itertools.product(*request.grid.values()):
        overrides = dict(zip(request.grid, choice, strict=True))
        spec = copy.deepcopy(base)
        if inline is not None:
            shared = {"kind": "inline", "X": inline.X, "y": inline.y}
            spec["data"] = shared if touches_data else inline
        for key, value in overrides.items():
            try:
                set_path(spec, key, value)
            except KeyError:
                raise InvalidSpec(
                    [Problem(("grid", key), f"{key!r} is not a field path of the base spec.")]
                ) from None
        try:
            parsed = JobSpec.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = tuple(user_path(first["loc"]))
            raise _bad_combination(overrides, loc, first["msg"]) from None
        combos.append((overrides, parsed))
    return combos


def create(
    session: Session, request: SweepRequest, settings: Settings, caller: Caller
) -> tuple[Sweep, list[Job]]:
    """Store the sweep and one queued job of ``caller``'s per combination, or nothing: a grid
    that does not fit, or that would take a student past their quota, stores no row."""
    base = datasets_service.resolve(session, request.base, caller)  # an upload's arrays
    request = request.model_copy(update={"base": base})
    base_data = request.base.data  # an upload's arrays by now
    if isinstance(base_data, InlineData) and (problems := check_inline(base_data)):
        # The sweep keeps its base's data by hash and shape, which empty arrays do not have.
        raise InvalidSpec([Problem(("base", *p.loc), p.msg) for p in problems])
    combos = expand(request, settings)
    owner = caller.name
    check_quota(session, owner, caller.role, len(combos), settings)
    sweep = Sweep(
        owner=owner,
        name=request.name,
        base=request.base.normalised(),
        grid=request.grid,
        created_at=jobs_service.utcnow(),
    )
    session.add(sweep)
    session.flush()
    jobs = []
    for overrides, spec in combos:
        label = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in overrides.items())
        tags = {**spec.tags, **{k: str(v) for k, v in overrides.items()}}
        named = spec.model_copy(
            update={"name": f"{request.name or 'sweep'}[{label}]"[:200], "tags": tags}
        )
        try:
            job = jobs_service.new_job(session, named, settings, owner, sweep_id=sweep.id)
        except InvalidSpec as exc:
            raise _bad_combination(overrides, exc.problems[0].loc, exc.problems[0].msg) from None
        jobs_repo.add_job(session, job)
        jobs.append(job)
    notify(session)
    return sweep, jobs


def view(sweep: Sweep, jobs: Sequence[Any], sort: str = "created") -> dict[str, Any]:
    """The sweep and its jobs, from ORM jobs or rows of :data:`_SWEEP_JOB_COLUMNS`."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    rows: list[dict[str, Any]] = [
        {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "overrides": {path: get_path(job.spec, path) for path in sweep.grid},
            "final_loss": job.final_loss,
            "final_accuracy": job.final_accuracy,
            "best_loss": job.best_loss,
            "iterations_done": job.iterations_done,
        }
        for job in jobs
    ]
    if key != "created":
        present = [r for r in rows if r[key] is not None]
        missing = [r for r in rows if r[key] is None]
        rows = sorted(present, key=lambda r: r[key], reverse=descending) + missing
    elif descending:
        rows.reverse()
    first = jobs[0].id if jobs else sweep.id
    data = data_summary(first, sweep.base["data"])
    return {**summary(sweep), "base": sweep.base, "data": data, "jobs": rows}


def summary(sweep: Sweep) -> dict[str, Any]:
    """A sweep as ``GET /v1/sweeps`` lists it."""
    return {
        "id": sweep.id,
        "name": sweep.name,
        "owner": sweep.owner,
        "grid": sweep.grid,
        "created_at": iso(sweep.created_at),
    }


# What a sweep's view shows of each job (``spec`` for the overrides), and nothing more.
_SWEEP_JOB_COLUMNS = (
    Job.id,
    Job.name,
    Job.status,
    Job.spec,
    Job.final_loss,
    Job.final_accuracy,
    Job.best_loss,
    Job.iterations_done,
)


def get(session: Session, sweep_id: str, caller: Caller) -> tuple[Sweep, list[Any]]:
    """The sweep and its jobs, oldest first, as rows of :data:`_SWEEP_JOB_COLUMNS` (which
    the plots read too): only the columns the view needs, and no more rows than the grid
    made (its jobs are only ever created with it, for its owner). A sweep ``caller`` may
    not see is NotFound, as one that does not exist."""
    sweep = repository.get_sweep(session, sweep_id, caller)
    if sweep is None:
        raise NotFound(f"There is no sweep {sweep_id!r}.")
    size = math.prod(len(values) for values in sweep.grid.values())
    query = select(*_SWEEP_JOB_COLUMNS).where(Job.sweep_id == sweep_id).order_by(Job.id).limit(size)
    return sweep, list(session.execute(query).all())
