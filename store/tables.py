"""ORM tables. The schema itself is created only by the Alembic migrations in ``migrations/``.

Points are stored in chunks: one ``metric_chunks`` row per flush of a job, holding each
series as packed little-endian float64 (``ndarray.tobytes()``), keyed by the chunk's first
iteration. A chunk also keeps the full point at its lowest and highest loss (``extremes``)
so that a downsampled read of a long history touches only those rollups, never every point.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


_id_lock = threading.Lock()
_last_id_ms = 0
_id_counter = 0


def new_id() -> str:
    """A 32-hex-digit id that sorts by creation time (UUIDv7-like: ms clock, then random).

    Within one process ids are strictly increasing even inside the same millisecond.
    """
    global _last_id_ms, _id_counter
    with _id_lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_id_ms:
            ms = _last_id_ms
            _id_counter += 1
        else:
            _last_id_ms, _id_counter = ms, 0
        return f"{ms:012x}{_id_counter:04x}{os.urandom(8).hex()}"


LOCAL_USER = "local"
"""The one account of ``GRADLAB_AUTH=off``, and the owner of everything made before accounts."""


class User(Base):
    """An account: ``role`` is one of ``store.accounts.Role`` (admin, instructor, student)."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """One API token of an account, stored only as the SHA-256 of the token itself."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_name: Mapped[str] = mapped_column(ForeignKey("users.name", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Sweep(Base):
    __tablename__ = "sweeps"
    __table_args__ = (Index("ix_sweeps_owner_id", "owner", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(
        ForeignKey("users.name"), default=LOCAL_USER, server_default=LOCAL_USER
    )
    name: Mapped[str | None] = mapped_column(String(200))
    base: Mapped[dict] = mapped_column(JSONType)
    grid: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_status_lease_expires_at", "status", "lease_expires_at"),
        Index("ix_jobs_name_id", "name", "id"),
        Index("ix_jobs_model_kind_id", "model_kind", "id"),
        Index("ix_jobs_owner_id", "owner", "id"),
        Index("ix_jobs_owner_status", "owner", "status"),
        # The fair-share claim: each waiting owner, and the oldest queued job of each, by seeks.
        Index("ix_jobs_status_owner_id", "status", "owner", "id"),
        UniqueConstraint("owner", "idempotency_key"),  # a key is its owner's alone
        Index("ix_jobs_reference_job_id", "reference_job_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(
        ForeignKey("users.name"), default=LOCAL_USER, server_default=LOCAL_USER
    )
    name: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16))  # store.lifecycle.Status
    model_kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict] = mapped_column(JSONType)
    iterations: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    iterations_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    final_loss: Mapped[float | None] = mapped_column(Float)
    final_accuracy: Mapped[float | None] = mapped_column(Float)
    best_loss: Mapped[float | None] = mapped_column(Float)
    best_iteration: Mapped[int | None] = mapped_column(Integer)
    checks_passed: Mapped[bool | None] = mapped_column(Boolean)
    error_type: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_iteration: Mapped[int | None] = mapped_column(Integer)
    worker_id: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    sweep_id: Mapped[str | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="SET NULL"), index=True
    )
    # Who produces the points: "worker" (claimed and trained) or "external" (appended by its
    # owner over HTTP, never claimed): store.spec.Runner.
    runner: Mapped[str] = mapped_column(String(16), default="worker", server_default="worker")
    # The shared reference run of the job's recipe (store.references), when it has one.
    reference_job_id: Mapped[str | None] = mapped_column(String(32))


