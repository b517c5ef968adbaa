"""Code submissions: a student's ``loss_and_gradients`` run as a job of theirs.

The job is the student's instance of the exercise with their code (``JobSpec.student``): the
worker trains it in the sandbox and records the three checks per gradient check; it shares
its recipe's reference run with the class. When it ends, :mod:`store.submissions` grades the
submission from its stored checks, failing closed.

A regrade runs again what the grader failed on (:func:`grader_failed`): the same code on the
student's instance, in a fresh job of the student's (:func:`rerun_job`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.datasets import service as datasets_service
from service.jobs import repository as jobs_repository
from service.jobs import service as jobs_service
from store import queue
from store.accounts import Caller, Role
from store.grading import STUDENT_FAILURES
from store.settings import Settings
from store.spec import JobSpec, StudentCode
from store.status import Status
from store.tables import Job, User


def _student_spec(exercise: JobSpec, source: str) -> JobSpec:
    spec = exercise.model_copy(update={"student": StudentCode(code=source)})
    return JobSpec.model_validate(spec.model_dump())


def start_job(
    session: Session, exercise: JobSpec, source: str, settings: Settings, caller: Caller
) -> Job:
    """The queued job that grades ``source`` on ``exercise`` (the student's instance), as a
    job of ``caller``'s: their quota and fair share apply; code that does not compile, or a
    server with no sandbox for it, is refused here and nothing is stored."""
    job, _ = jobs_service.submit(session, _student_spec(exercise, source), settings, caller)
    return job


def grader_failed(job: Job | None) -> bool:
    """Whether a code submission's job ended in a failure of the grader's, which running the
    code again may cure: the job is gone, was cancelled, or failed with an error that is not
    the student's own (``internal_error``, ``worker_lost``, …). A job still queued or
    running, one that succeeded, and a student's own failure (``time_limit``, …) are not."""
    if job is None:
        return True
    if job.status == Status.CANCELLED:
        return True
    return job.status == Status.FAILED and job.error_type not in STUDENT_FAILURES


def rerun_job(
    session: Session, exercise: JobSpec, source: str, settings: Settings, student: str
) -> Job:
    """A fresh queued job of ``student``'s grading ``source`` on ``exercise`` again (a
    regrade of a submission the grader failed on): made as :func:`start_job` makes it, with
    the student's fair share, but not counted against their quota — the grader's failure is
    not a submission of theirs, and one student's full queue must not refuse the class's
    regrade. A server with no sandbox raises :class:`service.errors.SandboxUnavailable`;
    nothing is stored then (the writes are in a savepoint)."""
    role = Role(session.get_one(User, student).role)
    with session.begin_nested():
        spec = datasets_service.resolve(
            session, _student_spec(exercise, source), Caller(student, role)
        )
        job = jobs_repository.add_job(
            session, jobs_service.new_job(session, spec, settings, student)
        )
    queue.notify(session)
    return job
