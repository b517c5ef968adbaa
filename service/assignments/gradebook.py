"""The gradebook of an assignment, for instructors: per student the submission that counts
(the latest, or the best), as JSON, CSV and Gradescope's autograder ``results.json``; and
the insights, how many got each check right and the commonest diagnosis per tensor."""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

from sqlalchemy.orm import Session

from service.assignments import repository
from service.assignments.service import get, require_staff
from service.errors import NotFound
from store.accounts import Caller
from store.assignments import AssignmentSpec
from store.grading import GradeStatus
from store.tables import Submission

COLUMNS = ("student", "score", "max_score", "submitted_at", "late", "attempts", "status")

GRADESCOPE_VISIBILITY = {
    "visible": "visible",
    "hidden": "hidden",
    "after_due_date": "after_due_date",
}
"""A check's visibility as Gradescope's autograder names it (it also has after_published,
which no gradlab check maps to)."""


def counted(spec: AssignmentSpec, subs: list[Submission]) -> Submission | None:
    """The submission the gradebook counts: the latest, or the best (the latest of the best
    scores); ``subs`` oldest first."""
    if not subs:
        return None
    if spec.policy == "latest":
        return subs[-1]
    return max(reversed(subs), key=lambda s: s.score)  # max keeps the first: the latest


def _by_student(session: Session, name: str, caller: Caller) -> tuple[AssignmentSpec, dict]:
    require_staff(caller, "read the gradebook")
    _, spec = get(session, name, caller)
    by: dict[str, list[Submission]] = {s: [] for s in repository.students(session)}
    for sub in repository.submissions(session, name, caller):
        by.setdefault(sub.owner, []).append(sub)
    return spec, dict(sorted(by.items()))


def grades(session: Session, name: str, caller: Caller) -> dict[str, Any]:
    spec, by = _by_student(session, name, caller)
    rows = []
    for student, subs in by.items():
        sub = counted(spec, subs)
        rows.append(
            {
                "student": student,
                "score": None if sub is None else sub.score,
                "max_score": spec.max_score,
                "submitted_at": None if sub is None else sub.submitted_at,
                "late": None if sub is None else sub.late,
                "attempts": len(subs),
                "status": "missing" if sub is None else sub.status,
                "submission_id": None if sub is None else sub.id,
            }
        )
    return {"assignment": name, "policy": spec.policy, "grades": rows}


def as_csv(book: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in book["grades"]:
        values = []
        for column in COLUMNS:
            value = row[column]
            if column == "submitted_at" and value is not None:
                value = value.isoformat()
            values.append(
                "" if value is None else str(value).lower() if column == "late" else value
            )
        writer.writerow(values)
    return out.getvalue()


def gradescope(session: Session, name: str, caller: Caller, student: str) -> dict[str, Any]:
    """``student``'s counted submission as Gradescope's ``results.json``."""
    spec, by = _by_student(session, name, caller)
    if student not in by:
        raise NotFound(f"There is no student {student!r}.")
    sub = counted(spec, by[student])
    if sub is None:
        tests = [
            {
                "name": c.name,
                "score": 0.0,
                "max_score": c.points,
                "output": "No submission.",
                "visibility": GRADESCOPE_VISIBILITY[c.visibility],
            }
            for c in spec.checks
        ]
        return {"score": 0.0, "output": "No submission.", "tests": tests}
    tests = [
        {
            "name": r["name"],
            "score": r["points"],
            "max_score": r["max_points"],
            "output": r["message"],
            "visibility": GRADESCOPE_VISIBILITY[r["visibility"]],
        }
        for r in sub.results
    ]
    output = f"Submitted {sub.submitted_at.isoformat()}" + (" (late)." if sub.late else ".")
    if sub.status == GradeStatus.NOT_GRADABLE:
        output = f"Not gradable: {sub.reason}"
    return {"score": sub.score, "output": output, "tests": tests}


def _phrase(code: str) -> str:
    return code.replace("_", " ")


def insights(session: Session, name: str, caller: Caller) -> dict[str, Any]:
    """Over the counted submissions: per check how many passed; per tensor the diagnoses,
    commonest first ("41 of 120: dW not averaged"); the scores' histogram."""
    spec, by = _by_student(session, name, caller)
    counted_subs = [s for s in (counted(spec, subs) for subs in by.values()) if s is not None]
    n = len(counted_subs)
    passed = Counter(r["name"] for s in counted_subs for r in s.results if r["passed"])
    checks = [{"name": c.name, "passed": passed[c.name], "of": n} for c in spec.checks]
    per_tensor: dict[str, Counter[str]] = {}
    for sub in counted_subs:
        for tensor, code in sub.diagnoses.items():
            per_tensor.setdefault(tensor, Counter())[code] += 1
    diagnoses = {
        tensor: [
            {
                "code": code,
                "count": count,
                "of": n,
                "summary": f"{count} of {n}: d{tensor} {_phrase(code)}",
            }
            for code, count in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        for tensor, codes in sorted(per_tensor.items())
    }
    histogram = Counter(s.score for s in counted_subs)
    return {
        "assignment": name,
        "students": n,
        "checks": checks,
        "diagnoses": diagnoses,
        "scores": [{"score": k, "count": v} for k, v in sorted(histogram.items())],
        "not_gradable": sum(s.status == GradeStatus.NOT_GRADABLE for s in counted_subs),
    }
