"""The worker process: claim a job, run it, repeat; wait for work when the queue is empty.

Signals: the first SIGTERM or SIGINT asks the running job to stop at its next iteration —
its points so far are flushed with a checkpoint and the job is handed back to the queue, for
another worker to resume — and the process exits 0. A second one exits at once.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
from types import FrameType
from typing import Any

from store.db import Database
from store.queue import CHANNEL, Queue
from store.settings import Settings
from worker.runner import Heartbeat, JobRun

log = logging.getLogger("gradlab.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class Worker:
    def __init__(
        self, settings: Settings, worker_id: str | None = None, burst: bool = False
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.burst = burst  # exit when the queue is empty (tests, batch runs)
        self.db = Database(settings.database_url, settings)
        self.queue = Queue(self.db, settings, self.worker_id)
        self.heartbeat = Heartbeat(self.queue, min(settings.lease_seconds / 3, 5.0))
        self.stopping = False
        self.current: JobRun | None = None
        self.outcomes: dict[str, int] = {}
        self._listener: Any = None  # a psycopg connection blocked in LISTEN, when idle

    # --- signals ----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:  # the second signal: leave now, the lease will expire
            log.warning(
                "second %s: exiting without handing the job back", signal.Signals(signum).name
            )
            os._exit(1)
        log.info("%s: finishing the current flush, then exiting", signal.Signals(signum).name)
        self.stopping = True
        if self.current is not None:
            self.current.interrupt_with("stop")

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        log.info(
            "worker %s on %s",
            self.worker_id,
            self.db.engine.url.render_as_string(hide_password=True),
        )
        self.heartbeat.start()
        try:
            while not self.stopping:
                try:
                    worked = self.run_once()
                except Exception:  # the database went away, say: the lease will expire
                    log.exception("worker %s: a job could not be run", self.worker_id)
                    time.sleep(1.0)
                    continue
                if not worked:
                    if self.burst:
                        break
                    self.wait_for_work()
        finally:
            self.close()
        return 0

    def run_once(self) -> bool:
        """Claim and run one job; False when there was none to claim."""
        claim = self.queue.claim()
        if claim is None:
            return False
        run = JobRun(self.queue, claim, self.settings, self.heartbeat)
        self.current = run
        if self.stopping:
            run.interrupt_with("stop")
        try:
            outcome = run.run()
        finally:
            self.current = None
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        log.info("job %s attempt %d: %s", claim.job_id, claim.attempt, outcome)
        return True

    def wait_for_work(self) -> None:
        """Sleep until a job may be waiting: a NOTIFY on PostgreSQL, a short poll on SQLite."""
        if self.db.engine.dialect.name != "postgresql":
            time.sleep(self.settings.poll_seconds)
            return
        try:
            listener = self._listen()
            # Wake on a notification, or after a short while to poll anyway (expired leases
            # need no notification, and a signal should not wait long).
            timeout = min(self.settings.listen_poll_seconds, 1.0)
            ready, _, _ = select.select([listener.fileno()], [], [], timeout)
            if ready:
                for _ in listener.notifies(timeout=0):
                    pass
        except Exception:
            log.exception("LISTEN failed; polling instead")
            self._close_listener()
            time.sleep(self.settings.poll_seconds)

    def _listen(self) -> Any:
        if self._listener is None or self._listener.closed:
            import psycopg

            url = self.db.engine.url.set(drivername="postgresql")
            self._listener = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            self._listener.execute(f"LISTEN {CHANNEL}")
        return self._listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None

    def close(self) -> None:
        self.heartbeat.close()
        self._close_listener()
        self.db.dispose()
