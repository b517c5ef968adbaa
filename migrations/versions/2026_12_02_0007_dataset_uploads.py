"""Uploaded datasets (who uploaded which stored arrays, under what name, shared or not), and
the parameters' path the worker keeps every k iterations for the trajectory plot.

The arrays stay in ``datasets`` (one row per content hash, 0003); a ``dataset_uploads`` row
is one account's upload of them, so the same file uploaded by two students is stored once
and listed for each.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dataset_uploads",
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("columns", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_dataset_uploads_dataset_id_datasets")
        ),
        sa.ForeignKeyConstraint(
            ["owner"], ["users.name"], name=op.f("fk_dataset_uploads_owner_users")
        ),
        sa.PrimaryKeyConstraint("dataset_id", "owner", name=op.f("pk_dataset_uploads")),
    )
    op.create_index(
        "ix_dataset_uploads_owner_created_at", "dataset_uploads", ["owner", "created_at"]
    )
    op.create_index("ix_dataset_uploads_shared", "dataset_uploads", ["shared"])
    op.create_table(
        "parameter_paths",
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("first_iteration", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("iterations", sa.LargeBinary(), nullable=False),
        sa.Column("params", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_parameter_paths_job_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "first_iteration", name=op.f("pk_parameter_paths")),
    )


def downgrade() -> None:
    op.drop_table("parameter_paths")
    op.drop_table("dataset_uploads")
