"""Code submissions: a student's ``loss_and_gradients`` run as a job of theirs.

The job is the student's instance of the exercise with their code (``JobSpec.student``): the
worker trains it in the sandbox and records the three checks per gradient check; it shares
its recipe's reference run with the class. When it ends, :mod:`store.submissions` grades the
submission from its stored checks, failing closed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.jobs import service as jobs_service
from store.accounts import Caller
from store.settings import Settings
from store.spec import JobSpec, StudentCode
from store.tables import Job


def start_job(
    session: Session, exercise: JobSpec, source: str, settings: Settings, caller: Caller
) -> Job:
    """The queued job that grades ``source`` on ``exercise`` (the student's instance), as a
    job of ``caller``'s: their quota and fair share apply; code that does not compile, or a
    server with no sandbox for it, is refused here and nothing is stored."""
    spec = exercise.model_copy(update={"student": StudentCode(code=source)})
    job, _ = jobs_service.submit(
        session, JobSpec.model_validate(spec.model_dump()), settings, caller
    )
    return job
