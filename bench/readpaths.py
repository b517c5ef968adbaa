"""The ways of reading ``GET /v1/jobs/{id}``'s row that ``gradlab bench --only api`` puts
side by side: the API's own (``store.fastread.FastReader``) and the alternatives it was measured
against, each a ``store.fastread.Reader`` that ``bench.serve`` installs in place of the API's.

``fast``       as shipped: a ``FastQuery`` inline on SQLite, on ``psycopg_pool`` on PostgreSQL
``hand-pool``  PostgreSQL: the same ``FastQuery`` on the hand-rolled pool it replaced
``core``       SQLAlchemy Core, ``conn.execute(stmt, params).mappings().first()``, inline on
               the loop, on an autocommit engine of the loop's own with one connection (the
               shared pool may be held by threads streaming responses: the loop must not
               wait for it)
``thread``     Core in anyio's threadpool, on an autocommit engine of its own
``async``      ``create_async_engine``: aiosqlite, or psycopg's async driver

The Core engines retry once on a connection SQLAlchemy found dropped (a server restart)
instead of pinging at every checkout, as the hand-written paths do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from store.db import JSON_CODEC, Database, configure_sqlite, create_db_engine
from store.fastread import FastQuery, FastReader, Reader
from store.settings import Settings


def _retrying(read: Callable[[], Any]) -> Any:
    for attempt in (1, 2):
        try:
            return read()
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _core(engine: Engine, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    def read() -> dict[str, Any] | None:
        with engine.connect() as conn:
            row = conn.execute(statement, params).mappings().first()
        return None if row is None else dict(row)

    return _retrying(read)


class CoreInline:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.engine = create_db_engine(
            db.url, settings, pool_size=1, max_overflow=0, pre_ping=False, autocommit=True
        )

    async def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        return _core(self.engine, statement, params)

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        self.engine.dispose()


class CoreThread(CoreInline):
    def __init__(self, db: Database, settings: Settings) -> None:
        self.engine = create_db_engine(db.url, settings, pre_ping=False, autocommit=True)

    async def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(_core, self.engine, statement, params)


class AsyncEngine:
    def __init__(self, db: Database, settings: Settings) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        url = make_url(db.url)
        if url.get_backend_name() != "sqlite":
            self.engine = create_async_engine(
                url, pool_size=8, max_overflow=16, isolation_level="AUTOCOMMIT", **JSON_CODEC
            )
            return
        busy_ms = settings.sqlite_busy_timeout_ms
        self.engine = create_async_engine(
            url.set(drivername="sqlite+aiosqlite"),
            connect_args={"timeout": busy_ms / 1000},
            pool_size=8,
            max_overflow=24,
            **JSON_CODEC,
        )
        configure_sqlite(self.engine.sync_engine, busy_ms, autocommit=True)

    async def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        for attempt in (1, 2):
            try:
                async with self.engine.connect() as conn:
                    row = (await conn.execute(statement, params)).mappings().first()
                return None if row is None else dict(row)
            except DBAPIError as exc:
                if not exc.connection_invalidated or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.engine.dispose()

    def close(self) -> None:
        pass


class HandPool(FastReader):
    """``FastReader`` with, on PostgreSQL, the async pool it kept before psycopg_pool: up to
    8 psycopg ``AsyncConnection`` s opened on demand, in autocommit, each with its binary
    cursor, handed out through an ``asyncio.Queue``; a failed read reconnects once."""

    SIZE = 8

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db.engine)
        self.conninfo = db.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.idle: asyncio.Queue[Any] | None = None
        self.opened = 0

    async def _cursor(self) -> Any:
        import orjson
        import psycopg
        from psycopg.types.json import set_json_loads

        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        set_json_loads(orjson.loads, conn)
        return conn.cursor(binary=True)

    async def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        if self.engine.dialect.name != "postgresql":
            return await super().first(statement, params)
        import psycopg

        query: FastQuery = self.query(statement)
        if self.idle is None:
            self.idle = asyncio.Queue()
        if self.idle.empty() and self.opened < self.SIZE:
            self.opened += 1
            cursor = await self._cursor()
        else:
            cursor = await self.idle.get()
        try:
            for attempt in (1, 2):
                try:
                    await cursor.execute(query.sql, params)
                    raw = await cursor.fetchone()
                    description = cursor.description if query.processors is None else None
                    break
                except psycopg.OperationalError:
                    with contextlib.suppress(Exception):
                        await cursor.connection.close()
                    cursor = await self._cursor()
                    if attempt == 2:
                        raise
        finally:
            self.idle.put_nowait(cursor)
        return query.convert(raw, description)

    async def aclose(self) -> None:
        while self.idle is not None and not self.idle.empty():
            cursor = self.idle.get_nowait()
            with contextlib.suppress(Exception):
                await cursor.connection.close()
        self.idle, self.opened = None, 0


READERS: dict[str, Callable[[Database, Settings], Reader] | None] = {
    "fast": None,  # the API's own
    "hand-pool": HandPool,
    "core": CoreInline,
    "thread": CoreThread,
    "async": AsyncEngine,
}


def names(engine_name: str) -> tuple[str, ...]:
    """The readers worth comparing on this database; the API's own first."""
    if engine_name == "PostgreSQL":
        return tuple(READERS)
    return tuple(name for name in READERS if name != "hand-pool")  # the same as fast there


def install(db: Database, name: str, settings: Settings) -> None:
    """Have ``db`` read with reader ``name`` from now on."""
    make = READERS[name]
    if make is not None:
        db.reader = make(db, settings)
