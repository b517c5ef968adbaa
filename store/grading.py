"""Grading, in one place for the API and the worker: from the evidence of a submission to a
score per check, and what a student may see of it.

Two kinds of evidence: the answer of :func:`engine.studentcheck.check_gradients` (gradients
given as numbers, graded at once: :func:`grade_answer`), and a finished job's stored checks,
status and error (code run as a job: :func:`grade_job`).

Grading fails closed. A job the grader could not finish — it crashed (``internal_error``),
lost its worker (``worker_lost``), was cancelled, or lacks a record it should have — leaves
the submission ``not_gradable`` with 0 points and the reason, never a pass, and regradable.
A failure of the student's own (:data:`STUDENT_FAILURES`) is graded: the checks it prevented
score 0, with its message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from store.assignments import CheckSpec
from store.status import ACTIVE, Status


class GradeStatus(StrEnum):
    """Where a submission's grade is (``submissions.status``)."""

    GRADED = "graded"
    PENDING = "pending"  # its job has not finished
    NOT_GRADABLE = "not_gradable"  # the grader failed: 0 points, the reason, regradable


STUDENT_FAILURES = frozenset(
    {"student_error", "time_limit", "memory_limit", "bad_return", "diverged"}
)
"""A job's ``error.type`` that is the student's code's doing (issue 12's sandbox types, and
divergence of the training their gradients drive): graded, never a pass. Any other failure
type is the grader's: not_gradable."""

REFERENCE_OF = {"solution": "solution", "numeric": "numeric", "taylor": "taylor"}
"""The stored check (``gradient_checks.reference``) each check kind is graded from."""


@dataclass
class Grade:
    status: GradeStatus
    score: float
    max_score: float
    results: list[dict[str, Any]]
    diagnoses: dict[str, str] = field(default_factory=dict)  # tensor → diagnosis code
    reason: str | None = None


def _result(check: CheckSpec, passed: bool, message: str) -> dict[str, Any]:
    return {
        "name": check.name,
        "kind": check.kind,
        "visibility": check.visibility,
        "points": float(check.points) if passed else 0.0,
        "max_points": float(check.points),
        "passed": passed,
        "message": message,
    }


def _graded(checks: Sequence[CheckSpec], results: list[dict[str, Any]], **kw: Any) -> Grade:
    return Grade(
        GradeStatus.GRADED,
        float(sum(r["points"] for r in results)),
        float(sum(c.points for c in checks)),
        results,
        **kw,
    )


def not_gradable(checks: Sequence[CheckSpec], reason: str) -> Grade:
    """0 points on every check, each saying why: the one answer for a grader's failure."""
    message = f"Not graded: {reason} An instructor can regrade it."
    results = [_result(c, False, message) for c in checks]
    return Grade(
        GradeStatus.NOT_GRADABLE, 0.0, float(sum(c.points for c in checks)), results, reason=reason
    )


def pending(checks: Sequence[CheckSpec]) -> Grade:
    results = [_result(c, False, "Being graded.") for c in checks]
    return Grade(GradeStatus.PENDING, 0.0, float(sum(c.points for c in checks)), results)


def _tensors(check: CheckSpec, parameters: Mapping[str, Any]) -> list[str]:
    return [check.tensor] if check.tensor is not None else list(parameters)


def _relative(yours: float | None, reference: float | None) -> float | None:
    if yours is None or reference is None or not math.isfinite(yours):
        return None
    return abs(yours - reference) / max(abs(yours), abs(reference), 1e-300)


def _loss_verdict(check: CheckSpec, yours: float | None, reference: float | None, what: str):
    err = _relative(yours, reference)
    if yours is None:
        return False, f"No {what} was given, so it could not be compared."
    if err is None:
        return False, f"Your {what} is not finite."
    passed = err <= check.tolerance
    verdict = "matches" if passed else "does not match"
    return passed, (
        f"Your {what} {yours:.10g} {verdict} the reference's {reference:.10g} "
        f"(relative error {err:.2e}; at most {check.tolerance:g} passes)."
    )


