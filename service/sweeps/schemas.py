"""Shapes of the sweeps API."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.jobs.schemas import DataSummary
from store.spec import JobSpec, Text

INT64 = (-(2**63), 2**63 - 1)
"""Integers a grid value may hold: what JSON columns and orjson store. A value still has to
fit its field of the spec (``store.spec``), checked once it is substituted into the base."""


def _fits_int64(value: Any) -> Any:
    """``value`` (any JSON), once every integer in it is checked against :data:`INT64`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"integers must lie in [{INT64[0]}, {INT64[1]}].")
    if isinstance(value, dict):
        for inner in value.values():
            _fits_int64(inner)
    elif isinstance(value, list):
        for inner in value:
            _fits_int64(inner)
    return value


GridValue = Annotated[Any, AfterValidator(_fits_int64)]
GridPath = Annotated[Text, Field(min_length=1, max_length=200)]


class SweepRequest(BaseModel):
    """A base spec and a grid of overrides: one job per combination."""

    model_config = ConfigDict(extra="forbid")
    name: Text | None = Field(None, max_length=200)
    base: JobSpec = Field(description="The spec every job starts from.")
    grid: dict[GridPath, list[GridValue]] = Field(
        min_length=1,
        description="Dotted field path → the values to try, e.g. "
        '`{"optimizer.learning_rate": [0.01, 0.1, 1.0], "l2": [0, 0.001]}`; '
        "every combination becomes a job.",
    )


class SweepJob(BaseModel):
    id: str
    name: str | None
    status: str
    overrides: dict[str, Any]
    final_loss: float | None
    final_accuracy: float | None
    best_loss: float | None
    iterations_done: int


class SweepSummary(BaseModel):
    id: str
    name: str | None
    owner: str = Field(description="The account it (and each of its jobs) belongs to.")
    grid: dict[str, list[Any]]
    created_at: str


class SweepList(BaseModel):
    sweeps: list[SweepSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Sweep(BaseModel):
    id: str
    name: str | None
    owner: str = Field(description="The account it (and each of its jobs) belongs to.")
    grid: dict[str, list[Any]]
    base: dict[str, Any] = Field(description="The base spec; inline data as its reference.")
    data: DataSummary = Field(
        description="The base's data, fetched from the sweep's first job; a grid that changes "
        "the data gives each job its own (see each job's `data`)."
    )
    created_at: str
    jobs: list[SweepJob]
