"""A spec's cost against the server's limits: its estimated peak memory and its gradient
checks' loss evaluations (``engine.estimate``), each over the limit a problem naming the
field to change."""

from __future__ import annotations

from engine import catalog, estimate
from service.errors import Problem
from store.settings import Settings
from store.spec import MLP, SGD, InlineData, JobSpec, Newton

# Which field sets a dataset's rows, and its columns, for each kind: where a limit points.
ROWS_FIELD = {"inline": "X", "line": "n_samples", "blobs": "n_samples", "spiral": "n_per_class"}
COLUMNS_FIELD = {"inline": "X", "blobs": "n_features"}


def check_cost(
    spec: JobSpec,
    shape: catalog.DataShape,
    shapes: dict[str, tuple[int, ...]],
    settings: Settings,
) -> list[Problem]:
    """The job's estimated peak memory and gradient-check evaluations against the limits."""
    problems = []
    optimizer = spec.optimizer
    cost = estimate.training_cost(
        spec.model.kind,
        spec.resolved_loss,
        shape,
        hidden_sizes=spec.model.hidden_sizes if isinstance(spec.model, MLP) else (),
        batch_rows=optimizer.batch_size if isinstance(optimizer, SGD) else None,
        newton=isinstance(optimizer, Newton),
        momentum=bool(getattr(optimizer, "momentum", 0.0)),
        inline=isinstance(spec.data, InlineData),
    )
    limit = settings.job_memory_mb * 2**20
    if cost.total > limit - estimate.RUNTIME:
        field = _cost_field(spec, cost.largest())
        advice = (
            "use gd or sgd: Newton's Hessian grows as the square of the parameter count"
            if field == ("optimizer", "kind")
            else f"make {'.'.join(field)} smaller"
        )
        problems.append(
            Problem(
                field,
                f"this job would need about {estimate.mb(cost.total)} for its arrays "
                f"({cost.describe()}) besides {estimate.mb(estimate.RUNTIME)} for the "
                f"interpreter, above this server's limit of {estimate.mb(limit)} "
                f"(GRADLAB_JOB_MEMORY_MB); {advice}.",
            )
        )
    checks = spec.gradient_check
    evaluations = estimate.check_evaluations(
        shapes,
        iterations=spec.iterations,
        every=checks.every,
        max_coordinates=checks.max_coordinates,
        references=checks.references,
    )
    if evaluations > settings.max_check_evaluations:
        knob = "every" if checks.max_coordinates is not None and checks.every else "max_coordinates"
        problems.append(
            Problem(
                ("gradient_check", knob),
                f"these gradient checks would evaluate the loss {evaluations:,} times, above "
                f"this server's limit of {settings.max_check_evaluations:,} "
                "(GRADLAB_MAX_CHECK_EVALUATIONS); check fewer coordinates or less often.",
            )
        )
    return problems


def _cost_field(spec: JobSpec, part: str) -> tuple[str, ...]:
    """For the largest part of a job's memory, the field that makes it smaller."""
    mlp = isinstance(spec.model, MLP)
    if part == "hessian":
        return ("optimizer", "kind")
    if part == "activations" and isinstance(spec.optimizer, SGD):
        return ("optimizer", "batch_size")
    if part in ("activations", "parameters") and mlp:
        return ("model", "hidden_sizes")
    if part == "parameters":
        return ("data", COLUMNS_FIELD.get(spec.data.kind, "kind"))
    return ("data", ROWS_FIELD.get(spec.data.kind, "kind"))
