"""What every benchmark section shares: the database, a work folder, real processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

import migrations as migrate
from gradlab.procs import Server
from service.jobs import service as jobs_service
from store import lifecycle
from store.codec import pack_state
from store.db import Database
from store.lifecycle import SUCCEEDED
from store.queue import Claim, Queue, flush_records, notify
from store.settings import Settings
from store.spec import JobSpec
from store.status import TERMINAL
from store.tables import LOCAL_USER, Job


def parse_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


TINY = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 100},
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 100,
}
"""A job of 100 iterations: the tiny-job, pickup and GET benchmarks' unit."""


class Context:
    def __init__(self, url: str, work: Path) -> None:
        self.url, self.work = url, work
        work.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(url)
        self.settings = Settings(database_url=url)
        self.db = Database(url, self.settings)

    @property
    def engine_name(self) -> str:
        return "PostgreSQL" if self.db.engine.dialect.name == "postgresql" else "SQLite"

    def server(
        self,
        workers: int = 0,
        name: str = "serve",
        command: tuple[str, ...] = ("gradlab", "serve"),
        **settings: Any,
    ) -> Server:
        log = self.work / f"{name}.log"
        return Server(self.url, workers=workers, log=log, command=command, **settings)

    def insert_jobs(self, spec: dict[str, Any], count: int, name: str | None = None) -> str:
        """Queue ``count`` jobs in one transaction, all named ``name``; the name."""
        name = name or f"bench-{uuid.uuid4().hex[:8]}"
        parsed = JobSpec.model_validate({**spec, "name": name})
        with self.db.write_session() as session:
            for _ in range(count):
                job = jobs_service.new_job(parsed, self.settings, LOCAL_USER)
                session.add(job)
            notify(session)
        return name

    def count(self, name: str, statuses: Sequence[str] = TERMINAL) -> int:
        with self.db.engine.connect() as conn:
            query = select(func.count()).where(Job.name == name, Job.status.in_(statuses))
            return conn.execute(query).scalar_one()

    def wait_named(self, name: str, count: int, timeout: float = 300) -> float:
        """Wait until ``count`` jobs named ``name`` are finished; when the last one finished
        (epoch seconds, from its ``finished_at``). Polling slowly keeps this process off the
        cores the workers are measured on; the end comes from the database, not the poll."""
        deadline = time.monotonic() + timeout
        while self.count(name) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: {self.count(name)}/{count} finished")
            time.sleep(0.1)
        with self.db.engine.connect() as conn:
            last = conn.execute(
                select(func.max(Job.finished_at)).where(Job.name == name)
            ).scalar_one()
        assert last is not None
        if last.tzinfo is None:  # SQLite hands datetimes back naive, in UTC
            last = last.replace(tzinfo=UTC)
        return last.timestamp()

    def running_job(self, spec: dict[str, Any]) -> Claim:
        """A job of ours claimed (leased for an hour), and the claim: for driving the write
        path."""
        name = self.insert_jobs(spec, 1)
        with self.db.write_engine.begin() as conn:
            job_id = conn.execute(select(Job.id).where(Job.name == name)).scalar_one()
            job = lifecycle.claim_queued(conn, "bench", 3600, job_id=job_id)
            assert job is not None
            return Claim(job.id, job.attempts, job.spec, None, 0, None, None, None)

    def write_points(
        self, claim: Claim, points: int, chunk: int = 1000, finish: bool = False
    ) -> float:
        """Write ``points`` synthetic classifier points through the worker's flush path; the
        seconds it took (records → blocks → chunks → fenced transactions with checkpoints)."""
        rng = np.random.default_rng(0)
        loss = np.abs(rng.standard_normal(points)).cumsum()[::-1] / points
        records = [(i, float(v), float(v), 0.0, 0.5, 0.75) for i, v in enumerate(loss.tolist())]
        state = pack_state(
            {"iteration": 0, "params": {"W": np.zeros((2, 3)), "b": np.zeros(3)}, "velocity": {}}
        )
        queue = Queue(self.db, self.settings, "bench")
        start = time.perf_counter()
        flush_records(
            queue, claim, records, state, chunk=chunk, finish=SUCCEEDED if finish else None
        )
        return time.perf_counter() - start

    def close(self) -> None:
        self.db.dispose()
