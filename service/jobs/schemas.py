"""Response shapes of the jobs API: the OpenAPI document, and how a stored job is shown.

A :class:`Job` is read straight from a job's row (the ORM object or the columns of
``repository.job_row``): this class is the one description of a job's JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SkipValidation,
    model_validator,
)
from typing_extensions import TypedDict

from engine import catalog
from store import datasets
from store import status as lifecycle_status
from store.lifecycle import EXTERNAL_ENDS
from store.spec import Reference, Runner
from store.tables import Job as JobRow


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds (SQLite hands datetimes back naive, in UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


UtcTime = Annotated[datetime, PlainSerializer(iso, return_type=str)]
"""A moment, shown as ISO 8601 in UTC with microseconds."""


if TYPE_CHECKING:
    Status = str
else:
    # The lifecycle's statuses as a Literal of their values (not the enum), so that the OpenAPI
    # document lists them inline and a wrong one is a literal_error, as it always was.
    Status = Literal[tuple(status.value for status in lifecycle_status.Status)]


class Summary(BaseModel):
    final_loss: float | None = Field(description="Loss at the last recorded iteration.")
    final_accuracy: float | None = Field(description="Training accuracy there (classifiers).")
    best_loss: float | None = Field(description="Lowest recorded loss.")
    best_iteration: int | None = Field(description="Iteration of the lowest loss.")


class JobError(BaseModel):
    type: str = Field(
        description="diverged (non-finite loss), worker_lost (its workers kept dying), "
        "invalid_spec, or internal_error; a student's job also student_error, time_limit, "
        "memory_limit, bad_return or sandbox_unavailable."
    )
    message: str = Field(description="What happened, in a sentence.")
    iteration: int | None = Field(description="The iteration it happened at, when it has one.")


class DataSummary(BaseModel):
    """What a job's JSON shows of its data: never the arrays, which ``href`` fetches."""

    kind: str = Field(description="inline (arrays posted with a spec), line, blobs or spiral.")
    sha256: str | None = Field(
        description="Inline data: the SHA-256 of its arrays, which are stored once by it."
    )
    rows: int
    features: int
    classes: int | None = Field(
        description="Labels 0..K−1: K (of inline labels: max + 1 when every y is a whole number "
        "≥ 0); null for real-valued targets."
    )
    href: str = Field(description="GET it for the arrays: `{X: [[…]], y: […]}`.")


