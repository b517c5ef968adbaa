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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
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


def create_db_engine(url: str, settings: Settings | None = None) -> Engine:
    """An engine with gradlab's connection set-up for SQLite or PostgreSQL."""
    settings = settings or Settings()
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True, **_JSON_CODEC)

    busy_ms = settings.sqlite_busy_timeout_ms
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        pool_size=8,
        max_overflow=24,
        **_JSON_CODEC,
    )

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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

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


class FastQuery:
    """A SELECT for the hottest reads: compiled once per dialect by SQLAlchemy, run on a DBAPI
    cursor, its values converted by the column types' own result processors.

    A Core execution costs ~100 µs of Python around a ~15 µs SQLite lookup; this skips the
    Connection/Result machinery but keeps SQLAlchemy's SQL and type conversions. It is meant
    for single-row reads on the event loop: each thread keeps one connection of its own,
    outside the pool, in autocommit — so a read on the loop never waits for a pooled
    connection (which threads streaming a response may hold until the loop sends it).
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.positions = compiled.positiontup  # None for named paramstyles (psycopg)
        self.columns = list(statement.selected_columns)
        self.names = [c.key for c in self.columns]
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

    def first(self, **params: Any) -> dict[str, Any] | None:
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
        return self._convert(raw, description)

    def _convert(self, raw: Any, description: Any) -> dict[str, Any] | None:
        if self.processors is None:
            self.processors = [
                c.type._cached_result_processor(self.engine.dialect, d[1])
                for c, d in zip(self.columns, description, strict=True)
            ]
        if raw is None:
            return None
        return {
            name: (proc(value) if proc is not None else value)
            for name, proc, value in zip(self.names, self.processors, raw, strict=True)
        }

    # --- PostgreSQL, asynchronously --------------------------------------------------------

    ASYNC_CONNECTIONS = 8

    async def first_async(self, **params: Any) -> dict[str, Any] | None:
        """PostgreSQL only: the same read on psycopg's async driver, so that the event loop
        serves other requests during the round trip to the server (a SQLite read has no
        round trip and is cheaper inline). Up to ``ASYNC_CONNECTIONS`` connections, opened
        on demand, in autocommit."""
        import psycopg

        idle: asyncio.Queue[Any] = self._async_idle()
        if idle.empty() and self._async_opened < self.ASYNC_CONNECTIONS:
            self._async_opened += 1
            cursor = await self._async_cursor()
        else:
            cursor = await idle.get()
        try:
            for attempt in (1, 2):
                try:
                    await cursor.execute(self.sql, params)
                    raw = await cursor.fetchone()
                    # psycopg builds the description anew on each access: once is enough.
                    description = cursor.description if self.processors is None else None
                    break
                except psycopg.OperationalError:  # a server restart: reconnect once
                    with contextlib.suppress(Exception):
                        await cursor.connection.close()
                    cursor = await self._async_cursor()
                    if attempt == 2:
                        raise
        finally:
            idle.put_nowait(cursor)
        return self._convert(raw, description)

    def _async_idle(self) -> asyncio.Queue[Any]:
        if getattr(self, "_idle", None) is None:
            self._idle: asyncio.Queue[Any] | None = asyncio.Queue()
            self._async_opened = 0
        assert self._idle is not None
        return self._idle

    async def _async_cursor(self) -> Any:
        """A new connection's cursor, kept with it: results in binary, JSON through orjson."""
        import psycopg
        from psycopg.types.json import set_json_loads

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        set_json_loads(orjson.loads, conn)
        return conn.cursor(binary=True)


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
        self._fast: dict[Any, FastQuery] = {}
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

    def fast(self, statement: Any) -> FastQuery:
        """``statement`` as a :class:`FastQuery` on this database, compiled once."""
        query = self._fast.get(statement)
        if query is None:
            query = self._fast[statement] = FastQuery(self.engine, statement)
        return query

    def dispose(self) -> None:
        self.engine.dispose()
