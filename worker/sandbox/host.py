"""The worker's side of the sandbox: start the student's process, hand parameters in, take
``(loss, grads)`` out, and turn every way it can go wrong into a job error.

One :class:`Sandbox` per job, in the job's child process, on a :class:`Guest` process of its
own — which that process may have started ahead (its :class:`Spare`): the guest
(:mod:`worker.sandbox.guest`, stdlib + NumPy only) imports NumPy, gets X, y and l2 once, execs
the code once, then answers calls over two pipes with raw float64 bytes. The limits are
rlimits set between fork and exec (address space, CPU seconds, file size — which caps what
it prints — open files) and, in the guest before the student's code runs, processes; the wall
clock of each call is enforced here, by killing it. Under bubblewrap it also has no network, no
environment, and sees only the Python runtime and NumPy, read-only, and a private /tmp.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from store.settings import Settings
from worker.process import CHILD_ENV

log = logging.getLogger("gradlab.sandbox")
GUEST = (Path(__file__).with_name("guest.py")).read_text()
HEADER = struct.Struct("<cxxxI")
SANDBOX_NUMPY = "/opt/numpy"  # where NumPy is mounted in the sandbox
_ENV = CHILD_ENV  # the sandbox's whole environment: one BLAS thread, nothing else
PRINTED_IN_ERROR = 2000  # characters of the student's output a job's error shows
_KILLED_BY_CPU = {signal.SIGXCPU, signal.SIGKILL}
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


CPU_LOCKS = Path(tempfile.gettempdir(), "gradlab-cpus")
"""One lock file per CPU: a sandbox holds its CPU's while it lives, so that sandboxes that
live at once — every worker's — spread over the CPUs rather than pile onto one."""


