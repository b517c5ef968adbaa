"""The hottest single-row read, ``GET /v1/jobs/{id}``, by hand: a SELECT compiled once by
SQLAlchemy, run on a DBAPI cursor (per thread on SQLite; a ``psycopg_pool`` of async
connections on PostgreSQL), its values converted by the column types' public result
processors. Why by hand, with the figures, is in :class:`FastReader`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from typing import Any, Protocol

import orjson
from sqlalchemy import Engine


def _result_processors(engine: Engine, statement: Any, description: Any) -> list[Any]:
    """Each selected column's result processor for the DBAPI type in ``description``, by
    public API: the type's implementation for the dialect, and its ``result_processor``
    (which ``TypeEngine._cached_result_processor``, private, only caches)."""
    dialect = engine.dialect
    return [
        c.type.dialect_impl(dialect).result_processor(dialect, d[1])
        for c, d in zip(statement.selected_columns, description, strict=True)
    ]


class FastQuery:
    """A SELECT for the hottest reads: compiled once per dialect by SQLAlchemy, run on a DBAPI
    cursor, its values converted by the column types' own result processors.

    Synchronously (SQLite's read on the event loop, see :class:`FastReader`) each thread
    keeps one connection of its own, outside the pool, in autocommit — so a read on the loop
    never waits for a pooled connection (which threads streaming a response may hold until
    the loop sends it). On PostgreSQL :class:`FastReader` runs it on its async pool.
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.engine = engine
        self.statement = statement
        self.sql = str(compiled)
        self.positions = compiled.positiontup  # None for named paramstyles (psycopg)
        self.names = [c.key for c in statement.selected_columns]
        self.processors: list[Any] | None = None  # from the first cursor's description
        self._local = threading.local()

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.raw_connection()
            conn.detach()  # ours for this thread's life, not the pool's
            if self.engine.dialect.name == "postgresql":
                dbapi: Any = conn.dbapi_connection
                dbapi.autocommit = True
            self._local.conn = conn
        return conn

    def first(self, params: dict[str, Any]) -> dict[str, Any] | None:
        args = tuple(params[name] for name in self.positions) if self.positions else params
        for attempt in (1, 2):
            conn = self._connection()
            try:
                cursor = conn.cursor()
                cursor.execute(self.sql, args)
                raw = cursor.fetchone()
                description = cursor.description if self.processors is None else None
                cursor.close()
                break
            except self.engine.dialect.loaded_dbapi.Error:
                self._local.conn = None  # a broken connection (a server restart): redo once
                with contextlib.suppress(Exception):
                    conn.close()
                if attempt == 2:
                    raise
        return self.convert(raw, description)

    def convert(self, raw: Any, description: Any) -> dict[str, Any] | None:
        """A fetched tuple as ``{column: value}``, each value through its type's processor."""
        if self.processors is None:
            self.processors = _result_processors(self.engine, self.statement, description)
        if raw is None:
            return None
        return {
            name: (proc(value) if proc is not None else value)
            for name, proc, value in zip(self.names, self.processors, raw, strict=True)
        }

    def close(self) -> None:
        """Close the calling thread's connection (the loop's, for SQLite's reads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with contextlib.suppress(Exception):
                conn.close()


class AsyncPool:
    """PostgreSQL: :class:`FastQuery` s on a ``psycopg_pool.AsyncConnectionPool`` of up to
    ``size`` autocommit connections, opened on first use on the running event loop, results
    in binary, JSON through orjson."""

    def __init__(self, engine: Engine, size: int = 8) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.size = size
        self.pool: Any = None
        self._lock: asyncio.Lock | None = None
        # One binary cursor per pooled connection: a new cursor per read costs about as
        # much CPU as the pool's own getconn/putconn.
        self._cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    async def _open(self) -> Any:
        from psycopg.types.json import set_json_loads
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: Any) -> None:
            set_json_loads(orjson.loads, conn)

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.pool is None:
                pool = AsyncConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self.size,
                    kwargs={"autocommit": True},
                    configure=configure,
                    open=False,
                    name="gradlab-reads",
                )
                await pool.open()
                self.pool = pool
        return self.pool

    async def first(self, query: FastQuery, params: dict[str, Any]) -> dict[str, Any] | None:
        import psycopg

        pool = self.pool or await self._open()
        for attempt in (1, 2):
            # getconn/putconn: the connection() context manager costs as much CPU again.
            conn = await pool.getconn()
            try:
                cursor = self._cursors.get(conn)
                if cursor is None:
                    cursor = self._cursors[conn] = conn.cursor(binary=True)
                await cursor.execute(query.sql, params)
                raw = await cursor.fetchone()
                # psycopg builds the description anew on each access: once is enough.
                description = cursor.description if query.processors is None else None
                break
            except psycopg.OperationalError:
                # A server restart breaks every idle connection at once: the pool drops
                # this one when it comes back, and check() tests and replaces the others.
                if attempt == 2:
                    raise
                await pool.putconn(conn)
                conn = None
                await pool.check()
            finally:
                if conn is not None:
                    await pool.putconn(conn)
        return query.convert(raw, description)

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool, self._lock = self.pool, None, None
            await pool.close()


class Reader(Protocol):
    """What :meth:`Database.first` reads with."""

    async def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...

    def close(self) -> None: ...


class FastReader:
    """How :meth:`Database.first` reads one row: a :class:`FastQuery` per statement, inline
    on SQLite (a read with no round trip, which never waits on a lock in WAL mode), on
    :class:`AsyncPool` on PostgreSQL, so that the loop serves others during the round trip.

    Hand-written (one compiled statement, one cursor, the types' own result processors)
    because the library loses GET /v1/jobs/{id}'s targets, >= 3,000 req/s and p50 <= 2 ms on
    a 2-core machine. ``gradlab bench --only api`` runs the alternatives of
    ``bench/readpaths.py`` side by side. Nine runs per database on 2026-12-02, on a machine
    busy with other work (load 2-9: req/s swung 3x between runs, so the API's CPU time per
    request is the steadier figure), as ratios to this reader, CPU per request then req/s:

    * PostgreSQL: Core inline 1.16-1.64x, 0.54-1.01x; Core in a thread 1.21-2.28x;
      ``create_async_engine`` (psycopg) 1.65-2.20x, 0.47-0.76x. This path made 3,261 req/s
      on a quiet machine (bench/README.md); 1.16x its CPU leaves about 2,800 at best.
    * SQLite: Core on an autocommit engine of the loop's own 1.37-1.72x, 0.63-0.77x (of the
      4,937 req/s this path made on a quiet machine, 2,870-3,600: no margin to count on;
      in the three least busy runs it made 2,760-2,930 where Core made 1,770-2,330); Core in a
      thread 1.78-2.38x; ``create_async_engine`` (aiosqlite) 2.74-4.29x. Core here would
      add a second way of reading, not retire this one, which PostgreSQL needs anyway.
    * The pool: ``psycopg_pool`` against the hand-rolled pool of ``AsyncConnection`` s kept
      until then (``[hand-pool]``), 16 paired rounds: req/s 1.00x (0.67-1.50), CPU per
      request 1.04x (0.89-1.32); 0.97-1.10x CPU over the runs above. A tie in req/s for ~4%
      more CPU, so the library took its place. Of the 3,261 req/s above that may leave
      ~3,130: a thin margin, as the hand-rolled pool's 9% already was; ``[hand-pool]``
      stays in the bench to check it again on a quiet machine.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queries: dict[Any, FastQuery] = {}
        self._pool = AsyncPool(engine) if engine.dialect.name == "postgresql" else None

    def query(self, statement: Any) -> FastQuery:
        """``statement`` as a :class:`FastQuery` on this engine, compiled once."""
        query = self._queries.get(statement)
        if query is None:
            query = self._queries[statement] = FastQuery(self.engine, statement)
        return query

    async def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        if self._pool is None:
            return self.query(statement).first(params)
        return await self._pool.first(self.query(statement), params)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def close(self) -> None:
        for query in self._queries.values():
            query.close()
