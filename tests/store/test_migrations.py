"""The Alembic migrations are the schema: they go up, down and up again on an empty database,
and what they build is exactly what the ORM tables describe."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import migrations as migrate
from store.db import create_db_engine
from store.tables import Base
from tests.conftest import PG_ADMIN_URL, _admin_connect

TABLES = {
    "jobs", "attempts", "metric_chunks", "gradient_checks", "checkpoints", "sweeps", "datasets",
}  # fmt: skip


def assert_schema_matches_models(url: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            assert set(inspect(conn).get_table_names()) >= TABLES
            assert context.get_current_revision() == migrate.head_revision()
    finally:
        engine.dispose()


def round_trip(url: str) -> None:
    migrate.upgrade(url)
    assert_schema_matches_models(url)
    migrate.downgrade(url, "base")
    engine = create_db_engine(url)
    with engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    migrate.upgrade(url)
    assert_schema_matches_models(url)


def test_upgrade_downgrade_upgrade_on_an_empty_sqlite_database(tmp_path):
    round_trip(f"sqlite:///{tmp_path / 'empty.db'}")


@pytest.mark.postgres
def test_upgrade_downgrade_upgrade_on_an_empty_postgres_database(pg_database):
    admin = _admin_connect()
    name = f"gradlab_migrate_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        round_trip(f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}")
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_sqlite_is_opened_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("busy_timeout") == 30_000
    engine.dispose()