class CpuClaim:
    """The one CPU a sandbox and its caller share, or ``cpu`` None (one CPU, not Linux).

    The two take turns, never run at once: a call is a write, a wait and a read. On one CPU
    that hand-over is a direct switch (~5 µs here); across two it wakes an idle CPU each way
    (~70 µs on these VMs, most of what a call cost). The CPU is the first free one (by its
    lock in :data:`CPU_LOCKS`), trying the one this process runs on first; when every CPU
    has a sandbox, this one shares the current CPU."""

    def __init__(self) -> None:
        self.cpu: int | None = None
        self._fd = -1
        if _LIBC is None or not hasattr(os, "sched_setaffinity"):
            return
        allowed = os.sched_getaffinity(0)
        here = _LIBC.sched_getcpu()
        if len(allowed) < 2 or here not in allowed:
            return
        self.cpu = here
        with contextlib.suppress(OSError):
            CPU_LOCKS.mkdir(mode=0o777, exist_ok=True)
            for cpu in sorted(allowed, key=lambda c: (c != here, c)):
                fd = os.open(CPU_LOCKS / str(cpu), os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                self.cpu, self._fd = cpu, fd
                break

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # and with it the lock
            self._fd = -1


class StudentError(Exception):
    """The student's code failed: ``kind`` is the job's ``error.type`` (``student_error``,
    ``time_limit``, ``memory_limit`` or ``bad_return``), ``message`` a sentence for them."""

    def __init__(self, kind: str, message: str, output: str = "") -> None:
        super().__init__(message)
        self.kind, self.message, self.output = kind, message, output

    def to_error(self) -> dict[str, Any]:
        """The job's ``error``: the sentence, then the start of what their code printed."""
        message = self.message
        if self.output:
            shown = self.output[:PRINTED_IN_ERROR]
            more = " (truncated)" if len(self.output) > len(shown) else ""
            message += f"\nYour code printed{more}:\n{shown}"
        return {"type": self.kind, "message": message}


def _numpy_dirs() -> tuple[Path, Path | None]:
    root = Path(np.__file__).resolve().parent
    libs = root.with_name("numpy.libs")
    return root, libs if libs.is_dir() else None


def bwrap_command(python: str, guest_args: Sequence[str], tmp_bytes: int) -> list[str]:
    """``bwrap`` with nothing but the Python runtime and NumPy in view, read-only."""
    exe = os.path.realpath(python)
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ldlibrary = sysconfig.get_config_var("INSTSONAME") or ""
    multiarch = sysconfig.get_config_var("MULTIARCH") or "x86_64-linux-gnu"
    numpy_root, numpy_libs = _numpy_dirs()
    cmd = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    cmd += ["--cap-drop", "ALL", "--uid", "65534", "--gid", "65534"]
    for system in (f"/usr/lib/{multiarch}", "/usr/lib64"):
        if os.path.isdir(system):
            cmd += ["--ro-bind", system, system]
    cmd += ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"]
    cmd += ["--ro-bind", exe, exe, "--ro-bind", str(stdlib), str(stdlib)]
    if (stdlib / "site-packages").is_dir():  # the interpreter's own packages: hidden
        cmd += ["--tmpfs", str(stdlib / "site-packages")]
    shared = os.path.join(libdir, ldlibrary)
    if ldlibrary and os.path.isfile(shared):
        cmd += ["--ro-bind", shared, shared]
    cmd += ["--ro-bind", str(numpy_root), f"{SANDBOX_NUMPY}/numpy"]
    if numpy_libs is not None:
        cmd += ["--ro-bind", str(numpy_libs), f"{SANDBOX_NUMPY}/numpy.libs"]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--size", str(tmp_bytes), "--tmpfs", "/tmp", "--chdir", "/tmp"]
    cmd += ["--remount-ro", "/"]  # the root bwrap made, and the mount points on it
    for key, value in _ENV.items():
        cmd += ["--setenv", key, value]
    return [*cmd, exe, *guest_args]


class Guest:
    """A started sandbox process, NumPy imported, waiting for the code it will run.

    A worker may start one before it has a job for it (:class:`Spare`): what a job then
    waits for is only its own code's loading. Each job's code runs in a process the guest
    forks for it (:meth:`begin`); in bwrap, a job that ended well hands the guest back
    cleaned (:meth:`recycle`) to its :class:`Spare` for the next student, and a sandbox that
    failed in any way is killed.
    ``mode`` is "bwrap" or "subprocess" (:func:`store.sandboxing.sandbox_mode`)."""

    def __init__(self, settings: Settings, mode: str) -> None:
        self.settings, self.mode = settings, mode
        self.output_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close)
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.to_fd = self.from_fd = self.control_to = self.control_from = -1
        self.claim = CpuClaim()
        self.cpus = None if self.claim.cpu is None else {self.claim.cpu}
        before = os.sched_getaffinity(0) if self.cpus is not None else None
        try:
            if self.cpus is not None:  # the guest inherits it, and keeps it
                os.sched_setaffinity(0, self.cpus)
            self.proc = self._start()
        except BaseException:
            self.claim.release()
            raise
        finally:
            if before is not None:
                os.sched_setaffinity(0, before)

    def _limits(self) -> None:
        """Runs between fork and exec: the rlimits the student's process lives under."""
        s = self.settings
        memory = s.sandbox_memory_mb * 1024 * 1024
        for limit, value in (
            (resource.RLIMIT_AS, (memory, memory)),
            (resource.RLIMIT_CPU, (s.sandbox_cpu_seconds, s.sandbox_cpu_seconds + 1)),
            (resource.RLIMIT_FSIZE, (s.sandbox_output_bytes, s.sandbox_output_bytes)),
            (resource.RLIMIT_NOFILE, (s.sandbox_open_files, s.sandbox_open_files)),
            (resource.RLIMIT_CORE, (0, 0)),
        ):  # never above what this process may have itself: no one here may raise a hard limit
            hard = resource.getrlimit(limit)[1]
            if hard != resource.RLIM_INFINITY:
                value = (min(value[0], hard), min(value[1], hard))
            resource.setrlimit(limit, value)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the cap a write fails, quietly

    def _start(self) -> subprocess.Popen[bytes]:
        env: dict[str, str] | None
        if self.mode == "bwrap":
            args = ["-I", "-S", "-c", GUEST, SANDBOX_NUMPY]
            cmd = bwrap_command(sys.executable, args, 4 * self.settings.sandbox_output_bytes)
            env, cwd = {}, None
            isolated = "1"
        else:  # a plain process: NumPy on its path without the venv's other packages
            self._workdir = tempfile.TemporaryDirectory(prefix="gradlab-student-")
            view = Path(self._workdir.name, "site")
            view.mkdir()
            numpy_root, numpy_libs = _numpy_dirs()
            (view / "numpy").symlink_to(numpy_root)
            if numpy_libs is not None:
                (view / "numpy.libs").symlink_to(numpy_libs)
            cmd = [os.path.realpath(sys.executable), "-I", "-S", "-c", GUEST, str(view)]
            env, cwd = dict(_ENV), self._workdir.name
            isolated = "0"  # no namespace of its own to clean: one job, then killed
        guest_reads, to_guest = os.pipe()
        from_guest, guest_writes = os.pipe()
        zygote_reads, to_zygote = os.pipe()
        from_zygote, zygote_writes = os.pipe()
        theirs = (guest_reads, guest_writes, zygote_reads, zygote_writes)
        try:
            proc = subprocess.Popen(
                [*cmd, str(zygote_reads), str(zygote_writes), isolated],
                stdin=guest_reads,
                stdout=guest_writes,
                stderr=self.output_file.fileno(),
                pass_fds=(zygote_reads, zygote_writes),
                env=env,
                cwd=cwd,
                preexec_fn=self._limits,
                start_new_session=True,
            )
        except BaseException:
            for fd in (to_guest, from_guest, to_zygote, from_zygote):
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        self.to_fd, self.from_fd = to_guest, from_guest
        self.control_to, self.control_from = to_zygote, from_zygote
        return proc

    def begin(self) -> None:
        """Have the zygote fork the process the next job's code runs in."""
        os.write(self.control_to, b"F")

    def recycle(self, timeout: float = 2.0) -> bool:
        """After a job that ended well: have the zygote kill its child and clean up, then
        drop what the child left unread for this side; True when the guest can serve
        another student. Only in bwrap, where the sandbox is a namespace of its own."""
        if self.mode != "bwrap" or not self.alive:
            return False
        try:
            os.write(self.control_to, b"K")
            ready = select.select([self.control_from], [], [], timeout)[0]
            if not ready or os.read(self.control_from, 1) != b"W":
                return False
            os.set_blocking(self.from_fd, False)
            with contextlib.suppress(BlockingIOError):
                while os.read(self.from_fd, 1 << 16):
                    pass
            os.set_blocking(self.from_fd, True)
            fd = self.output_file.fileno()  # the next child's output starts from nothing
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            return False
        return True

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Kill it (it keeps no state worth a goodbye) and let go of its pipes and files."""
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        for name in ("to_fd", "from_fd", "control_to", "control_from"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self.output_file.close()
        self.claim.release()


class Spare:
    """The one :class:`Guest` a job process keeps started for its next student job.

    Started only once the process has run a student job (a worker that never sees student
    code never starts one), and again after each, when ``GRADLAB_SANDBOX_SPARE`` is on."""

    def __init__(self) -> None:
        self.guest: Guest | None = None

    def take(self, settings: Settings, mode: str) -> Guest:
        """The spare if it is alive and fits ``settings`` and ``mode``, else a new guest."""
        guest, self.guest = self.guest, None
        if guest is not None and guest.alive and (guest.settings, guest.mode) == (settings, mode):
            return guest
        if guest is not None:
            guest.close()
        return Guest(settings, mode)

    def put(self, guest: Guest) -> None:
        """A recycled guest, kept for the next job (the one spare there is)."""
        if self.guest is None:
            self.guest = guest
        else:
            guest.close()

    def refill(self, settings: Settings, mode: str | None) -> None:
        """Start the spare; one that cannot start now is not an error of any job's (the
        student job that needs it starts its own, and reports why that fails)."""
        if self.guest is None and mode is not None and settings.sandbox_spare:
            try:
                self.guest = Guest(settings, mode)
            except (OSError, subprocess.SubprocessError, MemoryError):
                log.warning("the spare sandbox did not start", exc_info=True)

    def close(self) -> None:
        if self.guest is not None:
            self.guest.close()
            self.guest = None


class Sandbox:
    """The student's function ``function`` from ``code``, running in its own process.

    names, shapes: the model's parameters in order; X, y, l2: the job's data, sent once.
    ``mode`` is "bwrap" or "subprocess" (:func:`store.sandboxing.sandbox_mode`); ``spare``,
    where the process may come from ready-started. Raises :class:`StudentError` when the
    code cannot be loaded.
    """

    def __init__(
        self,
        settings: Settings,
        mode: str,
        code: str,
        function: str,
        shapes: Mapping[str, tuple[int, ...]],
        X: np.ndarray,
        y: np.ndarray,
        l2: float,
        spare: Spare | None = None,
    ) -> None:
        self.settings, self.X, self.y = settings, X, y
        self.names = list(shapes)
        self.shapes = {n: tuple(s) for n, s in shapes.items()}
        self.sizes = [int(np.prod(s)) for s in self.shapes.values()]
        self.total = sum(self.sizes)
        self.calls = 0
        self._request = np.zeros(1 + self.total)
        self._reply = bytearray(16 + 8 * self.total)
        self._cpus: set[int] | None = None
        self.spare, self.failed = spare, False
        self.guest = spare.take(settings, mode) if spare is not None else Guest(settings, mode)
        try:
            self.guest.begin()
        except OSError:  # a spare that died since it was checked: a new one
            self.guest.close()
            self.guest = Guest(settings, mode)
            try:
                self.guest.begin()
            except BaseException:
                self.guest.close()
                raise
        self.proc, self._to, self._from = self.guest.proc, self.guest.to_fd, self.guest.from_fd
        if self.guest.cpus is not None:  # this process joins its guest on one CPU
            self._cpus = os.sched_getaffinity(0)
            os.sched_setaffinity(0, self.guest.cpus)
        try:
            setup = {
                "code": code,
                "function": function,
                "names": self.names,
                "shapes": [list(s) for s in self.shapes.values()],
                "l2": float(l2),
                "X": [list(X.shape), X.dtype.str],
                "y": [list(y.shape), y.dtype.str],
                "processes": settings.sandbox_processes,
            }
            body = json.dumps(setup).encode()
            self._send(
                struct.pack("<I", len(body)) + body,
                np.ascontiguousarray(X).tobytes(),
                np.ascontiguousarray(y).tobytes(),
            )
            status, _ = self._header(time.monotonic() + settings.sandbox_start_seconds, "start")
            if status != b"R":
                raise self._protocol_error()
        except BaseException:
            self.failed = True
            self.close()
            raise

    # --- calls ------------------------------------------------------------------------------

    def call(
        self, params: Mapping[str, np.ndarray], grads: bool = True
    ) -> tuple[float, dict[str, np.ndarray] | None]:
        """The student's ``(loss, grads)`` at ``params`` (loss only when ``grads`` is False),
        checked: a NaN or a wrong return raises :class:`StudentError` (``bad_return``)."""
        request = self._request
        request[0:1].view(np.uint8)[0] = ord("G") if grads else ord("L")
        start = 1
        for name, size in zip(self.names, self.sizes, strict=True):
            request[start : start + size] = params[name].ravel()
            start += size
        self._send(request.data)
        status, length = self._header(time.monotonic() + self.settings.sandbox_call_seconds)
        if status != b"O":
            raise self._protocol_error(status, length)
        n = 8 + (8 * self.total if grads else 0)
        view = memoryview(self._reply)[8 : 8 + n]
        self._read_into(view, time.monotonic() + self.settings.sandbox_call_seconds)
        self.calls += 1
        (loss,) = struct.unpack_from("<d", view)
        if not np.isfinite(loss):
            raise StudentError("bad_return", f"Your loss is {loss}, not a finite number.")
        if not grads:
            return loss, None
        flat = np.frombuffer(view, dtype=np.float64, offset=8).copy()
        out, start = {}, 0
        for name, size in zip(self.names, self.sizes, strict=True):
            out[name] = g = flat[start : start + size].reshape(self.shapes[name])
            start += size
            if not np.isfinite(g).all():
                bad = int(np.count_nonzero(~np.isfinite(g)))
                raise StudentError(
                    "bad_return", f"d{name} has {bad} NaN or infinite values: it must be finite."
                )
        return loss, out

    def loss(self, params: Mapping[str, np.ndarray]) -> float:
        """The student's loss at ``params``."""
        return self.call(params, grads=False)[0]

    # --- pipes ------------------------------------------------------------------------------

    def _send(self, *parts: bytes | memoryview) -> None:
        try:
            for part in parts:
                view = memoryview(part).cast("B")
                while view:
                    view = view[os.write(self._to, view) :]
        except (BrokenPipeError, OSError):
            raise self._died() from None

    def _read_into(self, view: memoryview, deadline: float, what: str = "call") -> None:
        got = 0
        while got < len(view):
            left = deadline - time.monotonic()
            ready = select.select([self._from], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                raise self._timeout(what)
            k = os.readv(self._from, [view[got:]])
            if k == 0:
                raise self._died()
            got += k

    def _header(self, deadline: float, what: str = "call") -> tuple[bytes, int]:
        view = memoryview(self._reply)[:8]
        self._read_into(view, deadline, what)
        status, length = HEADER.unpack(view)
        return status, length

    def _protocol_error(self, status: bytes = b"", length: int = 0) -> StudentError:
        if status == b"E" and 0 < length <= 64 * 1024:
            buf = bytearray(length)
            with contextlib.suppress(StudentError):
                self._read_into(memoryview(buf), time.monotonic() + 1)
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    error = json.loads(bytes(buf))
                    kind = error.get("type")
                    if kind in ("student_error", "memory_limit", "bad_return"):
                        return self._fail(kind, str(error.get("message"))[:2000])
        return self._died()

    def _fail(self, kind: str, message: str) -> StudentError:
        """The error, with what the code printed so far; a sandbox that failed is closed."""
        output = self.output()
        self.failed = True
        self.close()
        return StudentError(kind, message, output)

    def _timeout(self, what: str) -> StudentError:
        limit = self.settings.sandbox_start_seconds if what == "start" else None
        if limit is not None:
            sentence = f"your code did not load within {limit:g} s (GRADLAB_SANDBOX_START_SECONDS)"
        else:
            limit = self.settings.sandbox_call_seconds
            sentence = (
                f"one call of your function took longer than {limit:g} s "
                "(GRADLAB_SANDBOX_CALL_SECONDS): is there a loop that never ends?"
            )
        return self._fail("time_limit", sentence[0].upper() + sentence[1:] + ".")

    def _died(self) -> StudentError:
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.proc.wait(timeout=2)
        if code is not None and code > 128:  # bwrap reports its child's signal as 128 + n
            code = -(code - 128)
        if code is not None and code < 0 and -code in _KILLED_BY_CPU:
            return self._fail(
                "time_limit",
                f"Your code used more than {self.settings.sandbox_cpu_seconds} s of CPU time "
                "(GRADLAB_SANDBOX_CPU_SECONDS).",
            )
        if code is not None and code < 0 and -code == signal.SIGXFSZ:
            return self._fail(
                "student_error",
                f"Your code wrote more than {self.settings.sandbox_output_bytes} bytes "
                "(GRADLAB_SANDBOX_OUTPUT_BYTES).",
            )
        return self._fail("student_error", f"Your code ended its own process (exit status {code}).")

    def output(self) -> str:
        """What the student's code printed (the first GRADLAB_SANDBOX_OUTPUT_BYTES)."""
        with contextlib.suppress(OSError, ValueError):
            fd = self.guest.output_file.fileno()
            return os.pread(fd, self.settings.sandbox_output_bytes, 0).decode(errors="replace")
        return ""

    def close(self) -> None:
        """End the student's process: the guest goes back to the spare cleaned when the job
        ended well and it can be (:meth:`Guest.recycle`), else it is killed; this process may
        use its CPUs again."""
        if self._to >= 0:
            if not self.failed and self.spare is not None and self.guest.recycle():
                self.spare.put(self.guest)
            else:
                self.guest.close()
        self._to = self._from = -1
        cpus, self._cpus = self._cpus, None
        if cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, cpus)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
