"""The seam where a job's process is made: :class:`JobProcess` starts the child a job trains
in (``python -m worker.child``) with its limits, talks to it over two pipes, and kills it.

Limits are set between fork and exec, so they hold from the child's first instruction:
``RLIMIT_AS`` at ``GRADLAB_JOB_MEMORY_MB`` (an allocation past it raises MemoryError in the
child, which fails the job ``memory_limit``), and Linux's parent-death signal, so a child
never outlives its worker. The wall clock (``GRADLAB_JOB_TIMEOUT_SECONDS``) is the worker's
to enforce: it can always kill the child. A sandbox (bubblewrap: no network, no environment,
a read-only view of the standard library and NumPy) wraps :meth:`JobProcess.command` here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import select
import signal
import subprocess
import sys
from typing import Any

from store.settings import Settings
from worker import protocol

_LIBC = ctypes.CDLL("libc.so.6", use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""One BLAS thread per job process: the worker processes are the parallelism, and a BLAS
pool's per-thread buffers, allocated on its first call, would otherwise take a share of
GRADLAB_JOB_MEMORY_MB large enough that OpenBLAS aborts the process (no MemoryError)."""


class JobProcess:
    """One child process for jobs, one job at a time; started again after it was killed."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self._to_child = self._from_child = -1

    def command(self, read_fd: int, write_fd: int) -> list[str]:
        return [sys.executable, "-m", "worker.child", str(read_fd), str(write_fd)]

    def _limits(self) -> None:
        """Runs in the child between fork and exec."""
        limit = self.settings.job_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the child unless it runs."""
        if self.alive:
            return
        self.kill()
        child_reads, to_child = os.pipe()
        from_child, child_writes = os.pipe()
        try:
            self.proc = subprocess.Popen(
                self.command(child_reads, child_writes),
                pass_fds=(child_reads, child_writes),
                preexec_fn=self._limits,
                env={**CHILD_ENV, **os.environ},  # what the environment says first
            )
        finally:
            os.close(child_reads)
            os.close(child_writes)
        self._to_child, self._from_child = to_child, from_child

    def send(self, message: dict[str, Any]) -> None:
        protocol.write(self._to_child, message)

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The child's next message, or None when it sent none within ``timeout``. Raises
        :class:`~worker.protocol.ChannelClosed` when the child is gone (or talks nonsense)."""
        ready, _, _ = select.select([self._from_child], [], [], timeout)
        if not ready:
            return None
        try:
            return protocol.read(self._from_child)
        except (ValueError, TypeError, KeyError) as exc:
            raise protocol.ChannelClosed(f"the job's process sent a broken frame: {exc}") from exc

    def exit_status(self) -> int | None:
        """The child's exit status once it has ended (negative: killed by that signal)."""
        if self.proc is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.proc.wait(timeout=2)
        return None

    def kill(self) -> None:
        """Kill the child at once (whatever it is doing) and forget it."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        for fd in (self._to_child, self._from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._to_child = self._from_child = -1

    def close(self) -> None:
        """Let an idle child exit (it ends when its pipe closes), killing it if it lingers."""
        if self.proc is not None and self._to_child >= 0:
            with contextlib.suppress(OSError):
                os.close(self._to_child)
            self._to_child = -1
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        self.kill()
