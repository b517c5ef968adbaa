"""Datasets stored once by content hash: a job's spec refers to its inline arrays by hash.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("features", sa.Integer(), nullable=False),
        sa.Column("classes", sa.Integer(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False, server_default="local"),
        sa.Column("arrays", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["owner"], ["users.name"], name=op.f("fk_datasets_owner_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Packed float64 does not compress: out of line, uncompressed (as metric_chunks).
        op.execute("ALTER TABLE datasets ALTER COLUMN arrays SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("datasets")
