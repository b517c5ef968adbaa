"""The sandbox on its own: hostile student code, each attempt contained with the error type
a job would fail with, and the host (this process) unharmed — a fresh sandbox works after
each. Small limits keep it fast: 2 s of wall clock per call."""

# ruff: noqa: E501  (the table of hostile snippets reads best one case per line)
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from store.sandboxing import bwrap_works
from store.settings import Settings
from tests.worker.student_code import SOFTMAX, with_body
from worker.sandbox import Guest, Sandbox, Spare, StudentError

pytestmark = pytest.mark.skipif(
    bwrap_works() is not None and not os.environ.get("CI"), reason=f"no bwrap: {bwrap_works()}"
)

SETTINGS = Settings(database_url="sqlite:////nonexistent/gradlab.db", sandbox_call_seconds=2)
SHAPES = {"W": (2, 3), "b": (3,)}
X = np.random.default_rng(0).standard_normal((300, 2))
Y = np.arange(300) % 3
PARAMS = {"W": 0.01 * np.ones((2, 3)), "b": np.zeros(3)}


def sandbox(code: str, mode: str = "bwrap", settings: Settings = SETTINGS) -> Sandbox:
    return Sandbox(settings, mode, code, "loss_and_gradients", SHAPES, X, Y, 1e-3)


def outcome(body: str, mode: str = "bwrap") -> StudentError:
    with pytest.raises(StudentError) as caught, sandbox(with_body(body), mode) as box:
        box.call(PARAMS)
    return caught.value


DB_FILE = SETTINGS.database_url.removeprefix("sqlite:///")
HOSTILE = {
    "network": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)",
                "student_error", "Network is unreachable"),
    "environment": ("import os\nraise RuntimeError(sorted(os.environ))",
                    "student_error", "['MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PWD']"),
    "read the database file and gradlab's source": (
        f"import os\nraise RuntimeError([os.path.exists(p) for p in ({DB_FILE!r}, {__file__!r}, '/work')])",
        "student_error", "[False, False, False]"),
    "import gradlab's engine": (
        "found = []\nfor m in ('engine', 'store', 'worker', 'gradlab'):\n"
        "    try:\n        __import__(m)\n        found.append(m)\n    except ImportError:\n"
        "        pass\nraise RuntimeError(f'imported {found}')",
        "student_error", "imported []"),
    "write outside tmp": (
        "import os\nopen('/tmp/mine', 'w').write('ok')\nfor p in ('/evil', '/usr/evil', '/opt/evil'):\n"
        "    try:\n        open(p, 'w')\n    except OSError as e:\n        print(e.strerror)\n"
        "raise RuntimeError('done')",
        "student_error", "Read-only file system\nRead-only file system\nRead-only file system"),
    "fork loop": ("import os\nwhile True:\n    os.fork()", "student_error", "BlockingIOError"),
    "8 GB": ("a = np.ones(2**30)", "memory_limit", "ran out of memory"),
    "loop forever": ("while True:\n    pass", "time_limit", "GRADLAB_SANDBOX_CALL_SECONDS"),
    "print a gigabyte": ("import os\nfor _ in range(2**20):\n    os.write(1, b'x' * 1024)",
                         "student_error", "File too large"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_code_is_contained(name):
    body, kind, words = HOSTILE[name]
    error = outcome(body)
    assert error.kind == kind, error.message
    assert words in error.message + error.output


def test_after_all_that_the_next_sandbox_answers():
    with sandbox(SOFTMAX) as box:
        loss, _ = box.call(PARAMS)
    assert loss == pytest.approx(np.log(3), rel=1e-3)
    assert not [p for p in os.listdir("/tmp") if p == "mine"]  # their /tmp was their own


def test_printing_is_captured_and_truncated_and_a_traceback_shows_only_their_code():
    error = outcome("for i in range(10**6):\n    print('x' * 1000)\nraise ValueError('oops')")
    assert error.kind in ("student_error", "time_limit")  # a million prints may take > 2 s
    assert len(error.output) == SETTINGS.sandbox_output_bytes
    error = outcome("def helper():\n    return 1 / 0\nhelper()")
    assert error.kind == "student_error"
    assert error.message.splitlines()[0] == "ZeroDivisionError: division by zero"
    assert "line 6, in helper: return 1 / 0" in error.message
    assert "guest" not in error.message and "gradlab" not in error.message


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ("return 1.0", "must return a pair (loss, grads); it returned float"),
        ("return 1.0, {'W': np.zeros((2, 3))}", "grads has no 'b'"),
        ("return 1.0, {'W': np.zeros((3, 2)), 'b': np.zeros(3)}",
         "dW has shape (3, 2) but W has shape (2, 3): transposed?"),
        ("return float('nan'), {'W': np.zeros((2, 3)), 'b': np.zeros(3)}", "Your loss is nan"),
        ("return 1.0, {'W': np.full((2, 3), np.nan), 'b': np.zeros(3)}", "dW has 6 NaN"),
    ],
)  # fmt: skip
def test_a_wrong_return_is_bad_return_with_a_sentence(body, sentence):
    error = outcome(body)
    assert error.kind == "bad_return"
    assert sentence in error.message


