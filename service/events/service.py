"""A job's live event stream: new points, new gradient checks, status changes, the end.

The stream polls the database (workers are other processes, possibly on other machines) and
sends only what is new since the client's cursor. The cursor travels as every event's id,
``p<next iteration>-c<checks sent>``, so a client that reconnects with ``Last-Event-ID``
resumes exactly where it stopped: no gaps, no repeats. Each event is produced only after the
previous one was sent, so a stalled client holds the stream back instead of filling a buffer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.events.streams import Streams
from service.jobs import repository as jobs_repo
from service.jobs.service import job_view
from service.metrics import repository as metrics_repo
from service.metrics import service as metrics_service
from store.accounts import Caller
from store.chunks import COLUMNS, Col
from store.status import TERMINAL
from store.tables import GradientCheck

MAX_POINTS_PER_EVENT = 10_000
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


def _block_columns(block: np.ndarray) -> dict[str, list]:
    columns: dict[str, list] = {"iteration": block[:, Col.ITERATION].astype(np.int64).tolist()}
    for j, name in enumerate(COLUMNS[1:], start=1):
        columns[name] = [None if v != v else v for v in block[:, j].tolist()]  # NaN → null
    return columns


@dataclass(frozen=True)
class Points:
    """A metrics event's payload, encoded: ``{first, last, columns}``."""

    last: int
    data: bytes  # one line of JSON


def _points(block: np.ndarray) -> Points:
    first, last = int(block[0, Col.ITERATION]), int(block[-1, Col.ITERATION])
    payload = {"first": first, "last": last, "columns": _block_columns(block)}
    return Points(last, orjson.dumps(payload))


class JobEvents:
    """The events of one job from one cursor on."""

    def __init__(
        self, streams: Streams, job_id: str, caller: Caller, cursor: Cursor, interval: float
    ) -> None:
        self.streams, self.job_id, self.cursor, self.interval = streams, job_id, cursor, interval
        self.caller = caller

    def _poll(self, session: Session) -> tuple[dict[str, Any] | None, Points | None, list[Any]]:
        """The job, the points after the cursor (up to a cap, encoded), and the checks after
        it. Points are encoded once for every stream of the job asking for the same range."""
        job = jobs_repo.get_job(session, self.job_id, self.caller)
        if job is None:
            return None, None, []
        view = job_view(job)
        checks = list(
            session.scalars(
                select(GradientCheck.result)
                .where(GradientCheck.job_id == self.job_id)
                .order_by(GradientCheck.iteration, GradientCheck.reference)
                .offset(self.cursor.checks)
            )
        )
        start, points = self.cursor.points, None
        if view["iterations_done"] > start:
            end = min(view["iterations_done"], start + MAX_POINTS_PER_EVENT) - 1
            key = (self.job_id, start, end)
            points = self.streams.recent.get(key)
            if points is None:
                conn = session.connection()
                block = metrics_service.read_all(
                    conn, self.job_id, metrics_repo.span(conn, self.job_id, start, end)
                )
                points = _points(block) if len(block) else None
                self.streams.recent.put(key, points)
        return view, points, checks

    async def __aiter__(self) -> AsyncIterator[dict[str, str] | bytes]:
        last_status: tuple[Any, ...] | None = None
        while True:
            view, points, checks = await self.streams.read(self._poll)
            if view is None:
                yield _event("end", self.cursor, {"id": self.job_id, "status": "deleted"})
                return
            status = (view["status"], view["attempts"], view["cancel_requested"])
            if status != last_status:
                last_status = status
                yield _event("status", self.cursor, view)
            if points is not None:
                self.cursor.points = points.last + 1
                # Framed here, not by sse-starlette, whose encoder splits the megabyte of
                # data into lines on the event loop, for every stream again.
                yield b"event: metrics\r\nid: %s\r\ndata: %s\r\n\r\n" % (
                    str(self.cursor).encode(),
                    points.data,
                )
            pending = len(checks)
            for check in checks:
                if check["iteration"] >= self.cursor.points:
                    break  # its point is not sent yet (PostgreSQL reads it after the points)
                self.cursor.checks += 1
                pending -= 1
                yield _event("check", self.cursor, check)
            caught_up = self.cursor.points >= view["iterations_done"] and not pending
            if view["status"] in TERMINAL and caught_up:
                yield _event("end", self.cursor, view)
                return
            if caught_up or points is None:  # more to send right away only after a full event
                await anyio.sleep(self.interval)
