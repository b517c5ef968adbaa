"""``gradlab serve``: migrate, then supervise the API and N workers as child processes.

The supervisor (this process) binds the listening socket once and hands it to the API
process, so a restarted API serves the same socket (connections wait in its backlog
meanwhile). Every child runs in its own session, so a terminal's Ctrl-C reaches only the
supervisor, and gets SIGTERM from Linux if the supervisor is killed. A child that dies —
the API or a worker — is started again, after a backoff that doubles (to ``MAX_BACKOFF``)
while it keeps dying quickly. The first SIGINT or SIGTERM stops everything: each worker
hands its job back and exits, then the API; a later signal is passed on to the workers,
which hurry their hand-back. The process exits 0.

The children share a private PROMETHEUS_MULTIPROC_DIR, made here and removed at exit, where
each writes its metrics; the API's ``/metrics`` sums them (:mod:`store.telemetry`). A child
that dies is marked dead there; what it counted still counts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from types import FrameType

import uvicorn

import migrations as migrate
from service.app import create_app
from service.events.response import expose_abort
from store.settings import Settings, comma_list, host_name
from store.telemetry import MULTIPROC_ENV

log = logging.getLogger("gradlab.serve")

FIRST_BACKOFF, MAX_BACKOFF = 0.5, 10.0
STABLE_SECONDS = 10.0  # a child that ran this long starts again without delay
API_STOP_SECONDS = 10.0  # after SIGTERM, how long the API may take to stop before SIGKILL


def _term_when_parent_dies() -> None:
    """In a child about to start: have Linux send it SIGTERM if `gradlab serve` is killed,
    so that a worker hands its job back instead of running on as an orphan."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses ``host`` (an address or a name) listens on; none if it does not resolve."""
    try:
        return [ipaddress.ip_address(host_name(host))]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` is reachable from this machine alone."""
    addresses = _addresses(host)
    return bool(addresses) and all(a.is_loopback for a in addresses)


def refusal(host: str, settings: Settings, allow_unauthenticated: bool) -> str | None:
    """Why ``gradlab serve --host HOST`` must not start (one sentence), or ``None``."""
    if settings.auth != "off" or allow_unauthenticated or is_loopback(host):
        return None
    return (
        f"gradlab serve: refusing to listen on {host}, which other machines can reach, with "
        "GRADLAB_AUTH=off (anyone there could read, cancel and delete every job): set "
        "GRADLAB_AUTH=required, or pass --allow-unauthenticated if the network is yours alone."
    )


def allowed_hosts(host: str, settings: Settings) -> str:
    """GRADLAB_ALLOWED_HOSTS for the API listening on ``host``: the setting, plus ``host``
    itself unless it is a wildcard address (0.0.0.0, ::), which names no one host."""
    names = comma_list(settings.allowed_hosts)
    try:
        wildcard = ipaddress.ip_address(host_name(host)).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard or host_name(host) in settings.allowed_host_names:
        return ",".join(names)
    return ",".join([*names, host_name(host)])


class Child:
    """One supervised process: ``python -m gradlab ARGS``, started again when it dies."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], fds: tuple[int, ...] = ()):
        self.name, self.args, self.env, self.fds = name, args, env, fds
        self.metrics_dir = env.get(MULTIPROC_ENV)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.backoff = FIRST_BACKOFF
        self.restart_at: float | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gradlab", *self.args],
            env=self.env,
            pass_fds=self.fds,
            start_new_session=True,
            preexec_fn=_term_when_parent_dies,
        )
        self.started, self.restart_at = time.monotonic(), None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tend(self) -> None:
        """Start the child again if it died (once its backoff has passed)."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        if self.alive() or self.proc is None:
            return
        self.mark_dead()
        ran = now - self.started
        if ran >= STABLE_SECONDS:  # it had been fine: start it at once, back off afresh
            delay, self.backoff = 0.0, FIRST_BACKOFF
        else:
            delay, self.backoff = self.backoff, min(self.backoff * 2, MAX_BACKOFF)
        log.warning(
            "%s (pid %d) exited with %s after %.1f s; starting it again in %.1f s",
            self.name, self.proc.pid, self.proc.returncode, ran, delay,
        )  # fmt: skip
        self.restart_at = now + delay

    def mark_dead(self) -> None:
        """Tell the metrics directory this process is gone (its counters still count)."""
        if self.metrics_dir and self.proc is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(self.proc.pid, self.metrics_dir)

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def wait(self, until: float) -> None:
        """Wait for the child to exit until ``until`` (monotonic), then kill it."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=max(until - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not exit in time; killing it", self.name, self.proc.pid)
            self.proc.kill()
            self.proc.wait()


class Supervisor:
    def __init__(self, host: str, port: int, workers: int, settings: Settings, access_log: bool):
        self.settings = settings
        self.sock = socket.create_server((host, port), backlog=2048)
        self.sock.set_inheritable(True)
        # The children's Prometheus values, summed by the API's /metrics (store.telemetry).
        self.metrics_dir = tempfile.mkdtemp(prefix="gradlab-metrics-")
        env = dict(os.environ, GRADLAB_DATABASE_URL=settings.database_url)
        env[MULTIPROC_ENV] = self.metrics_dir
        api_env = dict(env, GRADLAB_ALLOWED_HOSTS=allowed_hosts(host, settings))
        fd = str(self.sock.fileno())
        api_args = ["api", "--fd", fd, "--access-log" if access_log else "--no-access-log"]
        self.api = Child("api", api_args, api_env, (self.sock.fileno(),))
        self.workers = [Child(f"worker {i}", ["worker"], env) for i in range(workers)]
        self.signals = 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals > 1:  # the workers are handing back already: have them hurry
            for worker in self.workers:
                worker.signal(signal.SIGTERM)

    def run(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        for child in (*self.workers, self.api):
            child.start()
        try:
            while not self.signals:
                for child in (self.api, *self.workers):
                    child.tend()
                time.sleep(0.1)
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM every worker once and wait for them to hand back their jobs; then the API."""
        log.info("stopping: the workers hand their jobs back, then the API stops")
        for child in (*self.workers, self.api):
            child.signal(signal.SIGTERM)
        until = time.monotonic() + self.settings.shutdown_seconds + 5
        for worker in self.workers:
            worker.wait(until)
        self.api.wait(time.monotonic() + API_STOP_SECONDS)
        self.sock.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def serve(host: str, port: int, workers: int, settings: Settings, access_log: bool = True) -> None:
    migrate.upgrade(settings.database_url)
    Supervisor(host, port, workers, settings, access_log).run()


class _Server(uvicorn.Server):
    """Uvicorn, minus one habit: after a graceful shutdown uvicorn raises the SIGTERM/SIGINT
    it caught once more, which would end the process with that signal rather than 0."""

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


def serve_api(fd: int, settings: Settings, access_log: bool = True) -> None:
    """The API process of ``gradlab serve``: uvicorn on the socket the supervisor bound. The
    access log is the app's own (``gradlab.access``, with account and route template), so
    uvicorn's, with raw paths, stays off."""
    logging.getLogger("gradlab.access").disabled = not access_log
    sock = socket.socket(fileno=fd)
    config = uvicorn.Config(
        expose_abort(create_app(settings)),
        access_log=False,
        log_level="info",
        # JSON lines: uvicorn's own loggers go through the root's JSON handler, not its own.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=5,
    )
    _Server(config).run(sockets=[sock])
