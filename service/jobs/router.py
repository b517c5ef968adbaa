"""HTTP routes for jobs: parse, call the service, return the shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from starlette.responses import Response

from service.deps import (
    CallerDep,
    DatabaseDep,
    ReadSessionDep,
    SettingsDep,
    caller_of,
    database_of,
)
from service.errors import ErrorBody, json_response
from service.jobs import external, repository, schemas, service
from service.jobs.examples import SEEDS
from store.spec import AnySpec, ModelKind
from store.status import Status

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No job with this id."}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody,
        "description": "The spec is not valid, or the body is not JSON (not UTF-8, nested too "
        "deeply; its `field` is `body`): `detail` lists each problem with its field path.",
    },
    413: {
        "model": ErrorBody,
        "description": "The body is larger than GRADLAB_MAX_BODY_BYTES (type `body_too_large`).",
    },
}


@router.post(
    "",
    status_code=201,
    response_model=schemas.Job,
    responses={
        200: {"model": schemas.Job, "description": "Replayed: this Idempotency-Key's job."},
        **INVALID,
    },
    summary="Submit a training job",
)
def submit_job(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    spec: Annotated[AnySpec, Body(openapi_examples=SEEDS)],
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Retry-safe submission: the same key returns the same job.",
        ),
    ] = None,
) -> Response:
    with db.write_session() as session:
        job, created = service.submit(session, spec, settings, caller, idempotency_key)
        view = service.job_view(job)
    headers = {"Location": str(request.url_for("get_job", job_id=job.id))}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(view, 201 if created else 200, headers)


@router.get(
    "/examples",
    summary="The seed exercises as ready-to-post specs",
    description="The same examples Swagger UI offers for POST /v1/jobs: name → {summary, value}.",
)
def examples() -> Response:
    return json_response(SEEDS)


@router.get("", response_model=schemas.JobList, summary="List jobs, newest first")
def list_jobs(
    session: ReadSessionDep,
    caller: CallerDep,
    owner: Annotated[
        str | None,
        Query(max_length=64, description="Only this account's jobs (a student sees only theirs)."),
    ] = None,
    status: schemas.Status | None = None,
    model: ModelKind | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[
        str | None,
        Query(max_length=300, description="`key` (has the tag) or `key:value`."),
    ] = None,
    sweep_id: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[
        str | None, Query(max_length=32, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    tag_filter = service.tag_filter(tag)
    jobs = repository.list_jobs(
        session,
        caller,
        owner=owner,
        status=status,
        model=model,
        name=name,
        tag=tag_filter,
        sweep_id=sweep_id,
        before=cursor,
        limit=limit + 1,
    )
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return json_response(
        {
            "jobs": [service.job_view(j) for j in jobs],
            "next_cursor": jobs[-1].id if more and jobs else None,
        }
    )


@router.get("/{job_id}", response_model=schemas.Job, responses=NOT_FOUND, summary="One job")
async def get_job(request: Request, job_id: str) -> Response:
    # On the event loop, without a thread hop: on SQLite one indexed read that never waits
    # on a lock, inline; on PostgreSQL the same read on the async driver. No dependencies
    # to solve (see service.deps).
    view = await service.view_async(database_of(request), job_id, caller_of(request))
    return json_response(view)


@router.post(
    "/{job_id}/cancel",
    response_model=schemas.Job,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "Already finished."}},
    summary="Cancel a job",
    description="A queued job is cancelled at once; a running one stops at its next flush "
    "(within GRADLAB_FLUSH_SECONDS) and keeps what it recorded. A cancelled job is never retried.",
)
def cancel_job(db: DatabaseDep, caller: CallerDep, job_id: str) -> Response:
    with db.write_session() as session:
        return json_response(service.job_view(service.cancel(session, job_id, caller)))


@router.delete(
    "/{job_id}",
    status_code=204,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "Still queued or running."}},
    summary="Delete a finished job and everything it recorded",
)
def delete_job(db: DatabaseDep, caller: CallerDep, job_id: str) -> Response:
    with db.write_session() as session:
        service.delete(session, job_id, caller)
    return Response(status_code=204)


@router.get(
    "/{job_id}/data",
    response_model=schemas.Data,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "Generated data (line, blobs, spiral)."},
    },
    summary="The arrays a job trains on",
    description="Inline data, stored once by its SHA-256, exactly as posted. Generated "
    "datasets are not stored (their seeded options in the spec make them again): 409.",
)
def job_data(session: ReadSessionDep, caller: CallerDep, job_id: str) -> Response:
    return json_response(service.data(session, job_id, caller))


@router.get(
    "/{job_id}/gradient-checks",
    response_model=schemas.Checks,
    responses=NOT_FOUND,
    summary="Gradient checks: analytic gradients against references",
)
def gradient_checks(session: ReadSessionDep, caller: CallerDep, job_id: str) -> Response:
    return json_response({"checks": service.gradient_checks(session, job_id, caller)})


@router.get(
    "/{job_id}/parameters",
    response_model=schemas.Parameters,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "Nothing recorded yet."}},
    summary="The final parameters, or the latest recorded while running",
)
def parameters(session: ReadSessionDep, caller: CallerDep, job_id: str) -> Response:
    return json_response(service.parameters(session, job_id, caller))


NOT_RUNNING_EXTERNAL = "Not an external run, or already finished."


@router.post(
    "/{job_id}/metrics",
    response_model=schemas.Appended,
    responses={
        **NOT_FOUND,
        409: {
            "model": ErrorBody,
            "description": f"{NOT_RUNNING_EXTERNAL} Or (type `point_conflict`) a point differs "
            "from the one stored for its `iteration`; or (type `points_gap`) the batch starts "
            "past the next iteration to store, `iteration`.",
        },
        422: {"model": ErrorBody, "description": "A bad point: `field` names it (points[3].loss)."},
    },
    summary="Append points to an external run",
    description="Each iteration is stored exactly once: re-sending a stored point as it was "
    "is a no-op (safe to retry, from several senders at once); a different value is a 409. "
    "Points are stored without gaps, from iteration 0.",
)
def append_metrics(
    db: DatabaseDep, settings: SettingsDep, caller: CallerDep, job_id: str, batch: schemas.PointsIn
) -> Response:
    with db.write_session() as session:
        return json_response(external.append(session, job_id, batch, caller, settings))


@router.post(
    "/{job_id}/finish",
    response_model=schemas.Job,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": NOT_RUNNING_EXTERNAL}},
    summary="End an external run: succeeded or failed",
)
def finish_job(db: DatabaseDep, caller: CallerDep, job_id: str, body: schemas.FinishIn) -> Response:
    with db.write_session() as session:
        job = external.finish(session, job_id, Status(body.status), caller)
        return json_response(service.job_view(job))


@router.get(
    "/{job_id}/reference",
    response_model=schemas.ReferenceView,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "No reference run."}},
    summary="How the job compares with its recipe's shared reference run",
    description="The reference run's status and the first iteration where the two loss "
    "series differ by more than 1e-6 relative (null: they never do, so far).",
)
def job_reference(session: ReadSessionDep, caller: CallerDep, job_id: str) -> Response:
    return json_response(external.reference(session, job_id, caller))
