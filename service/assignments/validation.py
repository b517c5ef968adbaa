"""The rules of an assignment that need several fields at once: the exercise is a job this
server would run, each check's kind fits ``submit``, its tensor is one the model has, its
iteration one the job checks, the check names are unique, and ``per_student_data`` has
something to vary."""

from __future__ import annotations

from service.errors import InvalidSpec, Problem
from service.jobs.validation import check_spec, data_shape, param_shapes
from store.assignments import KINDS_FOR, AssignmentSpec, seeded_parts
from store.settings import Settings


def validate(spec: AssignmentSpec, settings: Settings) -> None:
    """Raise :class:`InvalidSpec` naming every field that is wrong, or return quietly."""
    try:
        check_spec(spec.exercise, settings)
    except InvalidSpec as exc:
        raise InvalidSpec([p._replace(loc=("exercise", *p.loc)) for p in exc.problems]) from None
    problems: list[Problem] = []
    shapes = param_shapes(spec.exercise, data_shape(spec.exercise))
    kinds = KINDS_FOR[spec.submit]
    every, last = spec.exercise.gradient_check.every, spec.exercise.iterations - 1
    seen: set[str] = set()
    for i, check in enumerate(spec.checks):
        where = ("checks", i)
        if check.name in seen:
            problems.append(Problem((*where, "name"), f"{check.name!r} names two checks."))
        seen.add(check.name)
        if check.kind not in kinds:
            problems.append(
                Problem(
                    (*where, "kind"),
                    f"a {check.kind} check cannot grade submit: {spec.submit}; use one of "
                    f"{', '.join(kinds)}.",
                )
            )
        if check.tensor is not None and check.tensor not in shapes:
            problems.append(
                Problem(
                    (*where, "tensor"),
                    f"the model has no {check.tensor!r}; it has {', '.join(shapes)}.",
                )
            )
        if spec.submit == "gradients" and check.iteration != 0:
            why = "gradients are given at the initial parameters: use 0."
            problems.append(Problem((*where, "iteration"), why))
        elif check.iteration > last or (
            check.iteration not in (0, last) and (not every or check.iteration % every)
        ):
            problems.append(
                Problem(
                    (*where, "iteration"),
                    f"the exercise checks gradients at iterations 0 and {last}"
                    + (f" and every {every}" if every else "")
                    + "; grade one of those (or set exercise.gradient_check.every).",
                )
            )
    if spec.per_student_data and not seeded_parts(spec.exercise):
        problems.append(
            Problem(
                ("per_student_data",),
                "the exercise has neither generated data nor a random initialisation to seed "
                "per student.",
            )
        )
    if problems:
        raise InvalidSpec(problems)
