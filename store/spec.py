"""The training-job spec: what a user posts to ``POST /v1/jobs``.

Each choice (model, data, optimizer, init) is a discriminated union on ``kind``, so Swagger
shows every variant with its own fields and defaults. The kinds, the losses and every default
come from the engine's catalog (``engine.catalog``); these classes add each field's bounds and
description for the API, and check each field on its own. The checks that need several
fields at once (a loss that fits the model, labels that fit the loss, given parameters with
the right shapes, the server's size limits) are in ``service.jobs.validation``. The worker
reads a stored spec back as the same :class:`JobSpec`.

It runs past ~300 lines because it is one schema: a class per variant with every field's
bound and description, in the order Swagger shows them; split, one request's shape would
be read in several files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    PrivateAttr,
    Tag,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from engine import catalog
from store import datasets

# Shared: reject unknown fields (typos get a clear error) and NaN/Infinity everywhere.
_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="Seed of the generator.")]

MAX_COUNT = 2**31 - 1
"""The largest count (rows, features, iterations, a batch, a check's period) a spec may hold:
far above the server's own limits (GRADLAB_MAX_*, checked in ``service.jobs.validation``), so
an absurd integer is refused here, by its field, before it reaches JSON or SQL."""


def _matching(pattern: str, why: str) -> tuple[Any, AfterValidator]:
    """A string rule: ``pattern`` for the JSON Schema, and a check that says ``why``."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(why)
        return value

    return Field(json_schema_extra={"pattern": f"^{pattern}$"}), AfterValidator(check)


# PostgreSQL's text and jsonb cannot hold NUL; a tag key also becomes a JSON path in SQL
# (``GET /v1/jobs?tag=key``), where a quote, a backslash or a control character would break it.
_NO_NUL = _matching(r"[^\x00]*", "must not contain NUL (\\0) characters.")
_TAG_KEY = _matching(
    r'[^\x00-\x1f\x7f"\\]*', "must not contain control characters, double quotes or backslashes."
)
Text = Annotated[str, _NO_NUL[0], _NO_NUL[1]]
TagKey = Annotated[str, Field(min_length=1, max_length=64), _TAG_KEY[0], _TAG_KEY[1]]
TagValue = Annotated[str, Field(max_length=200), _NO_NUL[0], _NO_NUL[1]]

if TYPE_CHECKING:
    LossName = str
    ModelKind = str
else:
    LossName = Literal[tuple(catalog.LOSSES)]
    ModelKind = Literal[tuple(catalog.MODELS)]


_MLP = catalog.MODELS["mlp"].options
_OPT = catalog.OPTIMIZERS
_DATA = catalog.DATASETS


# --- models -----------------------------------------------------------------------------


_PLAIN_MODELS = tuple(kind for kind, m in catalog.MODELS.items() if not m.options)


class PlainModel(BaseModel):
    """A model with no options of its own: linear regression (ŷ = XW + b, real targets),
    logistic regression (ŷ = σ(XW + b), labels 0/1) or softmax regression (softmax(XW + b),
    labels 0..K−1: the CS231n softmax classifier)."""

    model_config = _CONFIG
    kind: Literal[_PLAIN_MODELS]  # type: ignore[valid-type]


class MLP(BaseModel):
    """A fully connected network trained by backpropagation; ``[h]`` is the 2-layer net."""

    model_config = _CONFIG
    kind: Literal["mlp"]
    hidden_sizes: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: list(_MLP["hidden_sizes"]),
        min_length=1,
        max_length=8,
        description="Units per hidden layer; one entry per layer.",
    )
    activation: Literal[catalog.ACTIVATIONS] = Field(  # type: ignore[valid-type]
        _MLP["activation"], description="Hidden-layer activation."
    )


ModelSpec = Annotated[
    PlainModel | MLP,
    Field(discriminator="kind", description="The model to train."),
]


# --- data --------------------------------------------------------------------------------


Count = Annotated[int, Field(ge=1, le=MAX_COUNT)]
Classes = Annotated[int, Field(ge=2, le=1000)]
Spread = Annotated[FiniteFloat, Field(ge=0)]
Width = Annotated[FiniteFloat, Field(gt=0)]
_LINE, _BLOBS, _SPIRAL = _DATA["line"], _DATA["blobs"], _DATA["spiral"]


