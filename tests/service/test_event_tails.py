"""The streams of one job share one poller (``service.events.tail``): each stream still gets
every point exactly once, in order, from its own cursor; a stalled stream holds no other one
back; and the poller stops when the last stream of its job closes. Real SQLite and
PostgreSQL, a job written through the worker's flush path while the streams read it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import orjson
import pytest

from service.events import tail as tail_module
from service.events.service import Cursor, JobEvents
from service.events.streams import Streams
from service.jobs import service as jobs_service
from store.accounts import LOCAL
from store.codec import pack_state
from store.db import Database
from store.lifecycle import SUCCEEDED
from store.queue import Claim, Queue, flush_records
from store.spec import JobSpec
from tests.conftest import SYNTHETIC, make_settings

INTERVAL = 0.02
POINTS = 6000
STEP = 500  # points per flush of the writer


class Job:
    """A claimed job whose points a test writes as it likes."""

    def __init__(self, db: Database, url: str) -> None:
        settings = make_settings(url)
        with db.write_session() as session:
            spec = JobSpec.model_validate({**SYNTHETIC, "iterations": POINTS})
            self.id = jobs_service.submit(session, spec, settings, LOCAL)[0].id
        self.queue = Queue(db, settings, "test")
        claim = self.queue.claim()
        assert claim is not None and claim.job_id == self.id
        self.claim: Claim = claim
        self.state = pack_state(
            {"iteration": 0, "params": {"W": np.zeros((2, 3)), "b": np.zeros(3)}, "velocity": {}}
        )
        self.written = 0

    def write(self, count: int) -> None:
        """The next ``count`` points; the last of the job's ends it, succeeded."""
        records = [
            (i, 1.0 / (i + 1), 1.0 / (i + 1), 0.0, 0.5, 0.75)
            for i in range(self.written, self.written + count)
        ]
        self.written += count
        finish = SUCCEEDED if self.written >= POINTS else None
        flush_records(self.queue, self.claim, records, self.state, chunk=STEP, finish=finish)


def parse(event: dict[str, str] | bytes) -> tuple[str, str, Any]:
    """(kind, id, data) of an event as the stream yields it."""
    if isinstance(event, dict):
        return event["event"], event["id"], orjson.loads(event["data"])
    fields = dict(line.split(": ", 1) for line in event.decode().strip().split("\r\n"))
    return fields["event"], fields["id"], orjson.loads(fields["data"])


def iterations(events: list[tuple[str, str, Any]]) -> list[int]:
    out: list[int] = []
    for kind, _, data in events:
        if kind == "metrics":
            assert data["columns"]["iteration"] == list(range(data["first"], data["last"] + 1))
            out += data["columns"]["iteration"]
    return out


async def drain(stream: AsyncIterator[Any], out: list[tuple[str, str, Any]]) -> None:
    async for event in stream:
        out.append(parse(event))


def run(url: str, test: Callable[[Streams, Job], Awaitable[None]]) -> None:
    settings = make_settings(url)
    db = Database(url, settings)

    async def main() -> None:
        streams = Streams(settings, db)
        try:
            await test(streams, Job(db, url))
        finally:
            await streams.aclose()

    try:
        asyncio.run(main())
    finally:
        db.dispose()


async def write_all(job: Job) -> None:
    """The job's points from ``first`` on, a flush at a time, while the streams read."""
    while job.written < POINTS:
        await asyncio.to_thread(job.write, STEP)
        await asyncio.sleep(INTERVAL)


