"""What the datasets API does: store an upload once by content, list, show, delete; and turn a
spec's ``{"kind": "dataset", "id": …}`` into the stored arrays it names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Any, TypeVar, cast

from sqlalchemy.orm import Session

from service.datasets import repository, schemas
from service.datasets.parse import parse
from service.errors import Conflict, Forbidden, InvalidSpec, NotFound, Problem
from store import datasets
from store.accounts import Caller
from store.settings import Settings
from store.spec import ExternalRun, InlineData, JobSpec, UploadedData
from store.tables import DatasetUpload

UPLOAD = "upload"  # the datasets row's kind for arrays first stored by an upload


def no_dataset(dataset_id: str) -> NotFound:
    """The one answer for a dataset that does not exist or that the caller may not see."""
    return NotFound(f"There is no dataset {dataset_id!r}.")


def upload(
    session: Session,
    file: IO[bytes],
    caller: Caller,
    settings: Settings,
    *,
    target: str | None = None,
    name: str | None = None,
    shared: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Store an uploaded file's arrays once by content and record ``caller``'s upload of them;
    ``(view, created)``: the same content uploaded again by the same account is its first
    upload, unchanged."""
    if shared and not caller.sees_all:
        raise Forbidden("Only an instructor or an admin may share a dataset with the class.")
    parsed = parse(file, target, settings)
    ref = datasets.put(session, parsed.X, parsed.y, kind=UPLOAD, owner=caller.name)
    sha256 = ref["sha256"]
    created = repository.own_upload(session, sha256, caller.name) is None
    if created:
        repository.add_upload(
            session,
            DatasetUpload(
                dataset_id=sha256,
                owner=caller.name,
                name=name,
                shared=shared,
                columns=parsed.columns,
                target=parsed.target,
                created_at=datetime.now(UTC),
            ),
        )
    return get(session, sha256, caller), created


def list_datasets(session: Session, caller: Caller, limit: int) -> list[dict[str, Any]]:
    return [schemas.view(row) for row in repository.list_uploads(session, caller, limit)]


def get(session: Session, dataset_id: str, caller: Caller) -> dict[str, Any]:
    row = repository.get_upload(session, dataset_id, caller)
    if row is None:
        raise no_dataset(dataset_id)
    return schemas.view(row)


def delete(session: Session, dataset_id: str, caller: Caller) -> None:
    """Delete the caller's upload (an instructor's or admin's: the one they see); 409 while
    a job names it as its data."""
    row = repository.get_upload(session, dataset_id, caller)
    if row is None:
        raise no_dataset(dataset_id)
    upload: DatasetUpload = row[0]
    if upload.owner != caller.name and not caller.sees_all:
        raise Forbidden(
            f"Dataset {dataset_id} is {upload.owner}'s, shared; only they may delete it."
        )
    if (count := repository.jobs_using(session, upload)) > 0:
        raise Conflict(
            f"Dataset {dataset_id} is the data of {count} job(s); delete them before the dataset."
        )
    repository.delete_upload(session, upload)


Spec = TypeVar("Spec", bound=JobSpec | ExternalRun)


def resolve(session: Session, spec: Spec, caller: Caller) -> Spec:
    """``spec`` with an uploaded dataset's stored arrays in place of its id (unchanged for any
    other data, and for an external run without a recipe, which has none): what validation
    checks, and what is stored as a reference to them. A dataset the caller may not see is a
    422 on ``data.id``, as one that does not exist."""
    data = getattr(spec, "data", None)
    if not isinstance(data, UploadedData):
        return spec
    row = repository.get_upload(session, data.id, caller)
    arrays = None if row is None else datasets.get(session, data.id)
    if row is None or arrays is None:
        raise InvalidSpec([Problem(("data", "id"), f"there is no dataset {data.id!r}.")])
    X, y = arrays
    # The stored arrays as validation leaves inline ones: float64 NumPy, not lists.
    inline = InlineData.model_construct(kind="inline", X=X, y=y)  # type: ignore[arg-type]
    inline._reference = datasets.uploaded_reference(data.id, row.rows, row.features, row.classes)
    return cast(Spec, spec.model_copy(update={"data": inline}))  # the same class as spec