class ReferenceRun(Base):
    """The one reference run of a recipe: ``recipe_hash`` is the SHA-256 of the normalised
    recipe (``store.references.recipe_hash``); the key makes it one run per recipe, however
    many jobs share it and however concurrently they are submitted."""

    __tablename__ = "reference_runs"

    recipe_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Dataset(Base):
    """Arrays a job trains on, stored once by content: ``id`` is their SHA-256
    (``store.datasets.content_hash``), so every job and sweep that shares them shares the row.
    ``arrays`` is X then y, packed little-endian float64 (``rows × features`` then ``rows``)."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "inline" (posted in a spec)
    rows: Mapped[int] = mapped_column(Integer)
    features: Mapped[int] = mapped_column(Integer)
    classes: Mapped[int | None] = mapped_column(Integer)  # None: not labels 0..K−1
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str] = mapped_column(
        ForeignKey("users.name"), default=LOCAL_USER, server_default=LOCAL_USER
    )
    arrays: Mapped[bytes] = mapped_column(LargeBinary)


class DatasetUpload(Base):
    """One account's upload of stored arrays (``POST /v1/datasets``): the same content
    uploaded twice by one account is one row, by two accounts two rows over one ``datasets``
    row. ``shared`` (an instructor's or admin's) makes it visible to every account."""

    __tablename__ = "dataset_uploads"
    __table_args__ = (
        Index("ix_dataset_uploads_owner_created_at", "owner", "created_at"),
        Index("ix_dataset_uploads_shared", "shared"),
    )

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    owner: Mapped[str] = mapped_column(ForeignKey("users.name"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    columns: Mapped[list | None] = mapped_column(JSONType)  # a CSV's feature names
    target: Mapped[str | None] = mapped_column(String(200))  # its target column's name
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ParameterPath(Base):
    """A job's parameters at iterations ``first_iteration`` … (every k-th, ``store.paths``),
    written with one flush: ``iterations`` int64 (count,), ``params`` float64 (count, width)."""

    __tablename__ = "parameter_paths"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    first_iteration: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    iterations: Mapped[bytes] = mapped_column(LargeBinary)
    params: Mapped[bytes] = mapped_column(LargeBinary)


class Attempt(Base):
    """One try of a job by one worker: the audit trail of who ran what and how it ended."""

    __tablename__ = "attempts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    start_iteration: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(16))


class MetricChunk(Base):
    """Points ``first_iteration .. first_iteration + count - 1`` of one job."""

    __tablename__ = "metric_chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    first_iteration: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    # The rollups come before the series: SQLite keeps a row's first bytes in the b-tree
    # page and the rest in a chain of overflow pages, so a read of the rollups alone (a
    # downsampled history) never walks the ~40 KB of packed series behind them.
    loss_min: Mapped[float] = mapped_column(Float)
    loss_max: Mapped[float] = mapped_column(Float)
    loss_last: Mapped[float] = mapped_column(Float)
    extremes: Mapped[bytes] = mapped_column(LargeBinary)
    loss: Mapped[bytes] = mapped_column(LargeBinary)
    data_loss: Mapped[bytes] = mapped_column(LargeBinary)
    reg_loss: Mapped[bytes] = mapped_column(LargeBinary)
    grad_norm: Mapped[bytes] = mapped_column(LargeBinary)
    accuracy: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A student's job: the reference solution's loss at each point's parameters.
    reference_loss: Mapped[bytes | None] = mapped_column(LargeBinary)


class GradientCheck(Base):
    __tablename__ = "gradient_checks"
    __table_args__ = (UniqueConstraint("job_id", "iteration", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    iteration: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(16))
    passed: Mapped[bool | None] = mapped_column(Boolean)
    max_relative_error: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict] = mapped_column(JSONType)


class Checkpoint(Base):
    """The latest parameters and optimizer state of a job, written with every flush."""

    __tablename__ = "checkpoints"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    iteration: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class Assignment(Base):
    """An exercise an instructor sets: a reference job spec (``exercise``), how students
    answer (``submit``: gradients or code), the graded ``checks`` and the rules of
    submitting. The rules' schema is ``store.grading.AssignmentSpec``."""

    __tablename__ = "assignments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(ForeignKey("users.name"))
    spec: Mapped[dict] = mapped_column(JSONType)  # AssignmentSpec, normalised
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Submission(Base):
    """One student's answer to an assignment and its grade. ``status`` is one of
    ``store.grading.GradeStatus``; ``results`` the per-check results (all of them: what a
    student may see of them is decided when they are shown)."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_assignment_owner_id", "assignment", "owner", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assignment: Mapped[str] = mapped_column(
        ForeignKey("assignments.name", ondelete="CASCADE", onupdate="CASCADE")
    )
    owner: Mapped[str] = mapped_column(ForeignKey("users.name"))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(16))  # "gradients" or "code"
    answer: Mapped[dict] = mapped_column(JSONType)  # the gradients (and loss) or the code
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    max_score: Mapped[float] = mapped_column(Float)
    results: Mapped[list] = mapped_column(JSONType, default=list)
    diagnoses: Mapped[dict] = mapped_column(JSONType, default=dict)  # tensor → code
    reason: Mapped[str | None] = mapped_column(Text)
    graded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
