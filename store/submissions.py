"""Settling a code submission: when its job has finished, grade it from what the job left
(:func:`store.grading.grade_job`) and store the grade. Shared by the API (it settles what it
reads, and regrades) and the worker (which settles a job's submission when it ends it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.assignments import AssignmentSpec, utcnow
from store.grading import Grade, GradeStatus, JobEvidence, grade_job, not_gradable
from store.status import TERMINAL
from store.tables import Assignment, GradientCheck, Job, Submission


def evidence(session: Session, job: Job) -> JobEvidence:
    """What ``job`` left to grade by: its outcome and its stored checks."""
    query = (
        select(GradientCheck.result)
        .where(GradientCheck.job_id == job.id)
        .order_by(GradientCheck.iteration, GradientCheck.reference)
    )
    return JobEvidence(
        status=job.status,
        error_type=job.error_type,
        error_message=job.error_message,
        checks=list(session.scalars(query)),
        final_loss=job.final_loss,
        # The reference run's link (issue 12 §2) is not on this branch: until it is, a
        # final_loss or loss check of a code submission is not_gradable, never a pass.
        reference_final_loss=None,
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
    return grade_job(spec.checks, evidence(session, job))


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
        store_grade(submission, grade_code(session, spec, submission))
        count += 1
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
