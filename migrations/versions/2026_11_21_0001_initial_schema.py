"""Initial schema: jobs, their attempts, metric chunks, gradient checks, checkpoints; sweeps.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("base", JSON, nullable=False),
        sa.Column("grid", JSON, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_kind", sa.String(32), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("started_at", MOMENT, nullable=True),
        sa.Column("finished_at", MOMENT, nullable=True),
        sa.Column("iterations_done", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("final_loss", sa.Float(), nullable=True),
        sa.Column("final_accuracy", sa.Float(), nullable=True),
        sa.Column("best_loss", sa.Float(), nullable=True),
        sa.Column("best_iteration", sa.Integer(), nullable=True),
        sa.Column("checks_passed", sa.Boolean(), nullable=True),
        sa.Column("error_type", sa.String(32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_iteration", sa.Integer(), nullable=True),
        sa.Column("worker_id", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True),
        sa.Column("sweep_id", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["sweep_id"], ["sweeps.id"], name=op.f("fk_jobs_sweep_id_sweeps"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_jobs_idempotency_key")),
    )
    op.create_index("ix_jobs_status_id", "jobs", ["status", "id"])
    op.create_index("ix_jobs_status_lease_expires_at", "jobs", ["status", "lease_expires_at"])
    op.create_index("ix_jobs_name_id", "jobs", ["name", "id"])
    op.create_index("ix_jobs_model_kind_id", "jobs", ["model_kind", "id"])
    op.create_index(op.f("ix_jobs_sweep_id"), "jobs", ["sweep_id"])

    op.create_table(
        "attempts",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(100), nullable=False),
        sa.Column("started_at", MOMENT, nullable=False),
        sa.Column("ended_at", MOMENT, nullable=True),
        sa.Column("start_iteration", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_attempts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "number", name=op.f("pk_attempts")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("iteration", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_checkpoints_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "gradient_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("iteration", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("max_relative_error", sa.Float(), nullable=True),
        sa.Column("result", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_gradient_checks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gradient_checks")),
        sa.UniqueConstraint(
            "job_id",
            "iteration",
            "reference",
            name=op.f("uq_gradient_checks_job_id_iteration_reference"),
        ),
    )
    op.create_table(
        "metric_chunks",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("first_iteration", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        # Rollups first: in SQLite they stay in the row's b-tree page, so reading them never
        # walks the overflow pages that hold the packed series.
        sa.Column("loss_min", sa.Float(), nullable=False),
        sa.Column("loss_max", sa.Float(), nullable=False),
        sa.Column("loss_last", sa.Float(), nullable=False),
        sa.Column("extremes", sa.LargeBinary(), nullable=False),
        sa.Column("loss", sa.LargeBinary(), nullable=False),
        sa.Column("data_loss", sa.LargeBinary(), nullable=False),
        sa.Column("reg_loss", sa.LargeBinary(), nullable=False),
        sa.Column("grad_norm", sa.LargeBinary(), nullable=False),
        sa.Column("accuracy", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_metric_chunks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "first_iteration", name=op.f("pk_metric_chunks")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Packed float64 series do not compress; storing them out of line uncompressed spares
        # PostgreSQL a pglz attempt on every write and a decompression on every read.
        for column in ("extremes", "loss", "data_loss", "reg_loss", "grad_norm", "accuracy"):
            op.execute(f"ALTER TABLE metric_chunks ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("metric_chunks")
    op.drop_table("gradient_checks")
    op.drop_table("checkpoints")
    op.drop_table("attempts")
    op.drop_index(op.f("ix_jobs_sweep_id"), table_name="jobs")
    op.drop_index("ix_jobs_model_kind_id", table_name="jobs")
    op.drop_index("ix_jobs_name_id", table_name="jobs")
    op.drop_index("ix_jobs_status_lease_expires_at", table_name="jobs")
    op.drop_index("ix_jobs_status_id", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("sweeps")
