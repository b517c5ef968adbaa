"""One poller per job, shared by all of that job's streams.

With a poll per stream, 200 streams of one job made 800 database reads a second of the same
rows and encoded the same points 200 times: that, not the sending, kept a listing waiting
behind the event loop. A :class:`Tail` polls its job once per interval for every stream of it
(by ``(job, interval)``) and keeps the last few blocks of new points, each encoded once. Each
stream keeps its own cursor and sends from the tail at its own pace; one that is behind the
tail's window (a stalled client, a resumption from an old ``Last-Event-ID``, a first look at
the history) reads the points it lacks from the database itself, so no stream waits for
another and the tail never waits for a stream. The tail runs while a stream holds it: the
last one to leave stops its poller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.jobs import repository as jobs_repo
from service.jobs.service import job_view
from service.metrics import repository as metrics_repo
from service.metrics import service as metrics_service
from store.accounts import LOCAL
from store.chunks import COLUMNS, Col
from store.tables import GradientCheck

MAX_POINTS_PER_EVENT = 10_000
WINDOW_BLOCKS = 64  # the newest blocks a tail keeps: ~16 s of a job at the default interval
WINDOW_BYTES = 16 << 20  # ... and at most this much of them


@dataclass
class Points:
    """A range of points as one metrics event's payload, ``{first, last, columns}``, encoded
    once for every stream that sends it."""

    first: int
    last: int
    data: bytes  # one line of JSON
    _frames: dict[int, bytes] = field(default_factory=dict, repr=False)

    def frame(self, checks: int) -> bytes:
        """The whole SSE event, its id the cursor after it (``p<last + 1>-c<checks>``).

        Framed here, not by sse-starlette, whose encoder splits the megabyte of data into
        lines on the event loop; streams in the same place share the frame's bytes."""
        framed = self._frames.get(checks)
        if framed is None:
            head = b"event: metrics\r\nid: p%d-c%d\r\ndata: " % (self.last + 1, checks)
            framed = self._frames[checks] = head + self.data + b"\r\n\r\n"
        return framed


@dataclass
class Polled:
    """What one poll saw: the job (None once deleted), the checks after those the tail has,
    and the points from its frontier on (None when there are none)."""

    view: dict[str, Any] | None
    checks: list[Any]
    points: Points | None


def _block_columns(block: np.ndarray) -> dict[str, list]:
    columns: dict[str, list] = {"iteration": block[:, Col.ITERATION].astype(np.int64).tolist()}
    for j, name in enumerate(COLUMNS[1:], start=1):
        columns[name] = [None if v != v else v for v in block[:, j].tolist()]  # NaN → null
    return columns


def encode_points(block: np.ndarray) -> Points:
    first, last = int(block[0, Col.ITERATION]), int(block[-1, Col.ITERATION])
    payload = {"first": first, "last": last, "columns": _block_columns(block)}
    return Points(first, last, orjson.dumps(payload))


def poll_job(job_id: str, frontier: int | None, checks_known: int, session: Session) -> Polled:
    """A tail's look at its job: the job, its checks after the first ``checks_known``, and
    its points from ``frontier`` on (up to a cap); no points on a first look (``None``)."""
    # The router let each stream in only after its caller could see the job (owners never
    # change), so the one poll serving all of them reads it as the local admin.
    job = jobs_repo.get_job(session, job_id, LOCAL)
    if job is None:
        return Polled(None, [], None)
    view = job_view(job)
    checks = list(
        session.scalars(
            select(GradientCheck.result)
            .where(GradientCheck.job_id == job_id)
            .order_by(GradientCheck.iteration, GradientCheck.reference)
            .offset(checks_known)
        )
    )
    points = None
    if frontier is not None and view["iterations_done"] > frontier:
        end = min(view["iterations_done"], frontier + MAX_POINTS_PER_EVENT) - 1
        conn = session.connection()
        block = metrics_service.read_all(
            conn, job_id, metrics_repo.span(conn, job_id, frontier, end)
        )
        points = encode_points(block) if len(block) else None
    return Polled(view, checks, points)


