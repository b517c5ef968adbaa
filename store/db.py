"""Database engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite is opened on purpose as follows (see the README's storage section):

* ``journal_mode=WAL``: readers never block the writer and the writer never blocks readers,
  so the API keeps answering while workers flush points.
* ``synchronous=NORMAL``: in WAL mode a commit is durable against an application crash;
  only a power loss can roll back the last transactions. A lab loses at most a flush.
* ``busy_timeout``: a writer waits for the lock instead of failing with "database is locked".
* ``foreign_keys=ON``: deleting a job deletes its points, checks and attempts.
* ``cache_size`` 8 MiB per connection and no ``mmap``: history reads stream megabytes of
  packed floats once, which a bigger cache would only hold on to; the small hot reads
  (a job, a chunk's rollups) fit easily. Memory stays flat while a long history is served.
* Write transactions begin with ``BEGIN IMMEDIATE``: they take the write lock up front, so a
  transaction that read first never fails when upgrading to a write (SQLite answers that
  case with an immediate SQLITE_BUSY that no timeout can cure). Reads use plain ``BEGIN``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.settings import Settings

T = TypeVar("T")

_IMMEDIATE = "gradlab_immediate"
# JSON columns (specs, tags, check results) through orjson: several times faster than json.
_JSON_CODEC: dict[str, Any] = {
    "json_serializer": lambda value: orjson.dumps(value).decode(),
    "json_deserializer": orjson.loads,
}


def is_sqlite(engine: Engine | Connection) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def normalise_url(url: str) -> str:
    """Let users write ``postgresql://`` or ``postgres://`` and still get psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_setup(engine: Engine, busy_ms: int, autocommit: bool = False) -> None:
    """gradlab's PRAGMAs on each new SQLite connection, and BEGIN emitted by us (unless in
    ``autocommit``: each statement its own transaction)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            f"busy_timeout={busy_ms}",
            "temp_store=MEMORY",
            "cache_size=-8192",  # 8 MiB of page cache per connection
            "mmap_size=0",  # read through the page cache; RSS does not grow with the file
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    if autocommit:
        return

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_db_engine(
    url: str,
    settings: Settings | None = None,
    *,
    pool_size: int = 8,
    max_overflow: int | None = None,
    pre_ping: bool = True,
    autocommit: bool = False,
) -> Engine:
    """An engine with gradlab's connection set-up for SQLite or PostgreSQL; in
    ``autocommit`` for engines of single SELECTs, which need no BEGIN/ROLLBACK around."""
    settings = settings or Settings()
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_size=pool_size,
            max_overflow=16 if max_overflow is None else max_overflow,
            pool_pre_ping=pre_ping,
            **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
            **_JSON_CODEC,
        )

    busy_ms = settings.sqlite_busy_timeout_ms
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        pool_size=pool_size,
        max_overflow=24 if max_overflow is None else max_overflow,
        **_JSON_CODEC,
    )
    _sqlite_setup(engine, busy_ms, autocommit)
    return engine


def create_async_db_engine(url: str, settings: Settings | None = None) -> Any:
    """``create_async_engine`` on aiosqlite or psycopg's async driver, set up as above, in
    autocommit: for single SELECTs."""
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = settings or Settings()
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(
            parsed, pool_size=8, max_overflow=16, isolation_level="AUTOCOMMIT", **_JSON_CODEC
        )
    busy_ms = settings.sqlite_busy_timeout_ms
    engine = create_async_engine(
        parsed.set(drivername="sqlite+aiosqlite"),
        connect_args={"timeout": busy_ms / 1000},
        pool_size=8,
        max_overflow=24,
        **_JSON_CODEC,
    )
    _sqlite_setup(engine.sync_engine, busy_ms, autocommit=True)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, but its transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{_IMMEDIATE: True})


def is_locked_error(exc: BaseException) -> bool:
    """SQLite's "database is locked"/"busy": the one error worth retrying as-is."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and ("locked" in text or "busy" in text)


def retry_locked(fn: Callable[[], T], attempts: int = 5, delay: float = 0.05) -> T:
    """Run ``fn`` again when SQLite reports a lock it waited for in vain."""
    for attempt in range(attempts):
        try:
            return fn()
        except OperationalError as exc:
            if not is_locked_error(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay * (2**attempt))
    raise AssertionError("unreachable")


READ_PATH_ENV = "GRADLAB_BENCH_READ_PATH"  # the benchmarks' switch; read in one place


def _processors(engine: Engine, statement: Any, description: Any) -> list[Any]:
    """Each selected column's result processor for the DBAPI type in ``description``, through
    public API: the type's implementation for the dialect, and its ``result_processor``."""
    dialect = engine.dialect
    return [
        c.type.dialect_impl(dialect).result_processor(dialect, d[1])
        for c, d in zip(statement.selected_columns, description, strict=True)
    ]


