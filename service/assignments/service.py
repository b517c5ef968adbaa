"""What the assignments API does, between the thin router and the repository: create and edit
assignments, show each student their instance, take and grade submissions, regrade.

Gradients given as numbers are graded here, at once, by the same code ``POST
/v1/gradient-checks`` runs (:func:`service.gradchecks.service.check`); code is graded from
its job (:mod:`store.submissions`). Who may see what of a grade is :mod:`store.grading`'s.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from service.assignments import code, repository, views
from service.assignments.schemas import SubmissionBody
from service.assignments.validation import validate
from service.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidSpec,
    NotFound,
    Problem,
    SandboxUnavailable,
)
from service.gradchecks import service as gradchecks
from service.gradchecks.schemas import EXERCISE_FIELDS, GradientCheckRequest
from store.accounts import Caller, Role
from store.assignments import AssignmentEdit, AssignmentSpec, instance, utcnow
from store.build import build
from store.db import Database
from store.grading import Grade, GradeStatus, grade_answer, not_gradable, pending
from store.settings import Settings
from store.submissions import grade_code, pending_finished, settle_job, store_grade
from store.tables import Assignment, Job, Submission

MAX_SUBMISSIONS_RETRY_AFTER = 3600
"""Retry-After of a 429 for a student who used all their submissions: none frees by itself,
so an hour (an instructor may raise max_submissions meanwhile)."""


def aware(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored one is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def spec_of(row: Assignment) -> AssignmentSpec:
    return AssignmentSpec.model_validate(row.spec)


def no_assignment(name: str) -> NotFound:
    return NotFound(f"There is no assignment {name!r}.")


def require_staff(caller: Caller, what: str) -> None:
    if not caller.sees_all:
        raise Forbidden(f"Only instructors and admins may {what}.")


def get(session: Session, name: str, caller: Caller) -> tuple[Assignment, AssignmentSpec]:
    """The assignment, or NotFound when there is none ``caller`` may see (students see only
    published ones)."""
    row = repository.get(session, name)
    if row is None:
        raise no_assignment(name)
    spec = spec_of(row)
    if not caller.sees_all and not spec.published:
        raise no_assignment(name)
    return row, spec


def create(
    session: Session, spec: AssignmentSpec, settings: Settings, caller: Caller
) -> Assignment:
    require_staff(caller, "create assignments")
    validate(spec, settings)
    if repository.get(session, spec.name) is not None:
        raise Conflict(f"There is already an assignment {spec.name!r}; edit it with PATCH.")
    now = utcnow()
    row = Assignment(
        name=spec.name, owner=caller.name, spec=spec.stored(), created_at=now, updated_at=now
    )
    repository.add(session, row)
    return row


def listing(session: Session, caller: Caller) -> list[dict[str, Any]]:
    out = []
    for row in repository.list_all(session):
        spec = spec_of(row)
        if caller.sees_all or spec.published:
            out.append(views.summary(row, spec))
    return out


def edit(
    session: Session, name: str, change: AssignmentEdit, settings: Settings, caller: Caller
) -> Assignment:
    """Change an assignment's fields; its submissions are kept as they were graded until a
    regrade."""
    require_staff(caller, "edit assignments")
    row, spec = get(session, name, caller)
    edited = spec.edited(change)
    validate(edited, settings)
    row.spec, row.updated_at = edited.stored(), utcnow()
    session.flush()
    return row


def student_of(session: Session, name: str, caller: Caller, student: str | None) -> str:
    """Whose instance or results a request is about: a student's own, always; a staff
    member's choice. Another student's is answered as a student that does not exist."""
    if student is None or student == caller.name:
        return caller.name
    if not caller.sees_all or repository.user(session, student) is None:
        raise NotFound(f"There is no student {student!r}.")
    return student


def view(session: Session, name: str, caller: Caller, student: str | None) -> dict[str, Any]:
    """The assignment as ``caller`` may see it, with the instance of a student: the caller's
    own (a student), or the one asked for (staff; none unless asked)."""
    row, spec = get(session, name, caller)
    out = views.assignment(row, spec, caller)
    if not caller.sees_all or student is not None:
        out["instance"] = views.instance(spec, student_of(session, name, caller, student))
    return out


# --- submitting ------------------------------------------------------------------------------


def _check_pace(session: Session, spec: AssignmentSpec, caller: Caller, now: datetime) -> None:
    """429 with Retry-After when the student has used their submissions or submits again
    sooner than the interval allows; nothing is stored."""
    if caller.role is not Role.STUDENT:
        return
    repository.lock_student(session, caller.name)
    count, last = repository.attempts(session, spec.name, caller.name)
    if spec.max_submissions is not None and count >= spec.max_submissions:
        raise Busy(
            f"{caller.name} has made {count} submissions to {spec.name!r}, its limit "
            "(max_submissions).",
            MAX_SUBMISSIONS_RETRY_AFTER,
            status=429,
            kind="too_many_submissions",
        )
    if spec.min_interval_seconds and last is not None:
        wait = spec.min_interval_seconds - (now - aware(last)).total_seconds()
        if wait > 0:
            raise Busy(
                f"{spec.name!r} takes one submission every {spec.min_interval_seconds:g} s "
                f"(min_interval_seconds); submit again in {math.ceil(wait)} s.",
                math.ceil(wait),
                status=429,
                kind="too_soon",
            )


def _answer_of(spec: AssignmentSpec, body: SubmissionBody) -> dict[str, Any]:
    wanted, other = ("gradients", "code") if spec.submit == "gradients" else ("code", "gradients")
    problems = []
    if getattr(body, wanted) is None:
        problems.append(Problem((wanted,), f"is required: this assignment takes {wanted}."))
    if getattr(body, other) is not None:
        problems.append(Problem((other,), f"this assignment takes {wanted}, not {other}."))
    if problems:
        raise InvalidSpec(problems)
    if spec.submit == "code":
        return {"code": body.code}
    return {"gradients": body.gradients, "loss_value": body.loss_value}


def grade_gradients(
    spec: AssignmentSpec, student: str, answer: dict[str, Any], settings: Settings
) -> Grade:
    """Gradients at the student's instance's initial parameters, checked by
    ``POST /v1/gradient-checks``' own code, then scored. A missing or extra tensor or a
    non-numeric array is a 422 naming it under ``gradients``."""
    exercise = instance(spec, student)
    options = exercise.gradient_check
    params = {k: v.tolist() for k, v in build(exercise).params.items()}
    request = GradientCheckRequest.model_validate(
        {
            **exercise.model_dump(include=set(EXERCISE_FIELDS)),
            "params": params,
            "gradients": answer["gradients"],
            "loss_value": answer.get("loss_value"),
            "rtol": options.rtol,
            "atol": options.atol,
        }
    )
    return grade_answer(spec.checks, gradchecks.check(request, settings))


def regrade_one(
    session: Session, spec: AssignmentSpec, sub: Submission, settings: Settings
) -> Grade:
    """``sub``'s grade with the assignment as it is now. Gradients are graded again; code
    from its job's evidence, unless the grader failed on that job (it is gone, cancelled, or
    failed with an error not the student's own): then the same code gets a fresh job of the
    student's, on their instance, set as ``sub.job_id``, and the grade is pending until it
    ends. A server that cannot run it now leaves it not_gradable, saying why."""
    if sub.kind == "gradients":
        try:
            return grade_gradients(spec, sub.owner, sub.answer, settings)
        except InvalidSpec as exc:  # the exercise was edited into one this answer misses
            return not_gradable(spec.checks, f"the answer no longer fits the exercise: {exc}")
    grade = grade_code(session, spec, sub)
    job = session.get(Job, sub.job_id) if sub.job_id else None
    if grade.status != GradeStatus.NOT_GRADABLE or not code.grader_failed(job):
        return grade
    exercise = instance(spec, sub.owner)
    try:
        fresh = code.rerun_job(session, exercise, sub.answer["code"], settings, sub.owner)
    except (SandboxUnavailable, InvalidSpec) as exc:
        return not_gradable(spec.checks, f"{grade.reason} It could not be run again: {exc}")
    sub.job_id = fresh.id
    return pending(spec.checks)


def submit(
    session: Session, name: str, body: SubmissionBody, settings: Settings, caller: Caller
) -> dict[str, Any]:
    """Store a submission of ``caller``'s and grade it (at once for gradients; code gets a
    job, graded when it ends); its view. Late, refused, over quota or too soon: nothing is
    stored."""
    _, spec = get(session, name, caller)
    now = utcnow()
    late = spec.past_due(now)
    if late and spec.late == "reject":
        raise PastDue(f"{name!r} was due at {spec.due_at}; it takes no late submissions.")
    answer = _answer_of(spec, body)
    _check_pace(session, spec, caller, now)
    sub = Submission(
        assignment=name,
        owner=caller.name,
        submitted_at=now,
        late=late,
        kind=spec.submit,
        answer=answer,
        max_score=spec.max_score,
    )
    if spec.submit == "gradients":
        store_grade(sub, grade_gradients(spec, caller.name, answer, settings))
    else:
        job = code.start_job(session, instance(spec, caller.name), answer["code"], settings, caller)
        sub.job_id = job.id
        sub.status = GradeStatus.PENDING
    session.add(sub)
    session.flush()
    return views.submission(sub, spec, caller, repository.attempt_number(session, sub))


class PastDue(Conflict):
    type = "past_due"


def regrade(session: Session, name: str, settings: Settings, caller: Caller) -> dict[str, Any]:
    """Grade again, with the assignment as it is now, each student's latest submission (every
    submission when the best one counts): how many, the ids of those whose grade changed,
    and of those whose code runs again in a fresh job (``rerun``: the grader had failed on
    the job before; they are pending until it ends)."""
    require_staff(caller, "regrade")
    _, spec = get(session, name, caller)
    subs = repository.submissions(session, name, caller)
    if spec.policy == "latest":
        latest: dict[str, Submission] = {}
        for sub in subs:  # oldest first: the last one wins
            latest[sub.owner] = sub
        subs = list(latest.values())
    changed, rerun = [], []
    for sub in subs:
        before = (sub.status, sub.score, sub.results, sub.job_id)
        store_grade(sub, regrade_one(session, spec, sub, settings))
        if sub.job_id != before[3]:
            rerun.append(sub.id)
        if (sub.status, sub.score, sub.results) != before[:3]:
            changed.append(sub.id)
    session.flush()
    return {"regraded": len(subs), "changed": changed, "rerun": rerun}


def submissions(
    session: Session, name: str, caller: Caller, student: str | None
) -> list[dict[str, Any]]:
    _, spec = get(session, name, caller)
    owner = None if student is None else student_of(session, name, caller, student)
    subs = repository.submissions(session, name, caller, owner)
    return views.numbered(subs, spec, caller)


def submission(session: Session, name: str, sub_id: str, caller: Caller) -> dict[str, Any]:
    _, spec = get(session, name, caller)
    sub = repository.submission(session, name, sub_id, caller)
    if sub is None:
        raise NotFound(f"There is no submission {sub_id!r}.")
    return views.submission(sub, spec, caller, repository.attempt_number(session, sub))


def settle(db: Database, name: str) -> None:
    """Grade the assignment's code submissions whose jobs have ended since (the worker does
    it as it ends them; this catches any it could not)."""
    with db.read_session() as session:
        jobs = pending_finished(session, name)
    if jobs:
        with db.write_session() as session:
            for job_id in jobs:
                settle_job(session, job_id)
