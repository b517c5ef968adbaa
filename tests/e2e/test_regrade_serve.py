"""Grading fails closed, with real processes in course-lab mode: a real ``gradlab serve``
(GRADLAB_AUTH=required, no workers of its own), accounts from ``gradlab users add`` and lone
``gradlab worker`` processes. A worker SIGKILLed mid-grading, with GRADLAB_MAX_ATTEMPTS=1,
leaves the submission ``not_gradable`` with 0 points and the lost worker named, as the
student and the instructor both see it; a regrade then runs the code again and grades it.
Code that loops forever is ``time_limit``: graded, 0 on the checks it prevents, never a
pass."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gradlab.procs import ROOT, Server, kill_group, start_worker, wait_for
from store.sandboxing import bwrap_works
from tests.worker.student_code import SOFTMAX, with_body

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bwrap_works() is not None and not os.environ.get("CI"),
        reason=f"no bwrap: {bwrap_works()}",
    ),
]

ITERATIONS = 20
CHECKS = [
    {"name": "dW", "points": 4, "kind": "solution", "tensor": "W"},
    {"name": "db", "points": 2, "kind": "solution", "tensor": "b"},
    {"name": "numeric", "points": 2, "kind": "numeric"},
    {"name": "taylor", "points": 2, "kind": "taylor"},
]
ASSIGNMENT = {
    "name": "softmax-code",
    "title": "Softmax gradients, as code",
    "exercise": {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "blobs", "n_samples": 60, "n_classes": 3, "n_features": 3},
        "optimizer": {"kind": "gd", "learning_rate": 0.5},
        "iterations": ITERATIONS,
        "l2": 0.1,
        "init": {"kind": "random", "scale": 0.5},
    },
    "submit": "code",
    "checks": CHECKS,
}
# Right, and slow enough that a worker killed while it trains is killed mid-grading: each
# call sleeps, and a job makes a few dozen (training, and its checks' loss evaluations).
SLOW = SOFTMAX.replace("    W, b = ", "    time.sleep(0.02)\n    W, b = ").replace(
    "import numpy as np", "import time\n\nimport numpy as np"
)
FOREVER = with_body("while True:\n    pass")
# Workers: a lost lease is noticed within a second; the first loss fails the job.
WORKER = {"lease_seconds": 1, "max_attempts": 1, "sandbox_call_seconds": 1}


def add_users(env: dict[str, str], roles: dict[str, str]) -> dict[str, str]:
    """Each account made by its own ``gradlab users add`` (run at once); their tokens."""
    runs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "gradlab", "users", "add", name, "--role", role],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, role in roles.items()
    }
    tokens = {}
    for name, run in runs.items():
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        tokens[name] = out.strip().splitlines()[-1]
    return tokens


def submission(http: httpx.Client, sub_id: str) -> dict[str, Any]:
    r = http.get(f"/v1/assignments/softmax-code/submissions/{sub_id}")
    assert r.status_code == 200, r.text
    return r.json()


def settled(http: httpx.Client, sub_id: str) -> dict[str, Any] | None:
    sub = submission(http, sub_id)
    return None if sub["status"] == "pending" else sub


def test_a_killed_grader_is_not_gradable_until_a_regrade_and_a_timeout_never_passes(
    db_url: str, tmp_path: Path
) -> None:
    logs = tmp_path
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            Server(db_url, workers=0, log=logs / "serve.log", auth="required")
        )
        # The first worker starts now, so that it is up by the time there is work.
        first = start_worker(db_url, "--id", "first", log=logs / "first.log", **WORKER)
        stack.callback(kill_group, first)
        roles = {"ian": "instructor", "ann": "student", "ben": "student"}
        tokens = add_users(server.env, roles)
        staff, student, other = (
            stack.enter_context(server.client(headers={"Authorization": f"Bearer {tokens[n]}"}))
            for n in roles
        )
        url = "/v1/assignments/softmax-code"
        created = staff.post("/v1/assignments", json=ASSIGNMENT)
        assert created.status_code == 201, created.text
        r = student.post(f"{url}/submissions", json={"code": SLOW})
        assert r.status_code == 201, r.text
        sub_id, job_id = r.json()["id"], r.json()["job_id"]
        assert r.json()["status"] == "pending"

        def mid_job() -> bool:
            job = student.get(f"/v1/jobs/{job_id}").json()
            return job["status"] == "running" and 1 <= job["iterations_done"] < ITERATIONS

        wait_for(mid_job, timeout=60, interval=0.02, what="the grading job mid-run")
        kill_group(first)  # SIGKILL its process group: the worker and its sandbox
        assert first.returncode == -signal.SIGKILL
        assert student.get(f"/v1/jobs/{job_id}").json()["iterations_done"] < ITERATIONS

        second = start_worker(db_url, "--id", "second", log=logs / "second.log", **WORKER)
        stack.callback(kill_group, second)
        lost = wait_for(lambda: settled(student, sub_id), timeout=30, interval=0.1, what="loss")
        job = student.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "failed" and job["error"]["type"] == "worker_lost"
        # Fails closed, the same for both sides: no points, and the reason.
        for sub in (lost, submission(staff, sub_id)):
            assert (sub["status"], sub["score"]) == ("not_gradable", 0.0), sub
            assert "worker_lost" in sub["reason"] and "worker was lost" in sub["reason"]
            assert not any(c["passed"] for c in sub["checks"])
            assert all("An instructor can regrade it." in c["message"] for c in sub["checks"])
        book = {g["student"]: g for g in staff.get(f"{url}/grades").json()["grades"]}
        assert (book["ann"]["status"], book["ann"]["score"]) == ("not_gradable", 0.0)

        # The regrade runs ann's code again, as a job of hers, and it is graded.
        regraded = staff.post(f"{url}/regrade")
        assert regraded.status_code == 200, regraded.text
        assert regraded.json()["rerun"] == [sub_id]
        fresh = submission(student, sub_id)["job_id"]
        assert fresh != job_id
        assert student.get(f"/v1/jobs/{fresh}").json()["owner"] == "ann"

        # Meanwhile ben submits code that never returns.
        r = other.post(f"{url}/submissions", json={"code": FOREVER})
        assert r.status_code == 201, r.text
        looped_id = r.json()["id"]

        done = wait_for(lambda: settled(student, sub_id), timeout=60, interval=0.1, what="regrade")
        assert (done["status"], done["score"], done["reason"]) == ("graded", 10.0, None)
        assert done["job_id"] == fresh and all(c["passed"] for c in done["checks"])
        (latest,) = student.get(f"{url}/submissions").json()["submissions"]
        assert latest["id"] == sub_id and latest["score"] == 10.0

        looped = wait_for(lambda: settled(other, looped_id), timeout=60, interval=0.1)
        job = other.get(f"/v1/jobs/{looped['job_id']}").json()
        assert job["status"] == "failed" and job["error"]["type"] == "time_limit"
        # The student's own failure: graded, and every check it prevented scores 0.
        assert (looped["status"], looped["score"]) == ("graded", 0.0)
        for check in looped["checks"]:
            assert check["passed"] is False and check["points"] == 0.0
            assert check["message"].startswith("Prevented by time_limit")
            assert "GRADLAB_SANDBOX_CALL_SECONDS" in check["message"]
        book = {g["student"]: g for g in staff.get(f"{url}/grades").json()["grades"]}
        assert {s: (g["status"], g["score"]) for s, g in book.items()} == {
            "ann": ("graded", 10.0),
            "ben": ("graded", 0.0),
        }
    log = (logs / "serve.log").read_text()
    assert not any(token in log for token in tokens.values())
