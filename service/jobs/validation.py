"""Checks on a job spec that need several fields at once, or the server's limits.

Pydantic has already checked every field on its own (``store.spec``). What is left is
whether the parts fit together — a loss the model accepts, labels the loss can use, given
parameters with the model's shapes, Newton only where the Hessian is exact and useful — and
whether the job fits the server's limits. Each problem names its field path, so that the
422 response says which field is wrong and why, and nothing is stored.
"""

from __future__ import annotations

import math

import numpy as np

from engine import catalog
from service.errors import InvalidSpec, Problem
from service.jobs.cost import COLUMNS_FIELD, ROWS_FIELD, check_cost
from store.settings import Settings
from store.spec import (
    MLP,
    SGD,
    BlobsData,
    GivenInit,
    InlineData,
    JobSpec,
    LineData,
    Newton,
    SklearnData,
    UploadedData,
    options,
)

MAX_PARAMETERS = 5_000_000


def data_shape(spec: JobSpec) -> catalog.DataShape:
    """Rows, features and classes of the spec's data, without generating it."""
    return catalog.data_shape(spec.data.kind, options(spec.data))


def param_shapes(spec: JobSpec, shape: catalog.DataShape) -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes the engine will build for this spec and data."""
    kind = spec.model.kind
    outputs = catalog.n_outputs(kind, spec.resolved_loss, shape.n_classes)
    hidden = spec.model.hidden_sizes if isinstance(spec.model, MLP) else ()
    return catalog.param_shapes(kind, shape.features, outputs, hidden)


def _shape_of(value: object) -> tuple[int, ...] | None:
    """Shape of a nested list, or None when it is ragged."""
    if not isinstance(value, list):
        return ()
    if not value:
        return (0,)
    inner = [_shape_of(v) for v in value]
    if any(s is None or s != inner[0] for s in inner):
        return None
    assert inner[0] is not None
    return (len(value), *inner[0])


def check_spec(spec: JobSpec, settings: Settings) -> None:
    """Raise :class:`InvalidSpec` listing every problem found, or return quietly."""
    problems: list[Problem] = []
    loss = spec.resolved_loss
    kind = spec.model.kind

    allowed = catalog.MODELS[kind].losses
    if loss not in allowed:
        problems.append(
            Problem(
                ("loss",),
                f"{kind} does not take the loss {loss!r}; use one of: {', '.join(allowed)}.",
            )
        )
    else:
        problems += _check_loss_options(spec, loss)

    if spec.iterations > settings.max_iterations:
        problems.append(
            Problem(
                ("iterations",),
                f"iterations is {spec.iterations}, above this server's limit of "
                f"{settings.max_iterations} (GRADLAB_MAX_ITERATIONS).",
            )
        )

    if isinstance(spec.optimizer, SGD) and spec.optimizer.batch_size > settings.max_inline_rows:
        problems.append(
            Problem(
                ("optimizer", "batch_size"),
                f"batch_size is {spec.optimizer.batch_size}, above this server's limit of "
                f"{settings.max_inline_rows} rows (GRADLAB_MAX_INLINE_ROWS): no batch is larger.",
            )
        )

    problems += _check_data(spec, settings)
    if spec.student is not None:
        problems += _check_student(spec.student.code, settings)
        if isinstance(spec.optimizer, SGD):
            problems.append(
                Problem(
                    ("optimizer", "kind"),
                    "a job with student code trains full-batch: use gd (or newton) with it.",
                )
            )
    if problems:
        raise InvalidSpec(problems)

    shape = data_shape(spec)
    problems += _check_labels(spec, loss, shape)
    refusal = catalog.newton_refusal(kind, loss) if isinstance(spec.optimizer, Newton) else None
    if refusal is not None:
        problems.append(Problem(("optimizer", "kind"), refusal))
    if problems:
        raise InvalidSpec(problems)

    shapes = param_shapes(spec, shape)
    n_params = sum(math.prod(s) for s in shapes.values())
    if n_params > MAX_PARAMETERS:
        problems.append(
            Problem(
                ("model", "hidden_sizes"),
                f"this model would have {n_params} parameters; the limit is {MAX_PARAMETERS}.",
            )
        )
    if isinstance(spec.init, GivenInit):
        problems += _check_given(spec.init, shapes)
    if problems:
        raise InvalidSpec(problems)
    problems += check_cost(spec, shape, shapes, settings)
    if problems:
        raise InvalidSpec(problems)


def _check_student(code: str, settings: Settings) -> list[Problem]:
    """The code's size and syntax: compiled here, never run (the worker runs it, sandboxed)."""
    size = len(code.encode())
    if size > settings.max_student_code_bytes:
        why = (
            f"the code is {size} bytes, above this server's limit of "
            f"{settings.max_student_code_bytes} (GRADLAB_MAX_STUDENT_CODE_BYTES)."
        )
        return [Problem(("student", "code"), why)]
    try:
        compile(code, "<your code>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        return [Problem(("student", "code"), f"this is not valid Python{where}: {exc.msg}.")]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [Problem(("student", "code"), f"this is not valid Python: {exc}.")]
    return []


def _check_loss_options(spec: JobSpec, loss: str) -> list[Problem]:
    known = catalog.LOSSES[loss].options
    problems = []
    for name, value in spec.loss_options.items():
        if name not in known:
            listed = ", ".join(known) or "none"
            message = f"{loss} has no option {name!r}; its options: {listed}."
            problems.append(Problem(("loss_options", name), message))
        elif value <= 0:
            message = f"{name} must be greater than 0, got {value:g}."
            problems.append(Problem(("loss_options", name), message))
    return problems


def check_inline(data: InlineData) -> list[Problem]:
    """What is wrong with inline arrays' shapes (empty, ragged, y not one per row), if anything."""
    if not len(data.X):
        return [Problem(("data", "X"), "X is empty; give at least one row.")]
    width = len(data.X[0])
    if width == 0:
        return [Problem(("data", "X", 0), "row 0 of X is empty; give a value per feature.")]
    if not isinstance(data.X, np.ndarray):  # an array (the valid case) is never ragged
        for i, row in enumerate(data.X):
            if len(row) != width:
                message = f"X is ragged: row {i} has {len(row)} values but row 0 has {width}."
                return [Problem(("data", "X", i), message)]
    if len(data.y) != len(data.X):
        message = (
            f"y has {len(data.y)} values but X has {len(data.X)} rows; give one target per row."
        )
        return [Problem(("data", "y"), message)]
    return []


def _check_data(spec: JobSpec, settings: Settings) -> list[Problem]:
    data = spec.data
    if isinstance(data, UploadedData):  # the service puts the stored arrays in its place
        return [Problem(("data", "id"), f"there is no dataset {data.id!r}.")]
    if isinstance(data, InlineData) and (problems := check_inline(data)):
        return problems
    problems = []
    if isinstance(data, LineData) and data.x_max <= data.x_min:
        problems.append(Problem(("data", "x_max"), "x_max must be greater than x_min."))
    if isinstance(data, BlobsData) and data.n_samples < data.n_classes:
        message = "n_samples must be at least n_classes (a point per class)."
        problems.append(Problem(("data", "n_samples"), message))
    shape = data_shape(spec)
    for size, cap, var, fields in (
        (shape.rows, settings.max_inline_rows, "GRADLAB_MAX_INLINE_ROWS", ROWS_FIELD),
        (
            shape.features,
            settings.max_inline_features,
            "GRADLAB_MAX_INLINE_FEATURES",
            COLUMNS_FIELD,
        ),
    ):
        if size > cap:
            what = "rows" if fields is ROWS_FIELD else "features"
            message = f"the data has {size} {what}, above this server's limit of {cap} ({var})."
            problems.append(Problem(("data", fields.get(data.kind, "kind")), message))
    return problems


def _check_labels(spec: JobSpec, loss: str, shape: catalog.DataShape) -> list[Problem]:
    kind = spec.model.kind
    targets = catalog.TARGETS[catalog.head(kind, loss)]
    binary, categorical = targets == "binary", targets == "classes"
    if not (binary or categorical):
        return []  # real-valued targets: any finite y will do
    head = f"{kind} with {loss}"
    data = spec.data
    if isinstance(data, LineData | SklearnData) and not shape.labelled:
        field = "kind" if isinstance(data, LineData) else "name"
        return [
            Problem(
                ("data", field),
                f"{head} needs class labels, but the {getattr(data, 'name', 'line')} dataset has "
                "real-valued targets; use blobs, spiral, a labelled dataset or inline labels, "
                "or a regression loss.",
            )
        ]
    if shape.labelled:
        if binary and shape.n_classes != 2:
            fix = "choose breast_cancer" if isinstance(data, SklearnData) else "set n_classes to 2"
            return [
                Problem(
                    ("data", "name" if isinstance(data, SklearnData) else "n_classes"),
                    f"{head} needs labels 0 or 1, but this dataset has {shape.n_classes} classes; "
                    f"{fix} or use softmax_regression.",
                )
            ]
        return []
    assert isinstance(data, InlineData)
    y = np.asarray(data.y, dtype=np.float64)
    wrong = (y != 0) & (y != 1) if binary else ~((y >= 0) & (y == np.round(y)))
    for i in map(int, np.flatnonzero(wrong)[:1]):  # the first wrong label, found in C
        value = float(y[i])
        if binary and value not in (0.0, 1.0):
            return [
                Problem(("data", "y", i), f"{head} needs labels 0 or 1, but y[{i}] is {value:g}.")
            ]
        if categorical and not (value >= 0 and float(value).is_integer()):
            return [
                Problem(
                    ("data", "y", i),
                    f"{head} needs integer labels 0..K−1, but y[{i}] is {value:g}.",
                )
            ]
    if categorical and (shape.n_classes or 0) < 2:
        return [
            Problem(("data", "y"), f"{head} needs at least two classes, but y only has label 0.")
        ]
    return []


def _check_given(init: GivenInit, shapes: dict[str, tuple[int, ...]]) -> list[Problem]:
    problems: list[Problem] = []
    expected = ", ".join(f"{name} {list(s)}" for name, s in shapes.items())
    for name in init.params:
        if name not in shapes:
            problems.append(
                Problem(
                    ("init", "params", name),
                    f"this model has no parameter {name!r}; it has {expected}.",
                )
            )
    for name, want in shapes.items():
        if name not in init.params:
            problems.append(
                Problem(
                    ("init", "params"),
                    f"parameter {name!r} is missing; this model needs {expected}.",
                )
            )
            continue
        got = _shape_of(init.params[name])
        if got != want:
            got_text = "ragged" if got is None else str(list(got))
            problems.append(
                Problem(
                    ("init", "params", name),
                    f"{name} has shape {got_text}, but this model needs {list(want)}.",
                )
            )
    return problems
