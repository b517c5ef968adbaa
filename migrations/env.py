"""Alembic environment: the only place gradlab's schema is created, on SQLite and PostgreSQL.

Run through ``gradlab migrate`` (or ``alembic upgrade head`` with alembic.ini); the URL is
the config's ``sqlalchemy.url`` or, failing that, ``GRADLAB_DATABASE_URL``. On PostgreSQL an
advisory lock makes concurrent starters (several API replicas) migrate one at a time.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from store.db import create_db_engine, normalise_url
from store.settings import Settings
from store.tables import Base

config = context.config
target_metadata = Base.metadata
LOCK_KEY = 0x67726164  # "grad"


def _url() -> str:
    return normalise_url(config.get_main_option("sqlalchemy.url") or Settings().database_url)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    postgres = connection.dialect.name == "postgresql"
    if postgres:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        connection.commit()
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if postgres:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            connection.commit()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    engine = create_db_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