def _solution_message(names: list[str], parameters: Mapping[str, Any]) -> tuple[bool, str]:
    wrong = [n for n in names if not parameters[n]["passed"]]
    if not wrong:
        return True, ", ".join(f"d{n}" for n in names) + ": correct."
    return False, " ".join(parameters[n]["diagnosis"]["message"] for n in wrong)


def _taylor_message(taylor: Mapping[str, Any]) -> tuple[bool, str]:
    if not taylor.get("available", True) or taylor.get("slope") is None:
        return False, f"The Taylor test could not run: {taylor.get('reason') or 'no slope'}."
    passed = taylor.get("passed") is True
    slope, need = taylor["slope"], taylor.get("min_slope", 1.8)
    how = "shrinks as h²: a gradient of this loss" if passed else "does not shrink as h²"
    return passed, f"Taylor test: the remainder {how} (slope {slope:.2f}; {need:g} passes)."


def grade_answer(checks: Sequence[CheckSpec], answer: Mapping[str, Any]) -> Grade:
    """The grade of gradients given as numbers, from ``check_gradients``' answer."""
    parameters, results = answer["parameters"], []
    for check in checks:
        if check.kind == "solution":
            passed, message = _solution_message(_tensors(check, parameters), parameters)
        elif check.kind == "taylor":
            passed, message = _taylor_message(answer["taylor"])
        elif check.kind == "loss":
            loss = answer["loss"]
            passed, message = _loss_verdict(check, loss["yours"], loss["reference"], "loss_value")
        else:  # excluded when the assignment is created (store.assignments.KINDS_FOR)
            passed, message = False, f"A {check.kind} check needs code, not numbers."
        results.append(_result(check, passed, message))
    diagnoses = {name: t["diagnosis"]["code"] for name, t in parameters.items()}
    return _graded(checks, results, diagnoses=diagnoses)


@dataclass
class JobEvidence:
    """What a finished job of a student's code left to grade it by.

    checks: its stored gradient checks (``gradient_checks.result``), each with
    ``iteration``, ``reference`` (numeric | solution | taylor), ``passed`` and per tensor
    under ``parameters`` the figures, and for ``solution`` a ``passed`` and a ``diagnosis``.
    losses: iteration → (the student's loss, the reference loss at the same parameters).
    reference_status, reference_final_loss: the status and final loss of the reference run
    linked to the job (None without one)."""

    status: str
    error_type: str | None = None
    error_message: str | None = None
    checks: Sequence[Mapping[str, Any]] = ()
    losses: Mapping[int, tuple[float, float]] = field(default_factory=dict)
    final_loss: float | None = None
    reference_status: str | None = None
    reference_final_loss: float | None = None


def _tensor_passed(record: Mapping[str, Any], tensor: Mapping[str, Any]) -> bool:
    if "passed" in tensor:
        return tensor["passed"] is True
    err = tensor.get("max_relative_error")
    return err is not None and err <= record.get("rtol", 0.0)


class _Missing(Exception):
    """A record a succeeded job should have and has not: the grader's failure."""


def _from_record(check: CheckSpec, record: Mapping[str, Any]) -> tuple[bool, str]:
    if record.get("available") is False or record.get("passed") is None:
        raise _Missing(
            f"the {record.get('reference')} check at iteration {check.iteration} could not "
            f"run ({record.get('reason') or 'no verdict'})."
        )
    if check.kind == "taylor":
        return _taylor_message(record)
    parameters = record["parameters"]
    names = _tensors(check, parameters)
    if any(n not in parameters for n in names):
        raise _Missing(f"the job's check at iteration {check.iteration} has no {names}.")
    if check.kind == "solution" and all("diagnosis" in parameters[n] for n in names):
        verdicts = {
            n: {**parameters[n], "passed": _tensor_passed(record, parameters[n])} for n in names
        }
        return _solution_message(names, verdicts)
    wrong = [n for n in names if not _tensor_passed(record, parameters[n])]
    what = "against central differences of your own loss" if check.kind == "numeric" else ""
    if not wrong:
        return True, f"{', '.join('d' + n for n in names)}: correct {what}".strip() + "."
    errors = ", ".join(f"d{n} {parameters[n].get('max_relative_error')}" for n in wrong)
    return False, f"Wrong {what}: max relative error {errors}.".replace("  ", " ")


