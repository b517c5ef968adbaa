"""The program that runs inside the sandbox: it imports only the standard library and NumPy.

It is never imported by gradlab: :mod:`worker.sandbox.host` passes this file's text to
``python -I -S -c`` (gradlab's source is not visible in the sandbox). Fd 0 brings requests,
fd 1 takes replies; both are moved out of the way first, so that what the student prints
goes to fd 2 (the worker's capped capture file) and never into the protocol.

It imports NumPy (from the directory its first argument names) before it reads anything, so
a worker can start one ahead of the job it will serve and have it waiting; and it is a
zygote: each student job runs in a child forked from it (:func:`main`), so that in bwrap a
sandbox serves one student after another without importing NumPy again, each child
starting from the zygote's state — which never held any student's code or data.

Protocol (little-endian, no JSON per call):

- setup, once: u32 length + JSON ``{code, function, names, shapes, l2, X: [shape, dtype],
  y: [shape, dtype], processes}`` then X's and y's raw bytes. Reply ``R`` (ready) or an error.
- a call: 8 bytes, ``G`` (loss and gradients) or ``L`` (loss only) padded with zeros, then
  every parameter's float64 bytes back to back, in ``names`` order (8-byte aligned).
- a reply: 8 bytes, the status and a u32 length (``<cxxxI``), then for ``O`` the f64 loss
  (and for ``G`` the gradients' float64 bytes in ``names`` order), for ``E`` the JSON
  ``{type, message}`` of that length; ``R`` (ready, after setup) has nothing after it.
  The guest goes on serving after a student's exception (the worker decides whether to
  stop).
"""

import contextlib
import json
import os
import select
import shutil
import signal
import struct
import sys
import time
from typing import Any

REQUESTS, REPLIES = os.dup(0), os.dup(1)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
os.dup2(2, 1)
FILENAME = "<your code>"
MAX_MESSAGE = 2000
HEADER = struct.Struct("<cxxxI")


def read_exactly(n: int) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = os.readv(REQUESTS, [view[got:]])
        if k == 0:
            sys.exit(0)
        got += k
    return buf


def write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(REPLIES, view) :]


def error(kind: str, message: str) -> None:
    body = json.dumps({"type": kind, "message": message[:MAX_MESSAGE]}).encode()
    write_all(HEADER.pack(b"E", len(body)) + body)


