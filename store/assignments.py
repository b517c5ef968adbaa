"""An assignment, as an instructor posts it (``POST /v1/assignments``) and as it is stored:
the reference exercise (a job spec), how students answer, the graded checks and the rules of
submitting. And each student's instance of it: with ``per_student_data``, the exercise with
the data's and the initial parameters' seeds drawn from the assignment's and the student's
names, so that two students never share an answer and the same student always gets the same.

The rules that need several fields at once (a check kind that fits ``submit``, a tensor the
model has, an iteration the job checks) are in ``service.assignments.validation``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from store.accounts import NAME_PATTERN, NAME_RULE
from store.spec import MAX_COUNT, FiniteFloat, JobSpec, RandomInit, Text

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)

Visibility = Literal["visible", "hidden", "after_due_date"]
CheckKind = Literal["solution", "numeric", "taylor", "loss", "final_loss"]
Submit = Literal["gradients", "code"]

KINDS_FOR: dict[str, tuple[str, ...]] = {
    "gradients": ("solution", "taylor", "loss"),
    "code": ("solution", "numeric", "taylor", "loss", "final_loss"),
}
"""Which checks each way of answering can be graded on: gradients given as numbers at the
instance's initial parameters have no loss curve, no code to difference and no final loss."""

FUNCTION = "loss_and_gradients"
"""The function a code submission defines (the exercise's signature, issue 12)."""


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must name its time zone (e.g. 2026-12-20T23:59:00Z).")
    return value


class CheckSpec(BaseModel):
    """One graded check: what it checks, what it is worth, and who sees its result when."""

    model_config = _CONFIG
    name: Text = Field(min_length=1, max_length=100, description="Unique in the assignment.")
    points: FiniteFloat = Field(ge=0, le=10_000, description="What passing it is worth.")
    visibility: Visibility = Field(
        "visible",
        description="visible: students see the result at once; hidden: only the name and the "
        "points, ever; after_due_date: the result once the due date has passed.",
    )
    kind: CheckKind = Field(
        description="solution: the gradients against the reference's (the diagnosis names a "
        "slip); numeric: the code's gradients against central differences of its own loss; "
        "taylor: the Taylor test's slope; loss: the loss value against the reference's; "
        "final_loss: the run's final loss within `tolerance` of the reference run's."
    )
    tensor: str | None = Field(
        None, max_length=32, description="solution, numeric: only this tensor (default all)."
    )
    iteration: int = Field(
        0, ge=0, le=MAX_COUNT, description="code: the iteration whose checks are graded."
    )
    tolerance: FiniteFloat = Field(
        1e-6, gt=0, le=1, description="loss, final_loss: the largest relative error passing."
    )


Name = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(lambda v: _name(v)),
]


def _name(value: str) -> str:
    import re

    if not re.match(NAME_PATTERN, value):
        raise ValueError(f"is not URL-safe: it {NAME_RULE}")
    return value


class AssignmentEdit(BaseModel):
    """The fields an instructor may change after creating an assignment (all optional)."""

    model_config = _CONFIG
    title: Text | None = Field(None, min_length=1, max_length=200)
    description: Text | None = Field(None, max_length=20_000)
    exercise: JobSpec | None = None
    checks: list[CheckSpec] | None = Field(None, min_length=1, max_length=50)
    due_at: Annotated[datetime | None, AfterValidator(_aware)] = None
    late: Literal["accept", "reject"] | None = None
    max_submissions: int | None = Field(None, ge=1, le=10_000)
    min_interval_seconds: FiniteFloat | None = Field(None, ge=0, le=86_400 * 30)
    per_student_data: bool | None = None
    policy: Literal["latest", "best"] | None = None
    published: bool | None = None


class AssignmentSpec(BaseModel):
    """An assignment as posted: every field but ``name``, ``title``, ``exercise``, ``submit``
    and ``checks`` has a default."""

    model_config = _CONFIG
    name: Name = Field(description="Unique and URL-safe: the assignment's address.")
    title: Text = Field(min_length=1, max_length=200)
    description: Text = Field("", max_length=20_000, description="Markdown, shown escaped.")
    exercise: JobSpec = Field(description="The reference solution, as a job spec says it.")
    submit: Submit = Field(
        description="gradients: numbers at the instance's initial parameters, graded at once; "
        "code: a `loss_and_gradients(params, X, y, l2)` function, graded as a job."
    )
    checks: list[CheckSpec] = Field(min_length=1, max_length=50)
    due_at: Annotated[datetime | None, AfterValidator(_aware)] = Field(
        None, description="After it a submission is late (or refused, with late: reject)."
    )
    late: Literal["accept", "reject"] = Field(
        "accept", description="accept: marked late; reject: refused with 409 past_due."
    )
    max_submissions: int | None = Field(
        None, ge=1, le=10_000, description="Submissions per student; one more gets 429."
    )
    min_interval_seconds: FiniteFloat = Field(
        0, ge=0, le=86_400 * 30, description="Between two submissions of a student (else 429)."
    )
    per_student_data: bool = Field(
        False,
        description="Each student's own data and initial parameters, seeded from the "
        "assignment's name and theirs.",
    )
    policy: Literal["latest", "best"] = Field(
        "latest", description="Which submission counts in the gradebook."
    )
    published: bool = Field(True, description="Whether students see it.")

    def edited(self, edit: AssignmentEdit) -> AssignmentSpec:
        """This assignment with the fields ``edit`` gives (null ones kept; ``due_at: null``
        clears the due date when sent explicitly)."""
        changes = {k: getattr(edit, k) for k in edit.model_fields_set}
        changes = {k: v for k, v in changes.items() if v is not None or k == "due_at"}
        return AssignmentSpec.model_validate({**self.model_dump(), **changes})

    def stored(self) -> dict[str, Any]:
        """What the ``assignments.spec`` column holds: JSON that :meth:`model_validate`
        reads back as it was (inline data with its arrays, so an instance needs no other row)."""
        return self.model_dump(mode="json")

    @property
    def max_score(self) -> float:
        return float(sum(c.points for c in self.checks))

    def past_due(self, now: datetime) -> bool:
        return self.due_at is not None and now > self.due_at


def student_seed(assignment: str, student: str) -> int:
    """The seed of a student's instance: stable across processes and versions (SHA-256)."""
    digest = hashlib.sha256(f"gradlab-assignment\0{assignment}\0{student}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def seeded_parts(exercise: JobSpec) -> list[str]:
    """What ``per_student_data`` can vary in ``exercise``: the generated data's seed and a
    random initialisation's seed."""
    parts = []
    if "seed" in type(exercise.data).model_fields:
        parts.append("data")
    if isinstance(exercise.init, RandomInit):
        parts.append("init")
    return parts


def instance(spec: AssignmentSpec, student: str) -> JobSpec:
    """``student``'s exercise: the assignment's own, or with ``per_student_data`` its data's
    and initial parameters' seeds replaced by ones drawn from the two names."""
    exercise = spec.exercise
    if not spec.per_student_data:
        return exercise
    seed = student_seed(spec.name, student)
    update: dict[str, Any] = {}
    parts = seeded_parts(exercise)
    if "data" in parts:
        update["data"] = exercise.data.model_copy(update={"seed": seed})
    if "init" in parts:
        update["init"] = exercise.init.model_copy(update={"seed": (seed * 7919 + 1) % 2**32})
    return exercise.model_copy(update=update)


def utcnow() -> datetime:
    return datetime.now(UTC)
