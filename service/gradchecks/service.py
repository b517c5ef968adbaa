"""What ``POST /v1/gradient-checks`` does: validate the exercise as a job would be, bound the
work, and hand the numbers to the engine (:func:`engine.studentcheck.check_gradients`).

Nothing is stored or queued: the answer is computed in the request, in the API process.
So the exercise goes through the same checks a job's spec does (``service.jobs.validation``:
a loss the model takes, labels the loss can use, the data's size limits, the parameter count,
the memory estimate), with ``params`` in the place of a job's given initial parameters, and
then through one more bound: rows × parameters at most ``GRADLAB_MAX_GRADIENT_CHECK_WORK``,
which keeps one call to a few forward and backward passes of a small net.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from engine import EngineError
from engine.studentcheck import check_gradients
from service.errors import InvalidSpec, Problem
from service.gradchecks.schemas import GradientCheckRequest
from service.jobs.cost import ROWS_FIELD
from service.jobs.validation import check_spec, data_shape, param_shapes
from store.build import build_data, build_model
from store.settings import Settings
from store.spec import GD, GivenInit, GradientCheckSpec, JobSpec

GIVEN = ("init", "params")
"""Where a job's validation puts a problem with the parameters: here they are ``params``."""


def as_job(request: GradientCheckRequest) -> JobSpec:
    """The exercise as the job spec that would train from ``params``: one full-batch step,
    no checks of its own."""
    return JobSpec(
        model=request.model,
        loss=request.loss,
        loss_options=request.loss_options,
        data=request.data,
        l2=request.l2,
        optimizer=GD(kind="gd"),
        iterations=1,
        init=GivenInit(kind="given", params=request.params),
        gradient_check=GradientCheckSpec(references=[]),
    )


def _as_params(problem: Problem) -> Problem:
    loc = problem.loc
    if loc[: len(GIVEN)] == GIVEN:
        return problem._replace(loc=("params", *loc[len(GIVEN) :]))
    return problem


def validate(request: GradientCheckRequest, spec: JobSpec, settings: Settings) -> None:
    """Raise :class:`InvalidSpec` naming every field that is wrong, or return quietly."""
    try:
        check_spec(spec, settings)
    except InvalidSpec as exc:
        raise InvalidSpec([_as_params(p) for p in exc.problems]) from None
    shapes = param_shapes(spec, data_shape(spec))
    expected = ", ".join(f"{name} {list(s)}" for name, s in shapes.items())
    problems = [
        Problem(("gradients", name), f"is missing; this model needs {expected}.")
        for name in shapes
        if name not in request.gradients
    ]
    problems += [
        Problem(("gradients", name), f"this model has no parameter {name!r}; it has {expected}.")
        for name in request.gradients
        if name not in shapes
    ]
    if problems:
        raise InvalidSpec(problems)
    rows = data_shape(spec).rows
    n_params = sum(math.prod(s) for s in shapes.values())
    if rows * n_params > settings.max_gradient_check_work:
        field = ("data", ROWS_FIELD.get(spec.data.kind, "kind"))
        raise InvalidSpec(
            [
                Problem(
                    field,
                    f"checking {n_params} parameters on {rows} rows is {rows * n_params:,} "
                    f"row-parameters of work, above this server's limit of "
                    f"{settings.max_gradient_check_work:,} (GRADLAB_MAX_GRADIENT_CHECK_WORK); "
                    "use fewer rows or a smaller model.",
                )
            ]
        )


def gradient_arrays(gradients: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The gradients as float64 arrays (null → NaN); a ragged one is a 422 naming it."""
    out, problems = {}, []
    for name, value in gradients.items():
        try:
            out[name] = np.array(value, dtype=np.float64)
        except ValueError:
            why = "is ragged: its rows do not all have the same length."
            problems.append(Problem(("gradients", name), why))
    if problems:
        raise InvalidSpec(problems)
    return out


def check(request: GradientCheckRequest, settings: Settings) -> dict[str, Any]:
    """The answer (``schemas.GradientCheckAnswer``) for one request."""
    spec = as_job(request)
    validate(request, spec, settings)
    gradients = gradient_arrays(request.gradients)
    data = build_data(spec)
    model = build_model(spec, data)
    try:
        return check_gradients(
            model,
            request.params,
            data.X,
            data.y,
            request.l2,
            gradients,
            loss_value=request.loss_value,
            rtol=request.rtol,
            atol=request.atol,
            seed=request.seed,
        )
    except EngineError as exc:  # the loss overflows at these parameters
        raise InvalidSpec([Problem(("params",), str(exc))]) from None
