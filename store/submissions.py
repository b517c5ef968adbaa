"""Settling a code submission: when its job has finished, grade it from what the job left
(:func:`store.grading.grade_job`) and store the grade. Shared by the API (it settles what it
reads, and regrades) and the worker (which settles a job's submission when it ends it)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from store.assignments import AssignmentSpec, CheckSpec, utcnow
from store.chunks import series
from store.grading import Grade, GradeStatus, JobEvidence, grade_job, not_gradable
from store.status import TERMINAL
from store.tables import Assignment, GradientCheck, Job, MetricChunk, Submission

log = logging.getLogger("gradlab.grading")


def losses_at(
    session: Session, job_id: str, iterations: Iterable[int]
) -> dict[int, tuple[float, float]]:
    """The student's loss and the reference loss at each of ``iterations`` the job recorded
    (a student's job stores both per point)."""
    wanted = sorted(set(iterations))
    if not wanted:
        return {}
    query = select(
        MetricChunk.first_iteration, MetricChunk.count, MetricChunk.loss, MetricChunk.reference_loss
    ).where(
        MetricChunk.job_id == job_id,
        MetricChunk.first_iteration <= wanted[-1],
        MetricChunk.first_iteration + MetricChunk.count > wanted[0],
    )
    found: dict[int, tuple[float, float]] = {}
    for first, count, loss, reference in session.execute(query):
        if reference is None:
            continue
        yours, theirs = series(loss, count), series(reference, count)
        for i in wanted:
            if first <= i < first + count:
                found[i] = (float(yours[i - first]), float(theirs[i - first]))
    return found


def evidence(session: Session, job: Job, checks: Sequence[CheckSpec] = ()) -> JobEvidence:
    """What ``job`` left to grade ``checks`` by: its outcome, its stored checks, its losses
    at the iterations a ``loss`` check names, and its reference run's state and final loss."""
    query = (
        select(GradientCheck.result)
        .where(GradientCheck.job_id == job.id)
        .order_by(GradientCheck.iteration, GradientCheck.reference)
    )
    reference = session.get(Job, job.reference_job_id) if job.reference_job_id else None
    return JobEvidence(
        status=job.status,
        error_type=job.error_type,
        error_message=job.error_message,
        checks=list(session.scalars(query)),
        losses=losses_at(session, job.id, (c.iteration for c in checks if c.kind == "loss")),
        final_loss=job.final_loss,
        reference_status=None if reference is None else reference.status,
        reference_final_loss=None if reference is None else reference.final_loss,
    )


def store_grade(submission: Submission, grade: Grade) -> None:
    submission.status = grade.status
    submission.score, submission.max_score = grade.score, grade.max_score
    submission.results, submission.diagnoses = grade.results, grade.diagnoses
    submission.reason = grade.reason
    submission.graded_at = None if grade.status == GradeStatus.PENDING else utcnow()


def grade_code(session: Session, spec: AssignmentSpec, submission: Submission) -> Grade:
    """A code submission's grade now: from its job, or not_gradable when it has none."""
    job = session.get(Job, submission.job_id) if submission.job_id else None
    if job is None:
        return not_gradable(spec.checks, "its grading job is gone.")
    return grade_job(spec.checks, evidence(session, job, spec.checks))


def settle_job(session: Session, job_id: str) -> int:
    """Grade every pending submission graded by ``job_id`` once the job has finished; how
    many were graded. The worker calls this in the transaction that ends the job."""
    job = session.get(Job, job_id)
    if job is None or job.status not in TERMINAL:
        return 0
    rows = session.scalars(
        select(Submission).where(
            Submission.job_id == job_id, Submission.status == GradeStatus.PENDING
        )
    )
    count = 0
    for submission in list(rows):
        spec = AssignmentSpec.model_validate(
            session.get_one(Assignment, submission.assignment).spec
        )
        try:
            grade = grade_code(session, spec, submission)
        except Exception as exc:  # the grader's own crash: its failure, never a pass
            log.exception("grading submission %s of job %s", submission.id, job_id)
            grade = not_gradable(spec.checks, f"the grader crashed ({type(exc).__name__}).")
        store_grade(submission, grade)
        count += 1
    session.flush()
    return count


def settle_ended(conn: Connection, job_id: str) -> int:
    """In the transaction that ends ``job_id`` (``conn``'s): grade the pending submissions it
    grades and, when it is a reference run, those of the jobs that wait for it to compare
    their final loss; how many were graded. One indexed look-up when there are none."""
    linked = select(Job.id).where(Job.reference_job_id == job_id)
    waiting = (
        select(Submission.job_id)
        .where(
            Submission.status == GradeStatus.PENDING,
            or_(Submission.job_id == job_id, Submission.job_id.in_(linked)),
        )
        .distinct()
    )
    jobs = [j for j in conn.execute(waiting).scalars() if j is not None]
    if not jobs:
        return 0
    with Session(bind=conn, join_transaction_mode="rollback_only") as session:
        count = sum(settle_job(session, j) for j in jobs)
        session.flush()
    return count


def pending_finished(session: Session, assignment: str) -> list[str]:
    """Jobs of the assignment's pending submissions that have finished: what to settle."""
    query = (
        select(Submission.job_id)
        .join(Job, Job.id == Submission.job_id)
        .where(
            Submission.assignment == assignment,
            Submission.status == GradeStatus.PENDING,
            Job.status.in_(TERMINAL),
        )
        .distinct()
    )
    return [j for j in session.scalars(query) if j is not None]
