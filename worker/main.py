"""The worker process: claim a job, run it in the job's child process, repeat; wait for work
when the queue is empty.

Each job trains in a child process with its memory limit, which the worker watches against
the job's wall-clock limit, a cancel and this process's signals (see :mod:`worker.attempt`).
The first SIGTERM or SIGINT hands the running job back — at the child's next flush, or from
the last checkpoint when the child is killed a second later — and the process exits 0. A
later signal only hurries that: the child is killed at once, the job is still handed back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from types import FrameType

from store.db import Database
from store.lifecycle import RELEASED, LostClaim
from store.queue import Claim, Flush, Listener, Queue
from store.sandboxing import sandbox_mode
from store.settings import Settings
from store.telemetry import JOB_DURATION
from worker import protocol
from worker.attempt import Attempt
from worker.process import JobProcess

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
        self.listener = Listener(self.db, settings)
        self.child = JobProcess(settings)
        self.stopping = False
        self.current: Attempt | None = None
        self.next_claim: Claim | None = None  # claimed in the last job's finishing flush
        self.outcomes: dict[str, int] = {}

    # --- signals ----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        current = self.current
        if self.stopping:
            log.info("%s again: stopping the job's process now, handing the job back", name)
            if current is not None:
                current.hurry()
            return
        log.info("%s: handing the current job back, then exiting", name)
        self.stopping = True
        if current is not None:
            current.claim_next = False
            current.interrupt_with("stop")

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        log.info(
            "worker %s on %s",
            self.worker_id,
            self.db.engine.url.render_as_string(hide_password=True),
        )
        mode = sandbox_mode(self.settings)
        if mode.kind == "subprocess":
            log.warning("student code runs UNSANDBOXED in a plain subprocess: %s", mode.reason)
        elif mode.kind is None:
            log.warning("student code will not run here (its jobs fail): %s", mode.reason)
        try:
            if not self.burst:  # be ready before the first job arrives
                self.child.start()
                if mode.kind is not None and self.settings.sandbox_spare:
                    self.child.send(
                        {"type": "warm", "settings": protocol.settings_to_wire(self.settings)}
                    )
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
                    self.listener.wait()
        finally:
            self.close()
        return 0

    def run_once(self) -> bool:
        """Claim and run one job; False when there was none to claim."""
        claim, self.next_claim = self.next_claim or self.queue.claim(), None
        if claim is None:
            return False
        attempt = Attempt(self.queue, claim, self.settings, self.child)
        attempt.claim_next = not self.stopping
        self.current = attempt
        if self.stopping:
            attempt.interrupt_with("stop")
        start = time.perf_counter()
        try:
            outcome = attempt.run()
        finally:
            self.current = None
        JOB_DURATION.labels(claim.model_kind, outcome).observe(time.perf_counter() - start)
        self.next_claim = attempt.next_claim
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        log.info("job %s attempt %d: %s", claim.job_id, claim.attempt, outcome)
        return True

    def close(self) -> None:
        if self.next_claim is not None:  # claimed with the last job's flush, never started
            claim, self.next_claim = self.next_claim, None
            with contextlib.suppress(LostClaim):
                self.queue.flush(claim, Flush(), RELEASED)
        self.child.close()
        self.listener.close()
        self.db.dispose()
