"""Assignments and their submissions: an exercise an instructor sets, each student's
answers, and their grades.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("updated_at", MOMENT, nullable=False),
        sa.ForeignKeyConstraint(["owner"], ["users.name"], name=op.f("fk_assignments_owner_users")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_assignments")),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("assignment", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("submitted_at", MOMENT, nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("answer", JSON, nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("results", JSON, nullable=False),
        sa.Column("diagnoses", JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("graded_at", MOMENT, nullable=True),
        sa.ForeignKeyConstraint(
            ["assignment"],
            ["assignments.name"],
            name=op.f("fk_submissions_assignment_assignments"),
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_submissions_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["owner"], ["users.name"], name=op.f("fk_submissions_owner_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
    )
    op.create_index(
        op.f("ix_submissions_assignment_owner_id"), "submissions", ["assignment", "owner", "id"]
    )
    op.create_index(op.f("ix_submissions_job_id"), "submissions", ["job_id"])


def downgrade() -> None:
    op.drop_table("submissions")
    op.drop_table("assignments")
