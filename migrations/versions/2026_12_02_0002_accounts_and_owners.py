"""Accounts, their API tokens, and an owner on every job and sweep.

Jobs and sweeps that exist before this revision belong to the ``local`` account, the one
user of ``GRADLAB_AUTH=off``. An ``Idempotency-Key`` becomes unique per owner: one student's
key must neither collide with another's nor find another's job.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENT = sa.DateTime(timezone=True)
LOCAL = "local"


def upgrade() -> None:
    users = op.create_table(
        "users",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_users")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("revoked_at", MOMENT, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["users.name"],
            name=op.f("fk_api_tokens_user_name_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_name"), "api_tokens", ["user_name"])
    op.execute(
        users.insert().values(name=LOCAL, role="admin", created_at=sa.func.current_timestamp())
    )
    for table in ("jobs", "sweeps"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("owner", sa.String(64), nullable=False, server_default=LOCAL)
            )
            batch.create_foreign_key(op.f(f"fk_{table}_owner_users"), "users", ["owner"], ["name"])
            batch.create_index(f"ix_{table}_owner_id", ["owner", "id"])
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("uq_jobs_idempotency_key"), type_="unique")
        batch.create_unique_constraint(
            op.f("uq_jobs_owner_idempotency_key"), ["owner", "idempotency_key"]
        )
    op.create_index("ix_jobs_owner_status", "jobs", ["owner", "status"])
    op.create_index("ix_jobs_status_owner_id", "jobs", ["status", "owner", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status_owner_id", table_name="jobs")
    op.drop_index("ix_jobs_owner_status", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("uq_jobs_owner_idempotency_key"), type_="unique")
        batch.create_unique_constraint(op.f("uq_jobs_idempotency_key"), ["idempotency_key"])
    for table in ("sweeps", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_owner_id")
            batch.drop_constraint(op.f(f"fk_{table}_owner_users"), type_="foreignkey")
            batch.drop_column("owner")
    op.drop_index(op.f("ix_api_tokens_user_name"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
