"""What the datasets API returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.jobs.schemas import UtcTime


class DatasetView(BaseModel):
    """An uploaded dataset: its arrays' id and shape, never the arrays themselves."""

    id: str = Field(
        description="The SHA-256 of its arrays (X, y as float64): refer to it in a job or "
        'sweep as `{"kind": "dataset", "id": …}`.'
    )
    owner: str = Field(description="Who uploaded it.")
    name: str | None
    shared: bool = Field(description="Visible to every account (an instructor's, shared).")
    rows: int
    features: int
    classes: int | None = Field(
        description="Labels 0..K−1: K (max + 1 when every y is a whole number ≥ 0); "
        "null for real-valued targets."
    )
    columns: list[str] | None = Field(description="A CSV's feature columns, in order.")
    target: str | None = Field(description="A CSV's target column.")
    size_bytes: int = Field(description="Stored size of X and y (float64).")
    created_at: UtcTime


class DatasetList(BaseModel):
    datasets: list[DatasetView]


def view(row: Any) -> dict[str, Any]:
    """A :class:`DatasetView` of a ``repository.ROW`` result (the upload and its shape)."""
    upload = row[0]
    return DatasetView(
        id=upload.dataset_id,
        owner=upload.owner,
        name=upload.name,
        shared=upload.shared,
        rows=row.rows,
        features=row.features,
        classes=row.classes,
        columns=upload.columns,
        target=upload.target,
        size_bytes=row.size_bytes,
        created_at=upload.created_at,
    ).model_dump(mode="json")
