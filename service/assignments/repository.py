"""Every query on assignments and submissions. Whose submissions a caller sees is decided by
:func:`service.jobs.repository.visible`, the one owner predicate: a student's request for
another's submission finds nothing, exactly as for one that does not exist."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.jobs.repository import visible
from store.accounts import Caller, Role
from store.tables import Assignment, Submission, User


def get(session: Session, name: str) -> Assignment | None:
    return session.get(Assignment, name)


def list_all(session: Session) -> list[Assignment]:
    return list(session.scalars(select(Assignment).order_by(Assignment.name)))


def add(session: Session, row: Assignment) -> None:
    session.add(row)
    session.flush()


def lock_student(session: Session, name: str) -> None:
    """PostgreSQL: take the student's ``users`` row, so two submissions of theirs racing are
    counted one after the other (SQLite's write transaction holds its lock already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.name).where(User.name == name).with_for_update())


def attempts(session: Session, assignment: str, owner: str) -> tuple[int, datetime | None]:
    """How many submissions ``owner`` has made to the assignment, and when the last was."""
    query = select(func.count(), func.max(Submission.submitted_at)).where(
        Submission.assignment == assignment, Submission.owner == owner
    )
    count, last = session.execute(query).one()
    return int(count), last


def attempt_number(session: Session, sub: Submission) -> int:
    """Which of its student's submissions to the assignment ``sub`` is (1 for the first)."""
    query = select(func.count()).where(
        Submission.assignment == sub.assignment,
        Submission.owner == sub.owner,
        Submission.id <= sub.id,
    )
    return int(session.execute(query).scalar_one())


def submissions(
    session: Session, assignment: str, caller: Caller, owner: str | None = None
) -> list[Submission]:
    """The submissions ``caller`` may see, oldest first; only ``owner``'s when given."""
    query = visible(
        select(Submission).where(Submission.assignment == assignment).order_by(Submission.id),
        caller,
        Submission.owner,
    )
    if owner is not None:
        query = query.where(Submission.owner == owner)
    return list(session.scalars(query))


def submission(session: Session, assignment: str, sub_id: str, caller: Caller) -> Submission | None:
    query = visible(
        select(Submission).where(Submission.assignment == assignment, Submission.id == sub_id),
        caller,
        Submission.owner,
    )
    return session.scalars(query).first()


def students(session: Session) -> list[str]:
    query = select(User.name).where(User.role == Role.STUDENT.value).order_by(User.name)
    return list(session.scalars(query))


def user(session: Session, name: str) -> User | None:
    return session.get(User, name)