def grade_job(checks: Sequence[CheckSpec], evidence: JobEvidence) -> Grade:
    """The grade of a code submission from its job's outcome, failing closed."""
    status = evidence.status
    if status in ACTIVE:
        return pending(checks)
    if status == Status.CANCELLED:
        return not_gradable(checks, "the grading job was cancelled.")
    own_failure = status == Status.FAILED and evidence.error_type in STUDENT_FAILURES
    if status == Status.FAILED and not own_failure:
        return not_gradable(
            checks,
            f"the grader failed ({evidence.error_type or 'unknown'}: "
            f"{evidence.error_message or 'no message'}).",
        )
    if status != Status.SUCCEEDED and not own_failure:
        return not_gradable(checks, f"the grading job ended {status!r}.")
    compares_runs = any(c.kind == "final_loss" for c in checks)
    if compares_runs and not own_failure and evidence.reference_status in ACTIVE:
        return pending(checks)  # graded when the reference run ends (store.submissions)
    prevented = f"Prevented by {evidence.error_type}: {evidence.error_message}"
    records = {(r["reference"], int(r["iteration"])): r for r in evidence.checks}
    results: list[dict[str, Any]] = []
    diagnoses: dict[str, str] = {}
    try:
        for check in checks:
            if check.kind in REFERENCE_OF:
                record = records.get((REFERENCE_OF[check.kind], check.iteration))
                if record is None:
                    if own_failure:
                        results.append(_result(check, False, prevented))
                        continue
                    raise _Missing(
                        f"the job recorded no {check.kind} check at iteration {check.iteration}."
                    )
                passed, message = _from_record(check, record)
            elif check.kind == "loss":
                pair = evidence.losses.get(check.iteration)
                if pair is None:
                    if own_failure:
                        results.append(_result(check, False, prevented))
                        continue
                    raise _Missing(f"the job recorded no loss at iteration {check.iteration}.")
                passed, message = _loss_verdict(check, pair[0], pair[1], "loss")
            else:  # final_loss
                if own_failure:
                    results.append(_result(check, False, prevented))
                    continue
                if evidence.reference_status != Status.SUCCEEDED:
                    raise _Missing(
                        f"the reference run ended {evidence.reference_status or 'missing'}."
                    )
                passed, message = _loss_verdict(
                    check, evidence.final_loss, evidence.reference_final_loss, "final loss"
                )
            results.append(_result(check, passed, message))
    except _Missing as exc:
        return not_gradable(checks, str(exc))
    for record in evidence.checks:
        if record["reference"] == "solution" and not diagnoses:
            diagnoses = {
                n: t["diagnosis"]["code"]
                for n, t in record.get("parameters", {}).items()
                if "diagnosis" in t
            }
    return _graded(checks, results, diagnoses=diagnoses)


def revealed(visibility: str, past_due: bool) -> bool:
    """Whether a student sees a check's result: visible at once, after_due_date once the due
    date has passed, hidden never."""
    return visibility == "visible" or (visibility == "after_due_date" and past_due)


def as_student_sees(results: Sequence[Mapping[str, Any]], past_due: bool) -> dict[str, Any]:
    """A submission's check results as its student sees them: a withheld check as its name,
    its points and its visibility only. ``score`` counts the revealed checks' points;
    ``withheld_points`` is what the withheld ones are worth."""
    shown, score, withheld = [], 0.0, 0.0
    for r in results:
        if revealed(r["visibility"], past_due):
            shown.append(dict(r))
            score += r["points"]
        else:
            keep = ("name", "visibility", "max_points")
            shown.append({**{k: r[k] for k in keep}, "withheld": True})
            withheld += r["max_points"]
    return {"checks": shown, "score": score, "withheld_points": withheld}