class LineData(BaseModel):
    """A noisy line: x uniform in [x_min, x_max], y = slope·x + intercept + noise·N(0, 1)."""

    model_config = _CONFIG
    kind: Literal["line"]
    n_samples: Count = Field(_LINE["n_samples"], description="Number of points.")
    slope: FiniteFloat = Field(_LINE["slope"], description="Slope of the true line.")
    intercept: FiniteFloat = Field(_LINE["intercept"], description="Intercept of the true line.")
    noise: Spread = Field(_LINE["noise"], description="Standard deviation of the noise.")
    x_min: FiniteFloat = Field(_LINE["x_min"], description="Smallest x.")
    x_max: FiniteFloat = Field(_LINE["x_max"], description="Largest x (above x_min).")
    seed: Seed = _LINE["seed"]


class BlobsData(BaseModel):
    """Gaussian clusters, one per class, centres uniform in [−center_box, center_box]^d."""

    model_config = _CONFIG
    kind: Literal["blobs"]
    n_samples: Annotated[int, Field(ge=2, le=MAX_COUNT)] = Field(
        _BLOBS["n_samples"], description="Number of points, split across classes."
    )
    n_classes: Classes = Field(_BLOBS["n_classes"], description="Clusters (labels 0..K−1).")
    n_features: Count = Field(_BLOBS["n_features"], description="Dimension of each point.")
    cluster_std: Width = Field(_BLOBS["cluster_std"], description="Spread of a cluster (σ).")
    center_box: Width = Field(_BLOBS["center_box"], description="Half-width of the centres' box.")
    seed: Seed = _BLOBS["seed"]


class SpiralData(BaseModel):
    """The CS231n spiral: ``n_classes`` arms of ``n_per_class`` points in 2-D."""

    model_config = _CONFIG
    kind: Literal["spiral"]
    n_per_class: Count = Field(_SPIRAL["n_per_class"], description="Points per arm.")
    n_classes: Classes = Field(_SPIRAL["n_classes"], description="Arms (labels 0..K−1).")
    noise: Spread = Field(_SPIRAL["noise"], description="Standard deviation of the angle noise.")
    seed: Seed = _SPIRAL["seed"]


def _as_array(ndim: int) -> WrapValidator:
    """Inline arrays straight into float64 NumPy, in C, rather than a pydantic float per
    element (a copy of every list and float): the fast path for a valid array. Anything
    else — ragged, empty, not a number, not finite — goes through the list validation,
    whose errors name the element (``data.X[3][1]``)."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, np.ndarray) and value.dtype == np.float64:
            array = value
        else:
            try:
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError, OverflowError):
                return handler(value)
        if array.ndim == ndim and array.size and np.isfinite(array).all():
            return array
        return handler(value.tolist() if isinstance(value, np.ndarray) else value)

    return WrapValidator(validate)


def _as_lists(value: Any) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else value


_LISTS = PlainSerializer(_as_lists, when_used="always")


class InlineData(BaseModel):
    """Your own arrays: ``X`` is a list of rows, ``y`` one target or label per row.

    They are stored once by content (``store.datasets``): a job's stored spec and its JSON
    keep a reference — their SHA-256, rows, features and classes — and
    ``GET /v1/jobs/{id}/data`` gives the arrays back."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)
    kind: Literal["inline"]
    X: Annotated[list[list[FiniteFloat]], _as_array(2), _LISTS] = Field(
        description="Features, shape (m, n)."
    )
    y: Annotated[list[FiniteFloat], _as_array(1), _LISTS] = Field(
        description="Targets (regression) or labels 0..K−1, shape (m,)."
    )
    _reference: dict[str, Any] | None = PrivateAttr(None)

    def reference(self) -> dict[str, Any]:
        """The stored spec's ``data``: the arrays' hash and shape (``store.datasets``),
        computed once per instance (a sweep's jobs share their base's)."""
        if self._reference is None:
            self._reference = datasets.reference(np.asarray(self.X), np.asarray(self.y))
        return self._reference


_SKLEARN = _DATA["sklearn"]
if TYPE_CHECKING:
    SklearnName = str
else:
    SklearnName = Literal[tuple(catalog.CHOICES["name"])]


