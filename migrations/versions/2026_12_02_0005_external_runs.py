"""External runs (a notebook's own loop, logged over HTTP) and shared reference runs.

``jobs.runner`` says who produces a job's points: ``worker`` (claimed and trained by a
worker) or ``external`` (appended by its owner through ``POST /v1/jobs/{id}/metrics``).
``jobs.reference_job_id`` links a job to the reference run of its recipe, and
``reference_runs`` maps a recipe's hash to that run: its primary key makes "one reference
run per distinct recipe" hold under concurrent submissions.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("runner", sa.String(16), nullable=False, server_default="worker")
    )
    op.add_column("jobs", sa.Column("reference_job_id", sa.String(32), nullable=True))
    op.create_index(op.f("ix_jobs_reference_job_id"), "jobs", ["reference_job_id"])
    op.create_table(
        "reference_runs",
        sa.Column("recipe_hash", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_reference_runs_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("recipe_hash", name=op.f("pk_reference_runs")),
    )


def downgrade() -> None:
    op.drop_table("reference_runs")
    op.drop_index(op.f("ix_jobs_reference_job_id"), table_name="jobs")
    op.drop_column("jobs", "reference_job_id")
    op.drop_column("jobs", "runner")