def test_the_student_function_matches_a_direct_call_in_both_modes():
    namespace: dict = {}
    exec(compile(SOFTMAX, "softmax", "exec"), namespace)
    loss, grads = namespace["loss_and_gradients"](
        {k: v.copy() for k, v in PARAMS.items()}, X, Y, 1e-3
    )
    for mode in ("bwrap", "subprocess"):
        with sandbox(SOFTMAX, mode) as box:
            got_loss, got = box.call(PARAMS)
            assert box.loss(PARAMS) == got_loss
        assert got_loss == loss
        assert got is not None
        for name in grads:
            np.testing.assert_array_equal(got[name], grads[name])


def test_a_plain_subprocess_keeps_the_limits_and_hides_gradlab():
    assert outcome("import engine", "subprocess").kind == "student_error"
    error = outcome("import os\nraise RuntimeError(sorted(os.environ))", "subprocess")
    assert "OPENBLAS_NUM_THREADS" in error.message
    assert "GRADLAB" not in error.message and "PATH" not in error.message


@pytest.mark.parametrize("mode", ["bwrap", "subprocess"])
def test_a_spare_is_used_once_and_a_dead_or_mismatched_one_is_replaced(mode):
    spare = Spare()
    spare.refill(SETTINGS, mode)
    ready = spare.guest
    assert ready is not None and ready.alive
    box = Sandbox(SETTINGS, mode, SOFTMAX, "loss_and_gradients", SHAPES, X, Y, 1e-3, spare)
    with box:
        assert box.proc is ready.proc and spare.guest is None  # taken, never handed out again
        assert box.call(PARAMS)[0] == pytest.approx(np.log(3), rel=1e-3)
    if mode == "bwrap":  # cleaned and kept for the next student (see the test below)
        assert ready.alive and spare.guest is ready
    else:  # no namespace of its own to clean: killed
        assert not ready.alive and spare.guest is None

    spare.refill(SETTINGS, mode)
    dead = spare.guest
    assert dead is not None
    os.killpg(dead.proc.pid, 9)
    dead.proc.wait(timeout=5)
    other = Settings(database_url=SETTINGS.database_url, sandbox_call_seconds=3)
    for settings in (SETTINGS, other):  # dead, then made under other settings: a new one
        with Sandbox(settings, mode, SOFTMAX, "loss_and_gradients", SHAPES, X, Y, 0.0, spare) as b:
            assert b.proc is not dead.proc and b.call(PARAMS)[1] is not None
        spare.refill(SETTINGS, mode)
    spare.close()
    assert spare.guest is None


def test_a_spare_is_off_with_the_setting_and_without_a_sandbox():
    spare = Spare()
    spare.refill(Settings(database_url=SETTINGS.database_url, sandbox_spare=False), "bwrap")
    spare.refill(SETTINGS, None)
    assert spare.guest is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to pin")
def test_caller_and_student_process_share_one_cpu_and_the_caller_gets_its_cpus_back():
    before = os.sched_getaffinity(0)
    with sandbox(SOFTMAX) as box:
        mine = os.sched_getaffinity(0)
        assert len(mine) == 1 and mine <= before
        assert os.sched_getaffinity(box.proc.pid) == mine  # bwrap, and the guest it starts
        box.call(PARAMS)
    assert os.sched_getaffinity(0) == before


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to spread")
def test_sandboxes_alive_at_once_take_different_cpus_while_there_are_free_ones(
    tmp_path, monkeypatch
):
    from worker.sandbox import host

    monkeypatch.setattr(host, "CPU_LOCKS", tmp_path)  # this test's sandboxes only
    cpus = sorted(os.sched_getaffinity(0))
    guests = [Guest(SETTINGS, "bwrap") for _ in cpus]
    try:
        taken = [g.claim.cpu for g in guests]
        assert sorted(taken) == cpus  # one each
        assert all(os.sched_getaffinity(g.proc.pid) == {g.claim.cpu} for g in guests)
        extra = Guest(SETTINGS, "bwrap")  # every CPU has one: it shares, and still works
        assert extra.claim.cpu in cpus
        extra.close()
        freed = guests.pop(0)
        freed.close()
        again = Guest(SETTINGS, "bwrap")
        guests.append(again)
        assert again.claim.cpu == freed.claim.cpu
    finally:
        for g in guests:
            g.close()


