"""One attempt at one job, as the worker sees it: the job trains in the child process
(:mod:`worker.child`), the worker writes what the child sends, and bounds it.

The worker writes every flush the child sends with the fenced :meth:`Queue.flush
<store.queue.Queue.flush>` and answers with what the child must know: cancel asked, claim
lost, or a reason to stop (shutdown, time limit). The flush that ends the attempt has no
answer: the attempt is over once the worker has written it — in the same transaction as its
claim on the next job, when it runs on — and the next message the child gets is that job.
While the child is silent — a long iteration, a long gradient check — the worker renews the
lease itself, which also tells it of a cancel. Asked to stop, the child ends the job at its
next flush; a child that has not done so ``GRACE_SECONDS`` later is killed, and the worker
ends the attempt itself from the last flush's checkpoint: handed back, cancelled or failed
``time_limit``. A child that dies of its memory limit fails the job ``memory_limit``. Either
way the points recorded so far stay, and the worker takes the next job with a fresh child.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from store.lifecycle import CANCELLED, RELEASED, Finish, LostClaim, Outcome, failed
from store.queue import Claim, Flush, Queue
from store.settings import Settings
from worker import protocol
from worker.child import MEMORY_EXIT
from worker.process import JobProcess
from worker.runner import PRIORITY, memory_limit, time_limit

log = logging.getLogger("gradlab.worker")

GRACE_SECONDS = 1.0
"""How long a child asked to stop may take to reach its next flush before it is killed."""
WATCH_SECONDS = 0.5
"""A silent child's job is checked (lease renewed, cancel looked for) this often."""
_TICK = 0.1


class Attempt:
    """Runs one claim in ``child`` until it ends; :meth:`run` returns its outcome."""

    def __init__(self, queue: Queue, claim: Claim, settings: Settings, child: JobProcess) -> None:
        self.queue, self.claim, self.settings, self.child = queue, claim, settings, child
        self.interrupt: str | None = None
        self.kill_at: float | None = None
        self.ended: Outcome | None = None  # the outcome a flush from the child wrote
        self.lost = False
        # Claim the next job in the finishing flush's transaction (the worker runs on)...
        self.claim_next = False
        self.next_claim: Claim | None = None  # ... and this is it

    def interrupt_with(self, reason: str) -> None:
        """Have the job stop: at its next flush, or killed ``GRACE_SECONDS`` from now."""
        if PRIORITY[reason] > PRIORITY[self.interrupt]:
            self.interrupt = reason
        if self.kill_at is None:
            self.kill_at = time.monotonic() + GRACE_SECONDS

    def hurry(self) -> None:
        """Stop the job now: kill the child at the next tick rather than wait for a flush."""
        self.interrupt_with("stop")
        self.kill_at = time.monotonic()

    def run(self) -> Outcome:
        try:
            return self._run()
        except BaseException:  # the database went away, say: the child must not run on
            self.child.kill()
            raise

    def _run(self) -> Outcome:
        self.child.start()
        self.child.send(
            {
                "type": "job",
                "claim": protocol.claim_to_wire(self.claim),
                "settings": protocol.settings_to_wire(self.settings),
            }
        )
        clock = time.monotonic
        deadline = clock() + self.settings.job_timeout_seconds
        last_write = clock()
        while True:
            try:
                message = self.child.receive(_TICK)
            except protocol.ChannelClosed as exc:
                return self._died(str(exc))
            if message is not None:
                if message["type"] == "done":
                    return self.ended or Outcome(message["outcome"])
                self._answer(message)
                if self.ended is not None:  # that flush ended the attempt
                    return self.ended
                last_write = clock()
            now = clock()
            if now >= deadline and self.ended is None:
                self.interrupt_with("time")
            if now - last_write >= WATCH_SECONDS and self.ended is None and not self.lost:
                self._watch()
                last_write = now
            if self.kill_at is not None and now >= self.kill_at:
                return self._kill()

    def _answer(self, message: dict[str, Any]) -> None:
        """Write a flush (or renew the lease) for the child; tell it how that went."""
        reply: dict[str, Any] = {"type": "reply", "job_id": self.claim.job_id}
        finish = None
        try:
            if message["type"] == "beat":
                cancel = self.queue.heartbeat(self.claim)
            else:
                flush, finish = protocol.flush_from_wire(message)
                # Never after handing this job back: the claim would take it again.
                if finish is not None and self.claim_next and finish.outcome != Outcome.RELEASED:
                    self.next_claim = self.queue.finish_and_claim(self.claim, flush, finish)
                    cancel = False
                else:
                    cancel = self.queue.flush(self.claim, flush, finish)
        except LostClaim as exc:
            log.warning("%s; leaving the job to its new owner", exc)
            self.lost, reply["lost"] = True, True
            if finish is not None:  # the child waits for its next job, not for a reply
                self.ended = Outcome.LOST
                return
            self.child.send(reply)
            return
        if finish is not None:  # the attempt's last flush has no reply
            self.ended = finish.outcome
            return
        if cancel:
            self.interrupt_with("cancel")
        reply.update(cancel=cancel, interrupt=self.interrupt)
        self.child.send(reply)

    def _watch(self) -> None:
        try:
            if self.queue.heartbeat(self.claim):
                self.interrupt_with("cancel")
        except LostClaim as exc:
            log.warning("%s; stopping its process", exc)
            self.lost = True
            self.interrupt_with("lost")
            if self.kill_at is not None:
                self.kill_at = time.monotonic()

    def _kill(self) -> Outcome:
        """The child did not stop in time: kill it, and end the attempt for it."""
        log.info("job %s: stopping its process (%s)", self.claim.job_id, self.interrupt)
        self.child.kill()
        if self.ended is not None:
            return self.ended
        if self.lost or self.interrupt == "lost":
            return Outcome.LOST
        finish = {
            "cancel": CANCELLED,
            "time": failed(time_limit(self.settings)),
        }.get(self.interrupt or "stop", RELEASED)
        return self._finish(finish)

    def _died(self, why: str) -> Outcome:
        """The child ended without ending the attempt."""
        status = self.child.exit_status()
        self.child.kill()
        if self.ended is not None:
            return self.ended
        if self.lost:
            return Outcome.LOST
        # Out of memory where the loop could not report it, or SIGKILLed by the kernel's
        # OOM killer (the worker did not kill it: it would not be here).
        if status in (MEMORY_EXIT, -signal.SIGKILL):
            return self._finish(failed(memory_limit(self.settings)))
        log.error("job %s: its process died (%s, exit status %s)", self.claim.job_id, why, status)
        message = f"The job's process died (exit status {status})."
        return self._finish(failed({"type": "internal_error", "message": message}))

    def _finish(self, finish: Finish) -> Outcome:
        """End the attempt from the last flush: its points and checkpoint stand."""
        try:
            self.queue.flush(self.claim, Flush(), finish)
        except LostClaim as exc:
            log.warning("%s; leaving the job to its new owner", exc)
            return Outcome.LOST
        return finish.outcome
