"""The job's child process: ``python -m worker.child READ_FD WRITE_FD``, started by
:class:`worker.process.JobProcess` with its limits already set.

It takes one job at a time from the worker — a claim and the loop's settings — trains it
with :class:`~worker.runner.JobRun` (keeping the next student job's sandbox started ahead, in
its :class:`~worker.sandbox.Spare`: from a ``warm`` message at a worker's start, and after
each student job), and sends every flush back over the pipe for the worker
to write: the child holds no database connection and no claim. The worker's reply to each
flush but the attempt's last says whether the job was asked to cancel, whether the claim is
lost, and why the loop should stop (shutdown, time limit). SIGINT and SIGTERM are ignored:
the worker decides, and kills this process when it must stop at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from store.lifecycle import Finish, LostClaim
from store.queue import Claim, Flush
from store.sandboxing import sandbox_mode
from store.settings import Settings
from store.status import Outcome
from worker import protocol
from worker.runner import JobRun
from worker.sandbox import Spare

MEMORY_EXIT = 86
"""The child's exit status when it ran out of memory outside a job's loop."""

log = logging.getLogger("gradlab.worker")


class PipeSink:
    """A :class:`~worker.runner.Sink` that hands each flush to the worker and waits for its
    reply."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd
        self.run: JobRun | None = None

    def _ask(self, message: dict[str, Any]) -> bool:
        protocol.write(self.write_fd, message)
        reply = protocol.read(self.read_fd)
        if reply.get("lost"):
            raise LostClaim(f"job {reply.get('job_id')}: its lease was taken over")
        reason = reply.get("interrupt")
        if reason and self.run is not None:
            self.run.interrupt_with(reason)
        return bool(reply.get("cancel"))

    def heartbeat(self, claim: Claim) -> bool:
        return self._ask({"type": "beat"})

    def flush(self, claim: Claim, flush: Flush, finish: Finish | None = None) -> bool:
        message = protocol.flush_to_wire(flush, finish)
        if finish is not None:  # the attempt is over: no reply, the next message is a job
            protocol.write(self.write_fd, message)
            return False
        return self._ask(message)


def serve(read_fd: int, write_fd: int) -> int:
    """Run jobs as the worker sends them until it closes the pipe."""
    sink = PipeSink(read_fd, write_fd)
    settings: Settings | None = None
    seen: dict[str, Any] = {}
    spare = Spare()
    try:
        while True:
            try:
                message = protocol.read(read_fd)
            except protocol.ChannelClosed:
                return 0
            if message["type"] not in ("job", "warm"):
                return 0
            if message["settings"] != seen:  # the same for the worker's life: parse them once
                seen, settings = message["settings"], Settings(**message["settings"])
            assert settings is not None
            if message["type"] == "warm":  # a worker's start: its first student job's sandbox
                spare.refill(settings, sandbox_mode(settings).kind)
                continue
            run = JobRun(sink, protocol.claim_from_wire(message["claim"]), settings, spare)
            sink.run = run
            outcome = run.run()
            sink.run = None
            if outcome == Outcome.LOST:  # else its last flush ended the attempt
                protocol.write(write_fd, {"type": "done", "outcome": str(outcome)})
            spare.refill(settings, run.sandbox_mode)  # after a student job: the next's
    finally:
        spare.close()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s[job %(process)d]: %(message)s",
        stream=sys.stderr,
    )
    try:
        return serve(int(sys.argv[1]), int(sys.argv[2]))
    except MemoryError:
        os._exit(MEMORY_EXIT)
    except protocol.ChannelClosed:
        return 0


if __name__ == "__main__":
    sys.exit(main())
