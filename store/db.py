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

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from store.fastread import FastReader, Reader
from store.settings import Settings

T = TypeVar("T")

_IMMEDIATE = "gradlab_immediate"
# JSON columns (specs, tags, check results) through orjson: several times faster than json.
JSON_CODEC: dict[str, Any] = {
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


def configure_sqlite(engine: Engine, busy_ms: int, autocommit: bool = False) -> None:
    """gradlab's PRAGMAs on each new connection of a SQLite engine, and BEGIN emitted by us
    (unless in ``autocommit``: each statement its own transaction)."""

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
            **JSON_CODEC,
        )

    busy_ms = settings.sqlite_busy_timeout_ms
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        pool_size=pool_size,
        max_overflow=24 if max_overflow is None else max_overflow,
        **JSON_CODEC,
    )
    configure_sqlite(engine, busy_ms, autocommit)
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
        # What first() reads with; the benchmarks put the alternatives they compare here.
        self.reader: Reader = FastReader(self.engine)
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

    async def first(self, statement: Any, **params: Any) -> dict[str, Any] | None:
        """The first row of a SELECT as a dict (None when there is none), with no session
        and no thread hop: the hot single-row reads (see :class:`FastReader`)."""
        return await self.reader.first(statement, params)

    async def aclose(self) -> None:
        """Close what the reads opened on this event loop (its async pool)."""
        await self.reader.aclose()

    def dispose(self) -> None:
        self.reader.close()
        self.engine.dispose()
