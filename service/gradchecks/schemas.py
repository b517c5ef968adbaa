"""Request and answer of ``POST /v1/gradient-checks``: a student's gradients, as numbers.

The exercise is said the way a job says it: ``model``, ``loss``, ``loss_options``, ``l2`` and
``data`` are the job spec's own types and fields (``store.spec``), so whatever a job may
train on can be checked here, with the same defaults and the same 422s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from engine.diagnose import CODES
from service.jobs.schemas import Kinks
from store.spec import (
    DataSpec,
    GradientCheckSpec,
    JobSpec,
    LossName,
    ModelSpec,
    ParamArray,
    Seed,
)

_JOB = JobSpec.model_fields
_CHECK = GradientCheckSpec.model_fields

AnyFloat = Annotated[float, Field(allow_inf_nan=True)]
"""A student's number: NaN and ±Infinity (or null, read as NaN) are verdicts, not errors."""
GradArray = list[AnyFloat | None] | list[list[AnyFloat | None]]


EXERCISE_FIELDS = ("model", "loss", "loss_options", "l2", "data")
"""The job spec's fields that say the exercise, taken from it as they are (type, default,
bounds, description): one home for what an exercise is."""

_Exercise: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "Exercise",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
    **{name: (_JOB[name].annotation, _JOB[name]) for name in EXERCISE_FIELDS},
)


class GradientCheckRequest(_Exercise):  # type: ignore[misc,valid-type]
    """An exercise (as a job spec says it), the parameters and the student's gradients."""

    if TYPE_CHECKING:  # the fields taken from JobSpec, as the type checker should see them
        model: ModelSpec
        loss: LossName | None
        loss_options: dict[str, float]
        l2: float
        data: DataSpec

    params: dict[str, ParamArray] = Field(
        description="Every parameter tensor at which the gradients were computed, with the "
        "model's names and shapes (W (n, k), b (k,); W1, b1, … for an MLP)."
    )
    gradients: dict[str, GradArray] = Field(
        description="Your gradient of the loss with respect to each tensor, the same names. A "
        "wrong shape or a NaN is a verdict, not an error."
    )
    loss_value: AnyFloat | None = Field(
        None, description="Your loss at params (data loss plus 0.5·l2·Σ‖W‖²), to compare too."
    )
    rtol: float = Field(
        _CHECK["rtol"].default, gt=0, allow_inf_nan=False, description=_CHECK["rtol"].description
    )
    atol: float = Field(
        _CHECK["atol"].default, ge=0, allow_inf_nan=False, description=_CHECK["atol"].description
    )
    seed: Seed = Field(0, description="Seed of the Taylor test's random direction.")


class Diagnosis(BaseModel):
    code: Literal[CODES]  # type: ignore[valid-type]
    message: str = Field(description="One sentence pointing at the likely slip.")
    factor: float | None = Field(
        None,
        description="scaled: yours = factor·reference; not_averaged: m; l2_scaled: the "
        "L2 term's factor.",
    )
    rows: list[int] | None = Field(None, description="partial: the wrong rows.")
    columns: list[int] | None = Field(None, description="partial: the wrong columns.")
    indices: list[list[int]] | None = Field(None, description="partial: wrong coordinates.")


class TensorVerdict(BaseModel):
    """A job's stored check of one tensor (null figures when the shape is wrong), its verdict
    and its diagnosis."""

    max_abs_error: float | None
    max_relative_error: float | None
    worst_index: list[int] | None
    analytic: float | None = Field(description="Your value at worst_index.")
    numeric: float | None = Field(description="The reference's value at worst_index.")
    checked: int
    total: int
    kinks: Kinks
    passed: bool
    diagnosis: Diagnosis


class LossVerdict(BaseModel):
    reference: float = Field(description="The engine's loss at params.")
    yours: float | None = Field(description="loss_value, when given (null if not finite).")
    relative_error: float | None
    passed: bool | None = Field(description="null when no loss_value was given.")
    diagnosis: Diagnosis | None


class Taylor(BaseModel):
    """The Taylor test of your gradients on the reference loss."""

    reference: Literal["taylor"]
    available: bool
    reason: str | None
    passed: bool | None
    seed: int
    steps: list[float]
    residuals: list[float | None]
    used: list[bool]
    kinks: list[bool]
    rates: list[float | None]
    slope: float | None
    min_slope: float


class GradientCheckAnswer(BaseModel):
    passed: bool = Field(description="Every tensor, and the loss when given, matches.")
    parameters: dict[str, TensorVerdict]
    loss: LossVerdict
    taylor: Taylor
