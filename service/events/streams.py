"""What the open event streams share: their caps, and where their reads run.

Every stream takes a slot before it starts: at most ``max_streams_per_client`` per client
address (beyond that 429 ``too_many_streams``) and ``max_streams`` in all (503
``streams_full``), both with ``Retry-After``. A stream holds no threadpool thread while it
waits or reads: on SQLite its reads run in a small executor of its own (a read is a few
short indexed lookups), on PostgreSQL on the async psycopg driver, on the event loop. The
streams of one job share one poller (:mod:`service.events.tail`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from service.errors import Busy
from service.events.tail import Polled, Tails, poll_job
from store.db import Database
from store.settings import Settings

T = TypeVar("T")

READERS = 2  # SQLite: threads reading for every stream of the process
ASYNC_CONNECTIONS = 4  # PostgreSQL: connections reading for every stream of the process
RETRY_AFTER = 5  # seconds: how long a refused client should wait before trying again


class Recent:
    """The last few metrics payloads read, by ``(job, first, last)``: streams of one job
    that catch up from the same cursor read and encode each range once between them."""

    def __init__(self, size: int = 64) -> None:
        self.size, self._items, self._lock = size, OrderedDict[Any, Any](), threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Streams:
    """The process's event streams: slots by client address, and their reads."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.total, self.per_client = settings.max_streams, settings.max_streams_per_client
        self.send_timeout = settings.stream_send_timeout_seconds
        self.db = db
        self.open: Counter[str] = Counter()
        self.recent = Recent()
        self.tails = Tails(self._poll)
        self._executor: ThreadPoolExecutor | None = None
        self._async: AsyncEngine | None = None

    def acquire(self, client: str) -> None:
        """Take a slot for ``client``, or Busy (429 over its cap, 503 over the total)."""
        if self.open[client] >= self.per_client:
            raise Busy(
                f"This client already has {self.open[client]} event streams open, the most "
                f"one client may hold (GRADLAB_MAX_STREAMS_PER_CLIENT); close one first.",
                RETRY_AFTER,
                status=429,
                kind="too_many_streams",
            )
        if sum(self.open.values()) >= self.total:
            raise Busy(
                f"The server has {self.total} event streams open, the most it serves at once "
                "(GRADLAB_MAX_STREAMS); try again shortly.",
                RETRY_AFTER,
                kind="streams_full",
            )
        self.open[client] += 1

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]

    async def read(self, fn: Callable[[Session], T]) -> T:
        """``fn`` on a read session, off the threadpool (see the module's docstring)."""
        if self.db.is_sqlite:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(READERS, thread_name_prefix="gradlab-events")
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._read_sync, fn
            )
        if self._async is None:
            self._async = create_async_engine(
                self.db.url,
                pool_size=ASYNC_CONNECTIONS,
                max_overflow=0,
                pool_pre_ping=True,
                json_deserializer=orjson.loads,
            )
        async with AsyncSession(self._async) as session:
            return await session.run_sync(fn)

    async def _poll(self, job_id: str, frontier: int | None, checks_known: int) -> Polled:
        return await self.read(partial(poll_job, job_id, frontier, checks_known))

    def _read_sync(self, fn: Callable[[Session], T]) -> T:
        with self.db.read_session() as session:
            return fn(session)

    async def aclose(self) -> None:
        await self.tails.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if self._async is not None:
            await self._async.dispose()
