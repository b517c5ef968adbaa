"""Code submissions: a student's ``loss_and_gradients`` run as a job of theirs.

Running student code needs the sandboxed runner of issue 12 (``JobSpec.student``), which is
not on this server yet. Until it is, a code submission is refused with 409 ``not_applicable``
and nothing is stored; everything after the job — linking it, settling the grade from its
stored checks when it ends, failing closed — is in place (:mod:`store.submissions`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.errors import NotApplicable
from store.accounts import Caller
from store.settings import Settings
from store.spec import JobSpec
from store.tables import Job


def start_job(
    session: Session, exercise: JobSpec, source: str, settings: Settings, caller: Caller
) -> Job:
    """The queued job that grades ``source`` on ``exercise`` (the student's instance), as a
    job of ``caller``'s: their quota and fair share apply."""
    raise NotApplicable(
        "This server cannot run student code yet (the sandboxed runner of issue 12 is not "
        "installed); submit gradients to a gradients assignment instead."
    )