class SklearnData(BaseModel):
    """One of scikit-learn's bundled datasets (no network): iris (3 classes), wine (3),
    breast_cancer (labels 0/1), digits (8×8 images, 10 classes) or diabetes (real targets).
    Needs scikit-learn on the server (``gradlab[datasets]``)."""

    model_config = _CONFIG
    kind: Literal["sklearn"]
    name: SklearnName = Field(_SKLEARN["name"], description="Which dataset.")
    standardize: bool = Field(
        _SKLEARN["standardize"], description="Scale each feature to mean 0, standard deviation 1."
    )


DatasetId = Annotated[
    str, Field(min_length=64, max_length=64, json_schema_extra={"pattern": "^[0-9a-f]{64}$"})
]


class UploadedData(BaseModel):
    """A dataset uploaded with ``POST /v1/datasets``, by its id (the SHA-256 of its arrays):
    the job keeps this reference, never a copy of the arrays."""

    model_config = _CONFIG
    kind: Literal["dataset"]
    id: Annotated[DatasetId, _matching("[0-9a-f]{64}", "must be 64 lower-case hex digits.")[1]] = (
        Field(description="The dataset's id, from POST /v1/datasets or GET /v1/datasets.")
    )


DataSpec = Annotated[
    LineData | BlobsData | SpiralData | SklearnData | InlineData | UploadedData,
    Field(discriminator="kind", description="The training data."),
]


# --- optimizers --------------------------------------------------------------------------

LearningRate = Annotated[float, Field(gt=0, allow_inf_nan=False, description="Step size.")]
Momentum = Annotated[
    float, Field(ge=0, lt=1, description="Momentum μ: v = μv − lr·g; w += v. 0 is plain descent.")
]


class GD(BaseModel):
    """Full-batch gradient descent (the seeds' loop)."""

    model_config = _CONFIG
    kind: Literal["gd"]
    learning_rate: LearningRate = _OPT["gd"].options["learning_rate"]
    momentum: Momentum = _OPT["gd"].options["momentum"]


class SGD(BaseModel):
    """Minibatch SGD. One iteration is one minibatch step; its recorded loss is the
    minibatch's loss. Batches are reshuffled every epoch by a generator seeded from ``seed``."""

    model_config = _CONFIG
    kind: Literal["sgd"]
    learning_rate: LearningRate = _OPT["sgd"].options["learning_rate"]
    momentum: Momentum = _OPT["sgd"].options["momentum"]
    batch_size: int = Field(
        _OPT["sgd"].options["batch_size"],
        ge=1,
        le=MAX_COUNT,
        description="Examples per minibatch (at most GRADLAB_MAX_INLINE_ROWS).",
    )
    seed: Seed = _OPT["sgd"].options["seed"]


class Newton(BaseModel):
    """Newton's method with the exact Hessian: θ ← θ − lr·(H + damping·I)⁻¹∇L.
    For linear, logistic and softmax regression."""

    model_config = _CONFIG
    kind: Literal["newton"]
    learning_rate: LearningRate = _OPT["newton"].options["learning_rate"]
    damping: FiniteFloat = Field(
        _OPT["newton"].options["damping"], ge=0, description="Added to the Hessian's diagonal."
    )


OptimizerSpec = Annotated[
    GD | SGD | Newton, Field(discriminator="kind", description="How parameters are updated.")
]


# --- initialisation ----------------------------------------------------------------------


class RandomInit(BaseModel):
    """Weights scale·N(0, 1) from a seeded generator, biases zero (as CS231n does)."""

    model_config = _CONFIG
    kind: Literal["random"]
    scale: FiniteFloat = Field(
        catalog.INITS["random"]["scale"], gt=0, description="Standard deviation of the weights."
    )
    seed: Seed = catalog.INITS["random"]["seed"]


class ZerosInit(BaseModel):
    """Every parameter starts at zero."""

    model_config = _CONFIG
    kind: Literal["zeros"]


ParamArray = list[FiniteFloat] | list[list[FiniteFloat]]


class GivenInit(BaseModel):
    """Explicit starting parameters, so a run can be replayed against an outside reference.
    Names and shapes must match the model (``W`` (n, k) and ``b`` (k,), or ``W1, b1, …``)."""

    model_config = _CONFIG
    kind: Literal["given"]
    params: dict[str, ParamArray] = Field(description="Parameter name → nested list.")


