"""Who may queue how much: ``GRADLAB_MAX_ACTIVE_JOBS_PER_USER`` caps a student's queued and
running jobs together, so that one student cannot fill the queue (fair share then decides
whose job runs next; this decides who may add one). Instructors and admins are exempt.

The count and the insert that follows it are in one write transaction, so that two
submissions racing cannot both slip under the cap: on SQLite that transaction holds the
write lock from its first statement (``BEGIN IMMEDIATE``); on PostgreSQL the check takes the
owner's ``users`` row ``FOR UPDATE``, which the other submission then waits for.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.errors import Busy
from store.accounts import Role
from store.settings import Settings
from store.status import ACTIVE
from store.tables import Job, User

"""The statuses that count against the quota."""

RETRY_AFTER = 10
"""Seconds a refused submitter is asked to wait: a slot frees as soon as one of their jobs
ends, which the server cannot foresee; a few small jobs' worth."""

KIND = "too_many_active_jobs"


def active_jobs(session: Session, owner: str) -> int:
    """The owner's queued and running jobs (by ix_jobs_owner_status)."""
    query = select(func.count()).where(Job.owner == owner, Job.status.in_(ACTIVE))
    return session.execute(query).scalar_one()


def check_quota(
    session: Session, owner: str, role: Role | str, adding: int, settings: Settings
) -> None:
    """Refuse, with a 429 and ``Retry-After``, ``adding`` more jobs for ``owner`` when their
    queued and running jobs would then exceed ``GRADLAB_MAX_ACTIVE_JOBS_PER_USER``. Call it in
    the transaction that inserts the jobs, before inserting them, so the refusal stores
    nothing and no other submission of the owner's counts in between."""
    if Role(role) is not Role.STUDENT:  # instructors and admins are exempt
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.name).where(User.name == owner).with_for_update())
    limit = settings.max_active_jobs_per_user
    active = active_jobs(session, owner)
    if active + adding > limit:
        asked = "this job" if adding == 1 else f"these {adding} jobs"
        raise Busy(
            f"{owner} has {active} jobs queued or running; {asked} would take them past "
            f"the limit of {limit} per student (GRADLAB_MAX_ACTIVE_JOBS_PER_USER). Wait "
            "for some to finish, or cancel some.",
            RETRY_AFTER,
            status=429,
            kind=KIND,
        )