def data_summary(job_id: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The :class:`DataSummary` of a stored spec's ``data`` (a reference to stored arrays,
    or a generator's options), for job ``job_id``; None for an external run without a
    recipe."""
    if data is None:
        return None
    if datasets.is_reference(data):
        summary = {k: data[k] for k in ("kind", "sha256", "rows", "features", "classes")}
    else:
        kind = data["kind"]
        shape = catalog.data_shape(kind, {k: v for k, v in data.items() if k != "kind"})
        summary = {
            "kind": kind,
            "sha256": None,
            "rows": shape.rows,
            "features": shape.features,
            "classes": shape.n_classes,
        }
    summary["href"] = f"/v1/jobs/{job_id}/data"
    return summary


_COLUMNS = tuple(c.key for c in JobRow.__table__.columns)


class ReferenceLink(BaseModel):
    job_id: str = Field(description="The reference run (a worker job of the `local` account).")
    href: str = Field(description="GET it for the comparison: status and first divergence.")


class Divergence(BaseModel):
    iteration: int = Field(description="The first iteration whose losses differ.")
    yours: float | None
    reference: float | None


class ReferenceView(BaseModel):
    """How a job compares with its recipe's reference run."""

    job_id: str
    status: Status | None = Field(description="The reference run's; null if it was deleted.")
    iterations_done: int
    compared: int = Field(description="Iterations both runs have recorded, compared.")
    rtol: float = Field(description="Two losses differ when |a − b| > rtol·max(|a|, |b|).")
    first_divergence: Divergence | None = Field(
        description="null: the two agree on every compared iteration (so far)."
    )


_MAX_ITERATION = 2**31 - 1


class PointIn(TypedDict):
    """One point of an external run. Only ``loss`` is required besides the iteration;
    ``data_loss`` defaults to the loss, ``reg_loss`` to 0, ``grad_norm`` and ``accuracy`` to
    null. A TypedDict, not a model: a batch of 10,000 is validated as plain dicts, several
    times faster."""

    __pydantic_config__ = ConfigDict(extra="forbid", allow_inf_nan=False)  # type: ignore[misc]
    iteration: Annotated[int, Field(ge=0, le=_MAX_ITERATION)]
    loss: float
    accuracy: NotRequired[Annotated[float, Field(ge=0, le=1)] | None]
    data_loss: NotRequired[float | None]
    reg_loss: NotRequired[float | None]
    grad_norm: NotRequired[Annotated[float, Field(ge=0)] | None]


class PointsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[PointIn] = Field(
        min_length=1,
        description="Consecutive iterations in order, at most GRADLAB_MAX_POINTS_PER_BATCH; "
        "overlapping what is stored is fine when the overlap is identical.",
    )


class Appended(BaseModel):
    job_id: str
    first_iteration: int
    stored: int = Field(description="New points stored by this batch.")
    unchanged: int = Field(description="Points of the batch that were stored already.")
    iterations_done: int = Field(description="The run's points now: iterations 0..n−1.")


if TYPE_CHECKING:
    EndStatus = str
else:
    EndStatus = Literal[tuple(s.value for s in EXTERNAL_ENDS)]


class FinishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: EndStatus


class Job(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    owner: str = Field(description="The account the job belongs to.")
    name: str | None
    tags: dict[str, str]
    status: Status
    # Stored specs passed validation when they were posted: shown as they are.
    spec: SkipValidation[dict[str, Any]] = Field(
        description="The spec as posted, with every default filled in; inline data as its "
        "reference (kind, sha256, rows, features, classes), never its arrays."
    )
    data: DataSummary | None = Field(
        description="The data's summary, and where to fetch its arrays; null for an external "
        "run without a recipe."
    )
    runner: Runner = Field(
        description="worker: trained by gradlab; external: its owner's loop logs its points."
    )
    reference: ReferenceLink | None = Field(
        description="The shared reference run of the job's recipe (external runs with a "
        "recipe); `href` compares the two."
    )
    created_at: UtcTime = Field(description="ISO 8601, UTC, with microseconds.")
    started_at: UtcTime | None
    finished_at: UtcTime | None
    iterations_done: int = Field(description="Iterations recorded so far.")
    attempts: int = Field(description="How many times a worker has claimed the job.")
    cancel_requested: bool
    gradient_checks_passed: bool | None = Field(
        validation_alias="checks_passed",
        description="Whether every gradient check so far passed; null before the first.",
    )
    summary: Summary
    error: JobError | None
    sweep_id: str | None

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, row: Any) -> Any:
        return row if isinstance(row, dict) else _shown(row)

    @classmethod
    def view(cls, row: Any) -> dict[str, Any]:
        """The JSON of a job's row, by this class's fields: each read from its column (or
        alias), the times as ISO strings. Rows were valid when stored, so nothing is
        validated again: that would cost the hottest read a third of its time."""
        data = _shown(row)
        out = {name: data[source] for name, source in _VIEW}
        for name in _TIMES:
            out[name] = iso(out[name])
        return out


class Data(BaseModel):
    X: list[list[float]] = Field(description="Features, shape (m, n), exactly as posted.")
    y: list[float] = Field(description="Targets or labels, shape (m,).")


class JobList(BaseModel):
    jobs: list[Job]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class Point(BaseModel):
    iteration: int
    loss: float
    data_loss: float
    reg_loss: float = Field(description="0.5·l2·Σ‖W‖².")
    grad_norm: float = Field(description="Global L2 norm of all gradients.")
    accuracy: float | None = Field(description="Training accuracy (classifiers), else null.")
    reference_loss: float | None = Field(
        None, description="A student's job: the reference solution's loss at the same parameters."
    )


class Metrics(BaseModel):
    job_id: str
    total: int = Field(description="Points recorded in the requested range.")
    downsampled: bool
    points: list[Point] | None = None
    columns: dict[str, list[float | None]] | None = Field(
        None, description="With format=columns: one array per field, in iteration order."
    )


class Kinks(BaseModel):
    count: int
    indices: list[list[int]]


class TensorCheck(BaseModel):
    max_abs_error: float
    max_relative_error: float
    worst_index: list[int]
    analytic: float
    numeric: float = Field(description="The reference's value (autograd's, for torch).")
    checked: int
    total: int
    kinks: Kinks
    passed: bool | None = Field(None, description="Solution checks: this tensor's verdict.")
    diagnosis: dict[str, Any] | None = Field(
        None, description="Solution checks: the slip named (code, message, factor, rows…)."
    )


class Check(BaseModel):
    """One check. A Taylor test (``reference: taylor``) has no epsilon, tolerances or
    per-tensor entries; it has the ``steps``, their ``residuals`` and the fitted ``slope``."""

    iteration: int
    reference: Reference | Literal["solution"] = Field(
        description="numeric, torch, taylor; for a student's job also solution (the "
        "student's gradient against the reference solution's)."
    )
    epsilon: float | None
    rtol: float | None = Field(description="null for the Taylor test.")
    atol: float | None = Field(description="null for the Taylor test.")
    available: bool
    reason: str | None
    passed: bool | None
    max_relative_error: float | None
    parameters: dict[str, TensorCheck]
    seed: int | None = Field(None, description="Taylor: the seed of the direction v.")
    steps: list[float] | None = Field(None, description="Taylor: the steps h, largest first.")
    residuals: list[float | None] | None = Field(
        None, description="Taylor: |L(θ+hv) − L(θ) − h·⟨g, v⟩| at each step."
    )
    used: list[bool] | None = Field(
        None, description="Taylor: the steps the slope was fitted over (above rounding)."
    )
    kinks: list[bool] | None = Field(
        None, description="Taylor: the steps that crossed a kink of the loss (set aside)."
    )
    rates: list[float | None] | None = Field(
        None, description="Taylor: the slopes between consecutive used steps."
    )
    slope: float | None = Field(
        None, description="Taylor: log-log slope of the residuals (2 right, 1 wrong)."
    )
    min_slope: float | None = Field(None, description="Taylor: passed when slope ≥ this.")
    loss: dict[str, Any] | None = Field(
        None, description="Solution checks: the student's loss and the reference's, compared."
    )


class Checks(BaseModel):
    checks: list[Check]


class Parameters(BaseModel):
    iteration: int = Field(description="The iteration these parameters would start from.")
    parameters: dict[str, Any] = Field(description="Name → nested lists.")
    shapes: dict[str, list[int]]


_VIEW = tuple(
    (name, field.validation_alias if isinstance(field.validation_alias, str) else name)
    for name, field in Job.model_fields.items()
)
_TIMES = tuple(name for name, f in Job.model_fields.items() if "datetime" in repr(f.annotation))
"""The fields shown as ISO strings (``UtcTime``)."""


def _shown(row: Any) -> dict[str, Any]:
    """A job's row as the API shows it: the summary's columns together, the error's
    ``error_*`` columns as one object (or null)."""
    data = {name: getattr(row, name) for name in _COLUMNS}
    data["tags"] = data["tags"] or {}
    data["summary"] = {name: data[name] for name in Summary.model_fields}
    error = {name: data[f"error_{name}"] for name in JobError.model_fields}
    data["error"] = error if error["type"] is not None else None
    data["data"] = data_summary(data["id"], data["spec"].get("data"))
    ref = data["reference_job_id"]
    data["reference"] = ref and {"job_id": ref, "href": f"/v1/jobs/{data['id']}/reference"}
    return data
