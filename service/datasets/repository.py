"""Every query on uploaded datasets (``dataset_uploads`` over the content rows of ``datasets``).

Who sees an upload is decided here, once, by :func:`visible`: its owner, every instructor
and admin, and — when an instructor or admin shared it — everyone.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from store import datasets
from store.accounts import Caller
from store.tables import Dataset, DatasetUpload, Job

ROW: Select[*tuple[Any, ...]] = select(
    DatasetUpload, Dataset.rows, Dataset.features, Dataset.classes, Dataset.size_bytes
).join(Dataset, Dataset.id == DatasetUpload.dataset_id)


Q = TypeVar("Q", bound=Select[*tuple[Any, ...]])


def visible(query: Q, caller: Caller) -> Q:
    if caller.sees_all:
        return query
    return query.where(or_(DatasetUpload.owner == caller.name, DatasetUpload.shared.is_(True)))


def list_uploads(session: Session, caller: Caller, limit: int) -> list[Any]:
    query = visible(ROW, caller).order_by(DatasetUpload.created_at.desc()).limit(limit)
    return list(session.execute(query))


def get_upload(session: Session, dataset_id: str, caller: Caller) -> Any | None:
    """The upload of ``dataset_id`` the caller sees: their own first, else a shared one, else
    (instructors) the oldest."""
    query = visible(ROW.where(DatasetUpload.dataset_id == dataset_id), caller).order_by(
        (DatasetUpload.owner != caller.name), DatasetUpload.shared.desc(), DatasetUpload.created_at
    )
    return session.execute(query.limit(1)).first()


def own_upload(session: Session, dataset_id: str, owner: str) -> DatasetUpload | None:
    return session.get(DatasetUpload, (dataset_id, owner))


def add_upload(session: Session, upload: DatasetUpload) -> None:
    session.add(upload)
    session.flush()


def jobs_using(session: Session, upload: DatasetUpload) -> int:
    """Jobs that name this upload as their data: its owner's, or anyone's if it is shared."""
    data = Job.spec["data"]
    query = select(func.count()).where(
        data["kind"].as_string() == datasets.UPLOADED,
        data["sha256"].as_string() == upload.dataset_id,
    )
    if not upload.shared:
        query = query.where(Job.owner == upload.owner)
    return int(session.scalar(query) or 0)


def delete_upload(session: Session, upload: DatasetUpload) -> None:
    """Remove the upload, and its arrays when no other upload and no job refers to them."""
    session.delete(upload)
    session.flush()
    sha256 = upload.dataset_id
    uploads = exists().where(DatasetUpload.dataset_id == sha256)
    jobs = exists().where(Job.spec["data"]["sha256"].as_string() == sha256)
    session.execute(
        delete(Dataset)
        .where(Dataset.id == sha256, ~uploads, ~jobs)
        .execution_options(synchronize_session=False)
    )
