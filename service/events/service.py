"""A job's live event stream: new points, new gradient checks, status changes, the end.

The job's tail (:mod:`service.events.tail`) polls the database for all of its streams (workers
are other processes, possibly on other machines); each stream sends only what is new since
its client's cursor. The cursor travels as every event's id,
``p<next iteration>-c<checks sent>``, so a client that reconnects with ``Last-Event-ID``
resumes exactly where it stopped: no gaps, no repeats. Each event is produced only after the
previous one was sent, so a stalled client holds the stream back instead of filling a buffer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from sqlalchemy.orm import Session

from service.events.streams import Recent, Streams
from service.events.tail import MAX_POINTS_PER_EVENT, Points, Tail, encode_points
from service.metrics import repository as metrics_repo
from service.metrics import service as metrics_service
from store.accounts import Caller
from store.status import TERMINAL

_CURSOR = re.compile(r"^p(\d{1,12})-c(\d{1,9})$")


@dataclass
class Cursor:
    points: int = 0  # the next iteration to send
    checks: int = 0  # checks sent, in (iteration, reference) order

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """The cursor in a Last-Event-ID; the start for anything else."""
        match = _CURSOR.match(text or "")
        return cls(int(match[1]), int(match[2])) if match else cls()

    def __str__(self) -> str:
        return f"p{self.points}-c{self.checks}"


def _event(kind: str, cursor: Cursor, data: Any) -> dict[str, str]:
    return {"event": kind, "id": str(cursor), "data": orjson.dumps(data).decode()}


def _read_points(
    recent: Recent, job_id: str, start: int, end: int, session: Session
) -> Points | None:
    """The stored points in ``[start, end]``, encoded; each range is read and encoded once
    for every stream of the job asking for it (streams catching up from one place)."""
    key = (job_id, start, end)
    points = recent.get(key)
    if points is None:
        conn = session.connection()
        block = metrics_service.read_all(conn, job_id, metrics_repo.span(conn, job_id, start, end))
        points = encode_points(block) if len(block) else None
        recent.put(key, points)
    return points


class JobEvents:
    """The events of one job from one cursor on, sent from the job's shared tail."""

    def __init__(
        self, streams: Streams, job_id: str, caller: Caller, cursor: Cursor, interval: float
    ) -> None:
        self.streams, self.job_id, self.cursor, self.interval = streams, job_id, cursor, interval
        self.caller = caller

    async def _next_points(self, tail: Tail) -> Points | None:
        """The block at the cursor: the tail's, or read for this stream alone when the
        tail's window does not start there (it is behind, or between two blocks)."""
        start = self.cursor.points
        block = tail.block_at(start)
        if block is None:
            end = min(tail.boundary_after(start), start + MAX_POINTS_PER_EVENT) - 1
            read = partial(_read_points, self.streams.recent, self.job_id, start, end)
            block = await self.streams.read(read)
        return block

    async def __aiter__(self) -> AsyncIterator[dict[str, str] | bytes]:
        tail = self.streams.tails.join(self.job_id, self.interval)
        try:
            async for event in self._events(tail):
                yield event
        finally:
            self.streams.tails.leave(tail)

    async def _events(self, tail: Tail) -> AsyncIterator[dict[str, str] | bytes]:
        last_status: tuple[Any, ...] | None = None
        seen = 0
        while True:
            await tail.changed(seen)
            seen, view = tail.version, tail.view
            if view is None:
                yield _event("end", self.cursor, {"id": self.job_id, "status": "deleted"})
                return
            status = (view["status"], view["attempts"], view["cancel_requested"])
            if status != last_status:
                last_status = status
                yield _event("status", self.cursor, view)
            while True:
                for check in tail.checks[self.cursor.checks :]:
                    if check["iteration"] >= self.cursor.points:
                        break  # its point is not sent yet
                    self.cursor.checks += 1
                    yield _event("check", self.cursor, check)
                if self.cursor.points >= tail.frontier:
                    break
                points = await self._next_points(tail)
                if points is None:
                    break  # not stored yet: the tail's next poll tells
                self.cursor.points = points.last + 1
                yield points.frame(self.cursor.checks)
            pending = len(tail.checks) > self.cursor.checks
            caught_up = self.cursor.points >= view["iterations_done"] and not pending
            if view["status"] in TERMINAL and caught_up:
                yield _event("end", self.cursor, view)
                return