# One poll: (job id, the tail's frontier or None on the first poll, checks it has) -> Polled
Poll = Callable[[str, int | None, int], Awaitable[Polled]]


class Tail:
    """The shared, newest state of one job's events, kept current by one poller task."""

    def __init__(self, job_id: str, interval: float, poll: Poll) -> None:
        self.job_id, self.interval, self._poll = job_id, interval, poll
        self.refs = 0
        self.version = 0  # polls done
        self.view: dict[str, Any] | None = None
        self.checks: list[Any] = []  # every check so far, in (iteration, reference) order
        self.frontier = 0  # the next iteration the tail will read
        self.window: deque[Points] = deque()  # contiguous blocks ending at the frontier
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        """Polling, and not told to stop."""
        return self._task is not None and not self._task.done() and not self._stopped

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def cancel(self) -> None:
        """Stop polling (at the poller's next await)."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        self.cancel()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        first = True
        try:
            while True:
                polled = await self._poll(
                    self.job_id, None if first else self.frontier, len(self.checks)
                )
                behind = self._take(polled, first)
                first = False
                if not behind:
                    await asyncio.sleep(self.interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every stream of the job ends with it, as with its own poll
            self.error = exc
            self._notify()

    def _take(self, polled: Polled, first: bool) -> bool:
        """Keep what a poll saw and wake the streams; whether points remain to read now."""
        self.view = polled.view
        self.checks += polled.checks
        if first and polled.view is not None:
            # The window starts at the present: older points are history, read per stream.
            self.frontier = polled.view["iterations_done"]
        elif polled.points is not None:
            self.window.append(polled.points)
            self.frontier = polled.points.last + 1
            size = sum(len(p.data) for p in self.window)
            while len(self.window) > WINDOW_BLOCKS or (
                len(self.window) > 1 and size > WINDOW_BYTES
            ):
                size -= len(self.window.popleft().data)
        self._notify()
        return polled.view is not None and polled.view["iterations_done"] > self.frontier

    def _notify(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, seen: int) -> None:
        """Return once the tail has polled since version ``seen``; raise its poller's error."""
        while self.version <= seen and self.error is None:
            await self._changed.wait()
        if self.error is not None:
            raise self.error

    def block_at(self, start: int) -> Points | None:
        """The window's block that starts at ``start``, if any."""
        for block in self.window:
            if block.first == start:
                return block
        return None

    def boundary_after(self, start: int) -> int:
        """The first block boundary above ``start``: where a read of the points at ``start``
        that the window lacks should stop, so that the stream lands on a block of it."""
        for block in self.window:
            if block.first > start:
                return block.first
        return self.frontier


class Tails:
    """The process's tails, by ``(job, interval)``, each counted by the streams holding it."""

    def __init__(self, poll: Poll) -> None:
        self._poll = poll
        self.tails: dict[tuple[str, float], Tail] = {}

    def join(self, job_id: str, interval: float) -> Tail:
        """The job's tail, started if no stream held it (or if its poller failed)."""
        key = (job_id, interval)
        tail = self.tails.get(key)
        if tail is None or not tail.running:
            tail = self.tails[key] = Tail(job_id, interval, self._poll)
            tail.start()
        tail.refs += 1
        return tail

    def leave(self, tail: Tail) -> None:
        """Give a hold on ``tail`` back; the last one stops its poller. Synchronous: a stream
        leaves from its ``finally``, often while being cancelled, where an await would not
        get to run."""
        tail.refs -= 1
        if tail.refs > 0:
            return
        key = (tail.job_id, tail.interval)
        if self.tails.get(key) is tail:
            del self.tails[key]
        tail.cancel()

    async def aclose(self) -> None:
        for tail in list(self.tails.values()):
            await tail.stop()
        self.tails.clear()