def test_streams_of_one_job_share_a_poller_and_each_gets_every_point_once(db_url):
    async def test(streams: Streams, job: Job) -> None:
        await asyncio.to_thread(job.write, 1500)  # history, before any stream
        a: list[tuple[str, str, Any]] = []
        b: list[tuple[str, str, Any]] = []
        from_start = JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL)
        resumed = JobEvents(streams, job.id, LOCAL, Cursor.parse("p700-c0"), INTERVAL)
        tasks = [
            asyncio.create_task(drain(s.__aiter__(), out))
            for s, out in ((from_start, a), (resumed, b))
        ]
        await asyncio.sleep(INTERVAL * 5)
        (tail,) = streams.tails.tails.values()  # one poller for both
        assert tail.refs == 2 and tail.running
        await write_all(job)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)

        assert iterations(a) == list(range(POINTS))
        assert iterations(b) == list(range(700, POINTS))
        for events in (a, b):
            assert events[0][0] == "status" and events[-1][0] == "end"
            assert events[-1][2]["status"] == "succeeded"
            # Every id resumes exactly where its event left off.
            metrics = [(i, d) for k, i, d in events if k == "metrics"]
            assert all(i.startswith(f"p{d['last'] + 1}-") for i, d in metrics)
        assert streams.tails.tails == {} and not tail.running  # the last one out stopped it
        assert tail.refs == 0

    run(db_url, test)


def test_a_stalled_stream_holds_no_other_back_and_catches_up_exactly(db_url, monkeypatch):
    monkeypatch.setattr(tail_module, "WINDOW_BLOCKS", 2)  # the stalled one falls out of it

    async def test(streams: Streams, job: Job) -> None:
        stalled_events: list[tuple[str, str, Any]] = []
        stalled = JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL).__aiter__()
        stalled_events.append(parse(await stalled.__anext__()))  # one event, then no reading
        live: list[tuple[str, str, Any]] = []
        reader = asyncio.create_task(
            drain(JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL).__aiter__(), live)
        )
        await write_all(job)
        await asyncio.wait_for(reader, 60)  # finished while the other read nothing
        assert iterations(live) == list(range(POINTS)) and live[-1][0] == "end"
        (tail,) = streams.tails.tails.values()
        assert tail.refs == 1 and tail.window[0].first > 0  # the window moved past it

        await asyncio.wait_for(drain(stalled, stalled_events), 60)
        assert iterations(stalled_events) == list(range(POINTS))
        assert stalled_events[-1][0] == "end"
        assert streams.tails.tails == {}

    run(db_url, test)


def test_closing_the_last_stream_stops_the_poller(db_url):
    async def test(streams: Streams, job: Job) -> None:
        await asyncio.to_thread(job.write, STEP)
        first = JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL).__aiter__()
        second = JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL).__aiter__()
        assert parse(await first.__anext__())[0] == "status"
        assert parse(await second.__anext__())[0] == "status"
        (tail,) = streams.tails.tails.values()
        assert tail.refs == 2
        await first.aclose()  # a client leaving
        assert tail.refs == 1 and tail.running
        polls = tail.version
        await asyncio.sleep(INTERVAL * 10)
        assert tail.version > polls  # still polling for the other stream
        await second.aclose()
        assert tail.refs == 0 and not tail.running and streams.tails.tails == {}
        polls = tail.version
        await asyncio.sleep(INTERVAL * 10)
        assert tail.version == polls  # no poll after the last one left

        # A new stream starts a new poller.
        third = JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL).__aiter__()
        assert parse(await third.__anext__())[0] == "status"
        assert streams.tails.tails[(job.id, INTERVAL)] is not tail
        await third.aclose()

    run(db_url, test)


@pytest.mark.parametrize("interval", [INTERVAL, 0.05])
def test_streams_asking_different_intervals_get_a_poller_each(sqlite_url, interval):
    async def test(streams: Streams, job: Job) -> None:
        a = JobEvents(streams, job.id, LOCAL, Cursor(), INTERVAL).__aiter__()
        b = JobEvents(streams, job.id, LOCAL, Cursor(), interval).__aiter__()
        await a.__anext__()
        await b.__anext__()
        assert len(streams.tails.tails) == (1 if interval == INTERVAL else 2)
        await a.aclose()
        await b.aclose()
        assert streams.tails.tails == {}

    run(sqlite_url, test)
