"""How assignments, instances and submissions are shown: everything to instructors; to a
student their own instance and results, a withheld check as its name and points only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.accounts import Caller
from store.assignments import (
    FUNCTION,
    AssignmentSpec,
    student_seed,
    utcnow,
)
from store.assignments import (
    instance as instance_of,
)
from store.build import build
from store.grading import as_student_sees, revealed
from store.tables import Assignment, Submission

SIGNATURE = f"{FUNCTION}(params, X, y, l2) -> (loss, grads)"


BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "blockquote", "pre", "hr",
          "em", "strong", "code", "a", "br"}  # fmt: skip
"""The elements a rendered description may hold; anything else becomes its text."""


def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})


def markdown(text: str) -> str:
    """An assignment's description as HTML, safely: CommonMark with raw HTML escaped, and
    markdown-it's link check (no ``javascript:`` or ``data:`` URLs)."""
    return _parser().render(text)


def markdown_tree(text: str) -> list[Any]:
    """The description as element nodes ``[tag, {"href"}, *children]`` and text strings, for
    the dashboard to build with ``textContent`` (never parsing HTML): only :data:`BLOCKS`
    elements, and links only to http(s) or relative URLs."""
    from markdown_it.tree import SyntaxTreeNode

    def convert(node: Any) -> list[Any]:
        if node.type in ("text", "html_inline", "html_block"):
            return [node.content]
        if node.type in ("code_inline",):
            return [["code", {}, node.content]]
        if node.type in ("fence", "code_block"):
            return [["pre", {}, ["code", {}, node.content]]]
        if node.type in ("softbreak",):
            return ["\n"]
        children = [c for child in node.children for c in convert(child)]
        tag = node.tag if node.type != "root" else None
        if tag not in BLOCKS:
            return children
        attrs: dict[str, str] = {}
        href = str(node.attrs.get("href", "")) if tag == "a" else ""
        if href.startswith(("http://", "https://", "/", "#")):
            attrs["href"] = href
        return [[tag, attrs, *children]]

    return convert(SyntaxTreeNode(_parser().parse(text)))


def summary(row: Assignment, spec: AssignmentSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "submit": spec.submit,
        "due_at": spec.due_at,
        "published": spec.published,
        "max_score": spec.max_score,
        "href": f"/v1/assignments/{spec.name}",
    }


def _check(check: Any, show: bool) -> dict[str, Any]:
    if show:
        return check.model_dump(mode="json")
    return {"name": check.name, "points": check.points, "visibility": check.visibility}


def assignment(row: Assignment, spec: AssignmentSpec, caller: Caller) -> dict[str, Any]:
    """The assignment as ``caller`` sees it: a student gets no reference exercise (their
    instance says what to compute) and no parameters of a withheld check."""
    past_due = spec.past_due(utcnow())
    out = spec.model_dump(mode="json")
    out.update(
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        max_score=spec.max_score,
        past_due=past_due,
        description_html=markdown(spec.description),
        description_tree=markdown_tree(spec.description),
        checks=[
            _check(c, caller.sees_all or revealed(c.visibility, past_due)) for c in spec.checks
        ],
    )
    if not caller.sees_all:
        del out["exercise"]
    return out


def template(params: dict[str, Any], X: Any, exercise: Any) -> str:
    """A code template with the exercise's signature and every array's shape."""
    shapes = ", ".join(f"{n} {tuple(a.shape)}" for n, a in params.items())
    names = ", ".join(params)
    return (
        "import numpy as np\n\n\n"
        f"def {FUNCTION}(params, X, y, l2):\n"
        f'    """{exercise.model.kind} with the {exercise.resolved_loss} loss and L2 strength\n'
        "    l2 on the weights (loss includes 0.5 * l2 * sum of ||W||^2).\n\n"
        f"    X: {tuple(X.shape)}, y: ({X.shape[0]},); params: {shapes}.\n"
        "    Returns (loss, grads): grads has the same names and shapes as params.\n"
        '    """\n'
        f"    {names} = ({', '.join(f'params[{n!r}]' for n in params)})\n"
        "    loss = 0.0\n"
        "    grads = {name: np.zeros_like(p) for name, p in params.items()}\n"
        "    # your derivation here\n"
        "    return loss, grads\n"
    )


def instance(spec: AssignmentSpec, student: str) -> dict[str, Any]:
    """A student's instance: their exercise (data and initial parameters seeded for them
    with per_student_data), the arrays, what to write and a template. No solution."""
    exercise = instance_of(spec, student)
    built = build(exercise)
    public = exercise.model_dump(mode="json", exclude={"name", "tags", "gradient_check"})
    return {
        "student": student,
        "seed": student_seed(spec.name, student) if spec.per_student_data else None,
        "exercise": public,
        "data": {"X": built.data.X, "y": built.data.y},
        "params": built.params,
        "shapes": {n: list(a.shape) for n, a in built.params.items()},
        "signature": SIGNATURE,
        "template": template(built.params, built.data.X, exercise),
    }


def submission(
    sub: Submission, spec: AssignmentSpec, caller: Caller, attempt: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sub.id,
        "assignment": sub.assignment,
        "student": sub.owner,
        "attempt": attempt,
        "submitted_at": sub.submitted_at,
        "late": sub.late,
        "kind": sub.kind,
        "job_id": sub.job_id,
        "status": sub.status,
        "score": sub.score,
        "max_score": sub.max_score,
        "checks": sub.results,
        "reason": sub.reason,
        "graded_at": sub.graded_at,
    }
    if not caller.sees_all:
        out.update(as_student_sees(sub.results, spec.past_due(utcnow())))
    return out


def numbered(subs: Sequence[Submission], spec: AssignmentSpec, caller: Caller) -> list[dict]:
    """Submissions oldest first, each with its attempt number among its student's."""
    seen: dict[str, int] = {}
    out = []
    for sub in subs:
        seen[sub.owner] = seen.get(sub.owner, 0) + 1
        out.append(submission(sub, spec, caller, seen[sub.owner]))
    return out
