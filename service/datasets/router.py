"""HTTP routes for uploaded datasets: parse, call the service, return the shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from starlette.responses import Response

from service.datasets import schemas, service
from service.deps import CallerDep, DatabaseDep, ReadSessionDep, SettingsDep
from service.errors import ErrorBody, json_response
from service.jobs.router import INVALID

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No dataset with this id that you may see."}
}


@router.post(
    "",
    status_code=201,
    response_model=schemas.DatasetView,
    responses={
        200: {"model": schemas.DatasetView, "description": "You uploaded this content before."},
        403: {"model": ErrorBody, "description": "`shared` from a student."},
        **INVALID,
    },
    summary="Upload a dataset (CSV, .npy or .npz)",
    description="A multipart upload of `file`: CSV with a header row naming every column "
    "(`target` names the target's, the last by default), a `.npy` table (`target`: a column "
    "index, the last by default) or a `.npz` with arrays `X` and `y`. Stored once by the "
    "SHA-256 of its arrays, which is its `id`; jobs and sweeps name it as "
    '`{"kind": "dataset", "id": …}`. A malformed file is a 422 saying which line or array.',
)
def upload_dataset(
    db: DatabaseDep,
    settings: SettingsDep,
    caller: CallerDep,
    file: Annotated[UploadFile, File(description="CSV, .npy or .npz.")],
    target: Annotated[
        str | None, Form(max_length=200, description="The target column (name or index).")
    ] = None,
    name: Annotated[str | None, Form(max_length=200, description="A name to know it by.")] = None,
    shared: Annotated[
        bool, Form(description="Instructors: make it visible to every account.")
    ] = False,
) -> Response:
    with db.write_session() as session:
        view, created = service.upload(
            session, file.file, caller, settings, target=target, name=name, shared=shared
        )
    return json_response(view, 201 if created else 200)


@router.get("", response_model=schemas.DatasetList, summary="List the datasets you may use")
def list_datasets(
    session: ReadSessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    return json_response({"datasets": service.list_datasets(session, caller, limit)})


@router.get(
    "/{dataset_id}",
    response_model=schemas.DatasetView,
    responses=NOT_FOUND,
    summary="Show a dataset",
)
def get_dataset(dataset_id: str, session: ReadSessionDep, caller: CallerDep) -> Response:
    return json_response(service.get(session, dataset_id, caller))


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={
        **NOT_FOUND,
        403: {"model": ErrorBody, "description": "Another account's shared dataset."},
        409: {"model": ErrorBody, "description": "A job names it as its data."},
    },
    summary="Delete a dataset no job uses",
)
def delete_dataset(dataset_id: str, db: DatabaseDep, caller: CallerDep) -> Response:
    with db.write_session() as session:
        service.delete(session, dataset_id, caller)
    return Response(status_code=204)