class CappedOutput:
    """sys.stdout and sys.stderr: what is printed goes to fd 2 until the file-size limit,
    then is dropped (the worker keeps the first GRADLAB_SANDBOX_OUTPUT_BYTES)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self) -> None:
        self.full = False

    def write(self, text: str) -> int:
        if not self.full:
            try:
                os.write(2, str(text).encode("utf-8", "replace"))
            except OSError:
                self.full = True
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def trimmed_traceback(exc: BaseException) -> str:
    """The exception and the frames of the student's own code only."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    lines = [f"line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in frames[-5:]]
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return head + ("\n" + "\n".join(lines) if lines else "")


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_return(
    value: Any, names: list[str], shapes: dict[str, tuple[int, ...]], np: Any
) -> tuple[Any, str | None]:
    """(loss, grads) as float64, or a sentence saying what is wrong with the return."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        what = type(value).__name__
        if isinstance(value, (tuple, list)):
            what = f"a {what} of {len(value)} items"
        return None, f"Your function must return a pair (loss, grads); it returned {what}."
    loss, grads = value
    try:
        loss_value = float(np.asarray(loss, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        return None, f"The loss must be a number; it is {type(loss).__name__}."
    if not isinstance(grads, dict):
        return None, f"grads must be a dict of arrays; it is {type(grads).__name__}."
    missing = [n for n in names if n not in grads]
    if missing:
        listed, every = ", ".join(map(repr, missing)), ", ".join(names)
        return (
            None,
            f"grads has no {listed}: return one gradient per parameter ({every}).",
        )
    extra = [str(n) for n in grads if n not in shapes]
    if extra:
        listed = ", ".join(map(repr, extra))
        return None, f"grads has {listed}, which is not a parameter ({', '.join(names)})."
    out = []
    for name in names:
        try:
            g = np.asarray(grads[name], dtype=np.float64)
        except (TypeError, ValueError):
            return None, f"d{name} is not an array of numbers."
        want = tuple(shapes[name])
        if g.shape != want:
            hint = ": transposed?" if g.shape == want[::-1] and len(want) == 2 else "."
            return None, (
                f"d{name} has shape {shape_text(g.shape)} but {name} has shape "
                f"{shape_text(want)}{hint}"
            )
        out.append(g)
    return (loss_value, out), None


# Seccomp: no new processes (fork, vfork, clone, clone3 fail with EAGAIN). RLIMIT_NPROC is
# set too, but Linux does not apply it to a sandbox whose outer user is root.
_ARCHES = {"x86_64": (0xC000003E, (56, 57, 58, 435)), "aarch64": (0xC00000B7, (220, 435))}


def forbid_new_processes() -> bool:
    import ctypes
    import platform

    arch = _ARCHES.get(platform.machine())
    if arch is None:
        return False
    audit, numbers = arch
    allow, deny = 0x7FFF0000, 0x00050000 | 11  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EAGAIN
    n = len(numbers)
    program = [(0x20, 0, 0, 4), (0x15, 1, 0, audit), (0x06, 0, 0, allow), (0x20, 0, 0, 0)]
    program.append((0x35, n + 1, 0, 0x40000000))  # the x32 ABI's numbers: refused
    program += [(0x15, n - i, 0, nr) for i, nr in enumerate(numbers)]
    program += [(0x06, 0, 0, allow), (0x06, 0, 0, deny)]

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_ushort),
            ("jt", ctypes.c_ubyte),
            ("jf", ctypes.c_ubyte),
            ("k", ctypes.c_uint),
        ]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(*f) for f in program])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    fprog = Program(len(program), filters)
    return libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, FILTER


def serve(np: Any) -> None:
    """One student's job, in a process of its own forked from the zygote: the setup, then
    calls until the worker is done with it."""
    (length,) = struct.unpack("<I", read_exactly(4))
    setup = json.loads(bytes(read_exactly(length)))

    arrays = {}
    for key in ("X", "y"):
        shape, dtype = setup[key]
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        arrays[key] = np.frombuffer(read_exactly(size), dtype=dtype).reshape(shape)
    X, y, l2 = arrays["X"], arrays["y"], float(setup["l2"])
    names = setup["names"]
    shapes = {n: tuple(s) for n, s in zip(names, setup["shapes"], strict=True)}
    sizes = [int(np.prod(shapes[n])) for n in names]
    total = sum(sizes)

    import resource

    n = setup["processes"]
    resource.setrlimit(resource.RLIMIT_NPROC, (n, n))
    if n <= 1:
        forbid_new_processes()
    sys.stdout = sys.stderr = CappedOutput()
    namespace = {"__name__": "student"}
    try:
        import linecache

        code = setup["code"]
        linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
        exec(compile(code, FILENAME, "exec"), namespace)
        function = namespace.get(setup["function"])
        if not callable(function):
            raise NameError(f"your code defines no function {setup['function']}()")
    except MemoryError:
        error("memory_limit", "Your code ran out of memory while it was loaded.")
        return
    except BaseException as exc:
        error("student_error", trimmed_traceback(exc))
        return
    write_all(HEADER.pack(b"R", 0))

    nbytes = total * 8
    ok = HEADER.pack(b"O", 0)
    while True:
        request = read_exactly(8 + nbytes)
        op = request[0:1]
        flat = np.frombuffer(request, dtype=np.float64, offset=8)
        params, start = {}, 0
        for name, size in zip(names, sizes, strict=True):
            params[name] = flat[start : start + size].reshape(shapes[name])
            start += size
        try:
            value = function(params, X, y, l2)
        except MemoryError:
            error("memory_limit", "Your function ran out of memory.")
            continue
        except BaseException as exc:
            error("student_error", trimmed_traceback(exc))
            continue
        try:
            checked, why = check_return(value, names, shapes, np)
        except MemoryError:
            error("memory_limit", "Your function ran out of memory.")
            continue
        if checked is None:
            error("bad_return", why)
            continue
        loss, grads = checked
        if op == b"L":
            write_all(ok + struct.pack("<d", loss))
        else:
            write_all(b"".join([ok, struct.pack("<d", loss), *(g.tobytes() for g in grads)]))


def _die_like(status: int) -> None:
    """End the zygote as its child ended, so that the worker, which sees only the sandbox's
    own exit, tells a CPU-limit or file-size kill from an exit of the student's own."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _empty(root: str) -> None:
    """Remove everything under ``root``, first giving back to every directory the
    permissions a student may have taken from it (same owner: chmod 0 hides, it does not
    protect)."""
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                os.chmod(entry.path, 0o700)
            for top, dirs, _ in os.walk(entry.path):
                for name in dirs:
                    with contextlib.suppress(OSError):
                        os.chmod(os.path.join(top, name), 0o700)
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _clean_up(child: int) -> None:
    """Between two students (bwrap only: the sandbox's own PID namespace and /tmp): no
    process but this one and the namespace's init is left, /tmp is empty, and what the
    last job left unread in the request pipe is gone, unread."""
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    for _ in range(1000):  # anything it started (GRADLAB_SANDBOX_PROCESSES > 1), reparented
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            break
        time.sleep(0.001)
    else:  # still some after a second: this sandbox serves no one else
        sys.exit(1)
    for root in ("/tmp", "/dev/shm"):
        if os.path.isdir(root) and os.access(root, os.W_OK):
            _empty(root)
            if os.listdir(root):  # something it could not remove: serve no one else
                sys.exit(1)
    os.set_blocking(REQUESTS, False)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        while os.splice(REQUESTS, null, 1 << 20) > 0:
            pass
    except BlockingIOError:
        pass
    finally:
        os.close(null)
        os.set_blocking(REQUESTS, True)


def main() -> None:
    """The zygote: NumPy imported once, then one forked child per student job (``F`` on
    the control pipe). The child never returns here; on ``K`` (bwrap only) the zygote kills
    it, cleans up and says ``W``, ready for the next student's job. A child that ends on
    its own ends the zygote too, with its status."""
    sys.path[:] = [p for p in sys.path if p] + [sys.argv[1]]
    import numpy as np

    control_in, control_out, isolated = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no child may ptrace this one
    while os.read(control_in, 1) == b"F":
        child = os.fork()
        if child == 0:
            os.close(control_in)
            os.close(control_out)
            try:
                serve(np)
            finally:
                os._exit(0)
        pidfd = os.pidfd_open(child)
        if pidfd in select.select([control_in, pidfd], [], [])[0]:
            _die_like(os.waitpid(child, 0)[1])
        os.close(pidfd)
        if os.read(control_in, 1) != b"K" or not isolated:
            break
        _clean_up(child)
        os.write(control_out, b"W")
    sys.exit(0)


main()