BELOW_THE_JOB_LIMIT = """
import resource, sys
import numpy as np
limit = 300 * 1024 * 1024  # the job process's hard limit: it may not raise its children's
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from tests.worker.test_sandbox import PARAMS, SETTINGS, SHAPES, X, Y
from tests.worker.student_code import SOFTMAX, with_body
from worker.sandbox import Sandbox, Spare, StudentError
spare = Spare()
spare.refill(SETTINGS, sys.argv[1])
assert spare.guest is not None and spare.guest.alive
with Sandbox(SETTINGS, sys.argv[1], SOFTMAX, "loss_and_gradients", SHAPES, X, Y, 1e-3, spare) as box:
    print(box.call(PARAMS)[0] > 0)
try:
    code = with_body("a = np.ones(50 * 2**20)")  # 400 MB: under the setting, over the job's
    with Sandbox(SETTINGS, sys.argv[1], code, "loss_and_gradients", SHAPES, X, Y, 1e-3) as box:
        box.call(PARAMS)
except StudentError as e:
    print(e.kind)
"""


@pytest.mark.parametrize("mode", ["bwrap", "subprocess"])
def test_under_a_job_memory_limit_below_the_sandbox_setting_the_sandbox_takes_the_lower(mode):
    done = subprocess.run(
        [sys.executable, "-c", BELOW_THE_JOB_LIMIT, mode], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "memory_limit"]


FIRST_STUDENT = """
import os, subprocess, sys
import numpy as np
np.left_behind = "first"  # state of the process: the next student's starts without it
open("/tmp/answer.py", "w").write("W = 42  # the first student's")
os.makedirs("/tmp/d/e")
os.makedirs("/tmp/locked/in")
open("/tmp/locked/in/secret.py", "w").write("b = 7")
os.chmod("/tmp/locked/in", 0)
os.chmod("/tmp/locked", 0)  # hidden from the zygote's cleanup, it hopes
print("the first student printed this")
sys.stdout.flush()
subprocess.Popen(["/bin/sh", "-c", "sleep 60"]) if os.path.exists("/bin/sh") else None
if os.fork() == 0:  # a process that outlives the job, waiting to read the next one's code
    import time
    time.sleep(60)
    os._exit(0)

def loss_and_gradients(params, X, y, l2):
    return 1.0, {"W": np.zeros((2, 3)), "b": np.zeros(3)}
"""
SECOND_STUDENT = """
import os
import numpy as np
seen = (os.listdir("/tmp"), hasattr(np, "left_behind"), sorted(os.listdir("/proc")))

def loss_and_gradients(params, X, y, l2):
    raise RuntimeError(repr(seen))
"""


def test_one_bwrap_sandbox_serves_students_one_after_another_and_none_sees_the_last():
    """A recycled sandbox: a fresh process per job, forked from a zygote that never ran
    anyone's code; the last job's files, processes, output and unread bytes are gone."""
    settings = Settings(database_url=SETTINGS.database_url, sandbox_processes=4)
    spare = Spare()
    with Sandbox(
        settings, "bwrap", FIRST_STUDENT, "loss_and_gradients", SHAPES, X, Y, 0.0, spare
    ) as box:
        first = box.proc
        box.call(PARAMS)
        assert "the first student printed this" in box.output()
        box._send(b"G" * 8)  # a request the job never read: it must not reach the next one
    assert spare.guest is not None and spare.guest.proc is first  # recycled, not restarted
    box = Sandbox(settings, "bwrap", SECOND_STUDENT, "loss_and_gradients", SHAPES, X, Y, 0.0, spare)
    with box, pytest.raises(StudentError) as caught:
        assert box.proc is first
        box.call(PARAMS)
    listing, leaked, pids = eval(caught.value.message.splitlines()[0].split(": ", 1)[1])
    assert listing == [] and leaked is False
    numeric = [p for p in pids if p.isdigit()]
    assert len(numeric) == 3, numeric  # the namespace's init, the zygote, this child
    assert "the first student printed this" not in caught.value.output
    spare.close()
