"""Start a real gradlab server or worker — for a notebook, a test or a benchmark — and wait
until it answers.

These are the processes a user starts, `gradlab serve` and `gradlab worker`, run as
``python -m gradlab`` in their own session so that everything they start can be stopped
with them::

    from gradlab.procs import Server

    with Server("sqlite:///runs.db", workers=1) as server:  # ready once /readyz says so
        http = server.client()
        ...

``start_worker`` starts a lone worker, ``wait_for`` polls until something holds,
``free_port`` finds a port to listen on and ``kill_group`` makes sure a process and its
children are gone. Settings are passed as keywords (``flush_seconds=0.5`` becomes
``GRADLAB_FLUSH_SECONDS``); polls and flushes default to quick ones.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gradlab_env(url: str, **settings: Any) -> dict[str, str]:
    env = dict(os.environ, GRADLAB_DATABASE_URL=url, PYTHONUNBUFFERED="1")
    env.setdefault("GRADLAB_POLL_SECONDS", "0.02")
    env.setdefault("GRADLAB_FLUSH_SECONDS", "0.05")
    for key, value in settings.items():
        env[f"GRADLAB_{key.upper()}"] = str(value)
    return env


def start(
    args: list[str], env: dict[str, str], log: Path | None = None, module: str = "gradlab"
) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_worker(
    url: str, *args: str, log: Path | None = None, **settings: Any
) -> subprocess.Popen[bytes]:
    return start(["worker", *args], gradlab_env(url, **settings), log)


def wait_for(
    predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


class Server:
    """`gradlab serve` on a free port, ready when /readyz says so; or, given ``command``
    (a module and its arguments), that module taking ``--port`` and ``--workers`` as well."""

    def __init__(
        self,
        url: str,
        workers: int = 1,
        log: Path | None = None,
        port: int | None = None,
        command: tuple[str, ...] = ("gradlab", "serve"),
        **settings: Any,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = gradlab_env(url, **settings)
        self.workers = workers
        self.log = log
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        module, *args = self.command
        args += ["--port", str(self.port), "--workers", str(self.workers)]
        self.proc = start(args, self.env, self.log, module)

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "gradlab serve exited"
            try:
                return httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.1, what="gradlab serve to be ready")
        return self

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            kill_group(self.proc)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        elif self.proc is not None:
            kill_group(self.proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Make sure a process (and anything it started in its session) is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def stop_all(procs: list[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM every process at once (workers hand their jobs back in parallel), then wait
    for each; whatever is still there after ``timeout`` is killed with its group."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        finally:
            kill_group(proc)


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children(pid: int) -> dict[int, list[str]]:
    """A process's children and their command lines (Linux)."""
    found: dict[int, list[str]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                raw = Path(f"/proc/{child}/cmdline").read_bytes()
                found[int(child)] = raw.decode().split("\0")[:-1]
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