def _pg_conninfo(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class RawQuery:
    """A SELECT for the hottest reads: compiled once per dialect by SQLAlchemy, run on a DBAPI
    cursor, its values converted by the column types' own result processors.

    It is meant for single-row reads on the event loop: each thread keeps one connection of
    its own, outside the pool, in autocommit — so a read on the loop never waits for a pooled
    connection (which threads streaming a response may hold until the loop sends it).
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
        if self.processors is None:
            self.processors = _processors(self.engine, self.statement, description)
        if raw is None:
            return None
        return {
            name: (proc(value) if proc is not None else value)
            for name, proc, value in zip(self.names, self.processors, raw, strict=True)
        }


class _HandPool:
    """PostgreSQL: up to ``size`` psycopg ``AsyncConnection`` s opened on demand, in
    autocommit, each with a binary cursor, handed out through an ``asyncio.Queue``."""

    def __init__(self, engine: Engine, size: int = 8) -> None:
        self.conninfo, self.size = _pg_conninfo(engine), size
        self.idle: asyncio.Queue[Any] | None = None
        self.opened = 0

    async def _cursor(self) -> Any:
        import psycopg
        from psycopg.types.json import set_json_loads

        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        set_json_loads(orjson.loads, conn)
        return conn.cursor(binary=True)

    async def fetchone(self, query: RawQuery, params: dict[str, Any]) -> dict[str, Any] | None:
        import psycopg

        if self.idle is None:
            self.idle = asyncio.Queue()
        if self.idle.empty() and self.opened < self.size:
            self.opened += 1
            cursor = await self._cursor()
        else:
            cursor = await self.idle.get()
        try:
            for attempt in (1, 2):
                try:
                    await cursor.execute(query.sql, params)
                    raw = await cursor.fetchone()
                    # psycopg builds the description anew on each access: once is enough.
                    description = cursor.description if query.processors is None else None
                    break
                except psycopg.OperationalError:  # a server restart: reconnect once
                    with contextlib.suppress(Exception):
                        await cursor.connection.close()
                    cursor = await self._cursor()
                    if attempt == 2:
                        raise
        finally:
            self.idle.put_nowait(cursor)
        return query.convert(raw, description)

    async def close(self) -> None:
        while self.idle is not None and not self.idle.empty():
            cursor = self.idle.get_nowait()
            with contextlib.suppress(Exception):
                await cursor.connection.close()
        self.idle, self.opened = None, 0


class _LibPool:
    """PostgreSQL: ``psycopg_pool.AsyncConnectionPool`` of autocommit connections, each
    with a binary cursor kept for it (a new cursor costs more than the pool's own work)."""

    def __init__(self, engine: Engine, size: int = 8) -> None:
        self.conninfo, self.size = _pg_conninfo(engine), size
        self.pool: Any = None
        self.cursors: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    async def _pool(self) -> Any:
        if self.pool is None:
            from psycopg.types.json import set_json_loads
            from psycopg_pool import AsyncConnectionPool

            async def configure(conn: Any) -> None:
                set_json_loads(orjson.loads, conn)

            pool = AsyncConnectionPool(
                self.conninfo,
                min_size=1,
                max_size=self.size,
                kwargs={"autocommit": True},
                configure=configure,
                open=False,
            )
            await pool.open()
            self.pool = pool
        return self.pool

    async def fetchone(self, query: RawQuery, params: dict[str, Any]) -> dict[str, Any] | None:
        import psycopg

        pool = await self._pool()
        for attempt in (1, 2):
            # getconn/putconn rather than the connection() context manager, which costs
            # as much again as the pool's own work (asynccontextmanager and conn.__aexit__).
            conn = await pool.getconn()
            try:
                cursor = self.cursors.get(conn)
                if cursor is None:
                    cursor = self.cursors[conn] = conn.cursor(binary=True)
                await cursor.execute(query.sql, params)
                raw = await cursor.fetchone()
                description = cursor.description if query.processors is None else None
                break
            except psycopg.OperationalError:
                # A server restart breaks every idle connection: have the pool test them
                # and replace the broken ones (the one in hand is dropped on return).
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
            await self.pool.close()
            self.pool = None


class ReadPath:
    """How :meth:`Database.first` runs a single-row SELECT. Variants, for the benchmarks:

    ``raw``      hand-written: compiled SQL on a per-thread DBAPI connection; on PostgreSQL
                 the async read on a hand-rolled pool of psycopg ``AsyncConnection`` s
    ``raw-pool`` the same, with ``psycopg_pool.AsyncConnectionPool`` for the async read
    ``core``     SQLAlchemy Core, ``conn.execute(stmt, params).mappings().first()``, on an
                 engine of the event loop's own (so it never waits for the shared pool),
                 inline even on PostgreSQL
    ``thread``   Core in a worker thread (``anyio.to_thread``), on an engine of its own
    ``async``    ``create_async_engine``: aiosqlite / psycopg's async driver
    """

    NAMES = ("raw", "raw-pool", "core", "thread", "async")

    def __init__(self, name: str, url: str, engine: Engine, settings: Settings) -> None:
        if name not in self.NAMES:
            raise ValueError(f"{READ_PATH_ENV}={name!r}: one of {', '.join(self.NAMES)}")
        self.name, self.url, self.engine, self.settings = name, url, engine, settings
        self.pg = engine.dialect.name == "postgresql"
        self._raw: dict[Any, RawQuery] = {}
        self._async_pool: _HandPool | _LibPool | None = None
        if self.pg and name == "raw":
            self._async_pool = _HandPool(engine)
        elif self.pg and name == "raw-pool":
            self._async_pool = _LibPool(engine)
        self._loop_engine: Engine | None = None
        self._threads_engine: Engine | None = None
        self._async_engine: Any = None

    def _query(self, statement: Any) -> RawQuery:
        query = self._raw.get(statement)
        if query is None:
            query = self._raw[statement] = RawQuery(self.engine, statement)
        return query

    def _core(self, engine: Engine, statement: Any, params: dict[str, Any]) -> Any:
        for attempt in (1, 2):
            try:
                with engine.connect() as conn:
                    row = conn.execute(statement, params).mappings().first()
                return None if row is None else dict(row)
            except DBAPIError as exc:
                if not exc.connection_invalidated or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def first(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        if self.name in ("raw", "raw-pool"):
            return self._query(statement).first(params)
        if self.name == "core":
            if self._loop_engine is None:
                # One connection, the loop's alone: only the loop's thread reads here.
                self._loop_engine = create_db_engine(
                    self.url,
                    self.settings,
                    pool_size=1,
                    max_overflow=0,
                    pre_ping=False,
                    autocommit=True,
                )
            return self._core(self._loop_engine, statement, params)
        return self._core(self._thread_engine(), statement, params)

    def _thread_engine(self) -> Engine:
        if self._threads_engine is None:
            # Retries a dropped connection instead of pinging it at every checkout.
            self._threads_engine = create_db_engine(
                self.url, self.settings, pre_ping=False, autocommit=True
            )
        return self._threads_engine

    async def first_async(self, statement: Any, params: dict[str, Any]) -> dict[str, Any] | None:
        if self._async_pool is not None:
            return await self._async_pool.fetchone(self._query(statement), params)
        if self.name == "thread":
            import anyio.to_thread

            engine = self._thread_engine()
            return await anyio.to_thread.run_sync(self._core, engine, statement, params)
        if self.name == "async":
            return await self._first_async_engine(statement, params)
        return self.first(statement, params)  # inline: SQLite's read has no round trip

    async def _first_async_engine(
        self, statement: Any, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        if self._async_engine is None:
            self._async_engine = create_async_db_engine(self.url, self.settings)
        for attempt in (1, 2):
            try:
                async with self._async_engine.connect() as conn:
                    row = (await conn.execute(statement, params)).mappings().first()
                return None if row is None else dict(row)
            except DBAPIError as exc:
                if not exc.connection_invalidated or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._async_pool is not None:
            await self._async_pool.close()
        if self._async_engine is not None:
            await self._async_engine.dispose()
            self._async_engine = None

    def close(self) -> None:
        for query in self._raw.values():
            conn = getattr(query._local, "conn", None)  # this thread's only
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                query._local.conn = None
        for engine in (self._loop_engine, self._threads_engine):
            if engine is not None:
                engine.dispose()


class Database:
    """One process's engines and session factories.

    ``read`` sessions begin deferred transactions; ``write`` sessions take the write lock
    first on SQLite (and behave the same as ``read`` on PostgreSQL).
    """

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, settings)
        self.write_engine = writer(self.engine)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        path = os.environ.get(READ_PATH_ENV, "raw")
        self.read_path = ReadPath(path, self.url, self.engine, settings or Settings())
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._write() as session, session.begin():
            yield session

    def first(self, statement: Any, **params: Any) -> dict[str, Any] | None:
        """The first row of a SELECT as a dict (None when there is none), with no session
        and no thread hop: the hot single-row reads. See :class:`ReadPath`."""
        return self.read_path.first(statement, params)

    async def first_async(self, statement: Any, **params: Any) -> dict[str, Any] | None:
        """:meth:`first` for the event loop: on PostgreSQL the round trip is awaited."""
        return await self.read_path.first_async(statement, params)

    async def aclose(self) -> None:
        """Close what the async reads opened on this event loop."""
        await self.read_path.aclose()

    def dispose(self) -> None:
        self.read_path.close()
        self.engine.dispose()
