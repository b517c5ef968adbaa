"""Shapes of the sweeps API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from store.spec import JobSpec


class SweepRequest(BaseModel):
    """A base spec and a grid of overrides: one job per combination."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    base: JobSpec = Field(description="The spec every job starts from.")
    grid: dict[str, list[Any]] = Field(
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


class Sweep(BaseModel):
    id: str
    name: str | None
    grid: dict[str, list[Any]]
    base: dict[str, Any]
    created_at: str
    jobs: list[SweepJob]
