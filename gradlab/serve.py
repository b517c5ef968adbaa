"""``gradlab serve``: migrate, start N worker processes, serve the API, shut down cleanly."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import uvicorn

from service import migrate
from service.app import create_app
from service.settings import Settings

log = logging.getLogger("gradlab.serve")


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
            [sys.executable, "-m", "gradlab", "worker"], env=env, start_new_session=True
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


def serve(host: str, port: int, workers: int, settings: Settings, access_log: bool = False) -> None:
    migrate.upgrade(settings.database_url)
    pool = WorkerPool(workers, settings)
    pool.start()
    try:
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            access_log=access_log,
            log_level="info",
            timeout_graceful_shutdown=5,
        )
        uvicorn.Server(config).run()
    finally:
        pool.stop()