InitSpec = Annotated[
    RandomInit | ZerosInit | GivenInit,
    Field(discriminator="kind", description="Starting parameters."),
]


# --- gradient checks -----------------------------------------------------------------------

Reference = Literal["numeric", "torch", "taylor"]


class GradientCheckSpec(BaseModel):
    """When and how the analytic gradients are checked. Checks always run at the first and
    the last iteration, and every ``every`` iterations in between when ``every`` > 0."""

    model_config = _CONFIG
    every: int = Field(
        0, ge=0, le=MAX_COUNT, description="Check every this many iterations (0: first/last)."
    )
    epsilon: FiniteFloat = Field(1e-5, gt=0, le=1, description="Central-difference step, float64.")
    max_coordinates: int | None = Field(
        50,
        ge=1,
        le=MAX_COUNT,
        description="Checked coordinates per parameter tensor (a seeded sample); null: all.",
    )
    rtol: FiniteFloat = Field(1e-6, gt=0, description="Pass when every relative error ≤ rtol.")
    atol: FiniteFloat = Field(
        1e-9, ge=0, description="Floor: |a−n|/max(|a|, |n|, atol/rtol) judges tiny gradients."
    )
    references: list[Reference] = Field(
        default_factory=lambda: list[Reference](["numeric"]),
        max_length=len(get_args(Reference)),
        description="numeric: central differences; torch: PyTorch autograd when installed; "
        "taylor: the Taylor test, the first-order remainder along a seeded random direction "
        "shrinking as h² (an epsilon-free check). An empty list turns checks off.",
    )


# --- student code --------------------------------------------------------------------------

_IDENTIFIER = _matching(r"[A-Za-z_][A-Za-z0-9_]*", "must be a Python function name.")


class StudentCode(BaseModel):
    """The student's own implementation of the exercise's function, run in a sandbox by the
    worker (never by the API): the job trains with its gradients and checks them against
    the reference solution named by ``model`` and ``loss``."""

    model_config = _CONFIG
    code: Text = Field(
        description="Python source (standard library and NumPy only) defining the function; "
        "at most GRADLAB_MAX_STUDENT_CODE_BYTES."
    )
    function: Annotated[str, Field(max_length=100), _IDENTIFIER[0], _IDENTIFIER[1]] = Field(
        catalog.STUDENT_FUNCTION.name,
        description="The function to call: " + catalog.STUDENT_FUNCTION.signature + ".",
    )


def options(section: BaseModel) -> dict[str, Any]:
    """A spec section's fields but its ``kind``, as they are (no copies): the keyword
    arguments of the engine function the section names."""
    return {name: getattr(section, name) for name in type(section).model_fields if name != "kind"}


# --- the job -------------------------------------------------------------------------------


def _kinds(*variants: type[BaseModel]) -> frozenset[str]:
    return frozenset(k for v in variants for k in get_args(v.model_fields["kind"].annotation))


UNION_TAGS: dict[str, frozenset[str]] = {
    "model": _kinds(PlainModel, MLP),
    "data": _kinds(LineData, BlobsData, SpiralData, SklearnData, InlineData, UploadedData),
    "optimizer": _kinds(GD, SGD, Newton),
    "init": _kinds(RandomInit, ZerosInit, GivenInit),
}
"""The discriminated-union fields and their tags: pydantic puts the tag in an error's path
(``data.inline.X``), which users never write."""

_CATALOG_KINDS: dict[str, Mapping[str, object]] = {
    "model": catalog.MODELS,
    "data": catalog.DATASETS,
    "optimizer": catalog.OPTIMIZERS,
    "init": catalog.INITS,
}
for _field, _tags in UNION_TAGS.items():  # a kind's fields are declared here, once
    if _tags != set(_CATALOG_KINDS[_field]):
        raise ImportError(
            f"spec.{_field} declares {sorted(_tags)}, the catalog has "
            f"{sorted(_CATALOG_KINDS[_field])}: declare each kind's fields here"
        )


Runner = Literal["worker", "external"]
"""Who produces a job's points: a worker trains it, or its owner's own loop logs them
(``POST /v1/jobs/{id}/metrics``) and no worker ever claims it."""

