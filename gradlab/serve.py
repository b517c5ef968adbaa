"""``gradlab serve``: migrate, start N worker processes, serve the API, shut down cleanly."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import uvicorn

import migrations as migrate
from service.app import create_app
from service.events.response import expose_abort
from store.settings import Settings

log = logging.getLogger("gradlab.serve")


def _term_when_parent_dies() -> None:
    """In a worker about to start: have Linux send it SIGTERM if `gradlab serve` is killed,
    so that it hands its job back instead of running on as an orphan."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerPool:
    """Worker processes, each in its own session so a terminal's Ctrl-C reaches only
    ``gradlab serve``, which then asks each worker once to hand its job back and exit.
    A worker that dies while the server runs is started again."""

    def __init__(self, count: int, settings: Settings) -> None:
        self.count, self.settings = count, settings
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self._watch = threading.Thread(target=self._supervise, name="worker-pool", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, GRADLAB_DATABASE_URL=self.settings.database_url)
        return subprocess.Popen(
            [sys.executable, "-m", "gradlab", "worker"],
            env=env,
            start_new_session=True,
            preexec_fn=_term_when_parent_dies,
        )

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._watch.start()

    def _supervise(self) -> None:
        while not self.stopping.wait(1.0):
            for index, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stopping.is_set():
                    log.warning(
                        "worker pid %d exited with %s; starting another", proc.pid, proc.returncode
                    )
                    self.procs[index] = self._spawn()

    def stop(self) -> None:
        """SIGTERM every worker once, wait for them to hand back their jobs, then kill."""
        self.stopping.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_seconds + 5
        for proc in self.procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not exit in time; killing it", proc.pid)
                proc.kill()
                proc.wait()


class _Server(uvicorn.Server):
    """Uvicorn, minus one habit: after a graceful shutdown uvicorn raises the SIGTERM/SIGINT
    it caught once more, which would end the process before its workers have handed their
    jobs back. Here the signal only starts the shutdown; ``serve`` then stops the workers and
    returns, and the process exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(host: str, port: int, workers: int, settings: Settings, access_log: bool = False) -> None:
    migrate.upgrade(settings.database_url)
    pool = WorkerPool(workers, settings)
    pool.start()
    try:
        config = uvicorn.Config(
            expose_abort(create_app(settings)),
            host=host,
            port=port,
            access_log=access_log,
            log_level="info",
            timeout_graceful_shutdown=5,
        )
        _Server(config).run()
    finally:
        pool.stop()