_RUNNER: Any = Field(
    "worker",
    description="worker: gradlab trains it. external: your own loop logs its points "
    "(POST /v1/jobs/{id}/metrics, then /finish); the job is running from the start and no "
    "worker claims it. An external run may leave out the recipe (model, data, optimizer, "
    "iterations); with one, it is compared with the recipe's shared reference run.",
)
_NAME: Any = Field(None, max_length=200, description="A name to find the job by.")
_TAGS: Any = Field(
    default_factory=dict, max_length=50, description="Free-form labels, string → string."
)


class ExternalRun(BaseModel):
    """An external run without a recipe: only its name and tags. Its points are whatever
    its owner's loop logs; there is nothing to compare them with."""

    model_config = _CONFIG
    name: Text | None = _NAME
    tags: dict[TagKey, TagValue] = _TAGS
    runner: Literal["external"]

    def normalised(self) -> dict:
        """The spec as stored and returned."""
        return self.model_dump(mode="json")


class JobSpec(BaseModel):
    """A training job: a model, data, an optimizer and how long to run."""

    model_config = _CONFIG
    name: Text | None = _NAME
    tags: dict[TagKey, TagValue] = _TAGS
    runner: Runner = _RUNNER
    model: ModelSpec
    loss: LossName | None = Field(
        None,
        description="Loss; default per model: "
        + ", ".join(f"{m.losses[0]} ({kind})" for kind, m in catalog.MODELS.items())
        + ".",
    )
    loss_options: dict[Annotated[str, Field(min_length=1, max_length=64)], FiniteFloat] = Field(
        default_factory=dict,
        max_length=8,
        description="Options of the loss, with their defaults filled in: "
        + "; ".join(
            f"{name}: " + ", ".join(f"{k} = {v:g}" for k, v in loss.options.items())
            for name, loss in catalog.LOSSES.items()
            if loss.options
        )
        + ".",
    )
    data: DataSpec
    optimizer: OptimizerSpec
    iterations: int = Field(
        ge=1, le=MAX_COUNT, description="Number of updates; one point is recorded per update."
    )
    l2: FiniteFloat = Field(
        0.0, ge=0, description="L2 strength: loss += 0.5·l2·Σ‖W‖² over weights, never biases."
    )
    init: InitSpec = Field(default_factory=lambda: RandomInit(kind="random"))
    gradient_check: GradientCheckSpec = Field(
        default_factory=GradientCheckSpec,
        description="When and how gradients are checked; by default numerically at the "
        "first and the last iteration.",
    )
    student: StudentCode | None = Field(
        None,
        description="Train with the student's own function instead of the engine's; each "
        "check then records numeric, solution and taylor.",
    )

    @property
    def resolved_loss(self) -> str:
        """The loss, or the model's default."""
        return self.loss or catalog.default_loss(self.model.kind)

    def normalised(self) -> dict:
        """The spec with every default filled in, as stored and returned: inline data as
        its reference (``InlineData.reference``), never its arrays."""
        loss = self.resolved_loss
        options = catalog.loss_options(loss, self.loss_options)
        full = self.model_copy(update={"loss": loss, "loss_options": options})
        if not isinstance(self.data, InlineData):
            return full.model_dump(mode="json")
        out = full.model_dump(mode="json", exclude={"data"})
        return {
            name: self.data.reference() if name == "data" else out[name]
            for name in type(self).model_fields
        }


_RECIPE = ("model", "data", "optimizer", "iterations")


def _which(value: Any) -> str:
    """``external`` for an external run that gives none of the recipe's fields, else
    ``job``: a spec that gives any of them is held to the whole recipe."""
    if isinstance(value, Mapping):
        bare = value.get("runner") == "external" and not any(k in value for k in _RECIPE)
    else:
        bare = isinstance(value, ExternalRun)
    return "external" if bare else "job"


SPEC_TAGS = frozenset({"job", "external"})
"""The tags of :data:`AnySpec`'s members, which pydantic puts first in an error's path."""

AnySpec = Annotated[
    Annotated[JobSpec, Tag("job")] | Annotated[ExternalRun, Tag("external")],
    Discriminator(_which),
]
"""What ``POST /v1/jobs`` takes: a job spec (a recipe, for a worker or an external run), or
an external run with no recipe at all."""
