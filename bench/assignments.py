"""A class's submissions to an assignment, graded end to end in a real ``gradlab serve`` on
loopback: the CS231n softmax on the spiral (300 × 2, three classes).

``assignments``: 300 gradient submissions (right and summed, alternating), each answered
with its grade. Reports the time to feedback (p50, p95) beside ``POST /v1/gradient-checks`` on
the same body in the same run (the check alone: the submission adds the instance, the
scoring and the stored row), the whole class's wall time, and the gradebook's and insights'
reads once the class is in.

``code_class``: 300 students (course-lab mode, a token each) submit code at once, right and
summed alternating; ``gradlab serve --workers 2`` trains each in the sandbox, grades it as
the job ends, and runs the one shared reference run. Reports the class's wall time (first
submission → last grade, from the stored timestamps) against the issue's 60 s, and each
submission's time to feedback (``graded_at − submitted_at``) while the class is graded."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sqlalchemy import select

from bench.context import Context
from bench.report import Row, at_most, info
from bench.sandbox import SOFTMAX
from engine import make_dataset, make_model
from store import accounts
from store.accounts import Role
from store.tables import Submission

EXERCISE: dict[str, Any] = {
    "model": {"kind": "softmax_regression"},
    "loss": "cross_entropy",
    "l2": 0.001,
    "data": {"kind": "spiral", "n_per_class": 100, "n_classes": 3},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 200,
    "init": {"kind": "random", "scale": 0.01, "seed": 0},
}
ASSIGNMENT = {
    "name": "bench-softmax",
    "title": "Softmax on the spiral",
    "exercise": EXERCISE,
    "submit": "gradients",
    "checks": [
        {"name": "dW", "points": 4, "kind": "solution", "tensor": "W"},
        {"name": "db", "points": 2, "kind": "solution", "tensor": "b"},
        {"name": "taylor", "points": 2, "kind": "taylor", "visibility": "hidden"},
        {"name": "loss", "points": 2, "kind": "loss"},
    ],
}


def _answers(instance: dict[str, Any]) -> list[dict[str, Any]]:
    """The summed slip and the right answer, on the instance."""
    data = make_dataset("spiral", n_per_class=100, n_classes=3)
    model = make_model("softmax_regression", n_features=2, n_classes=3)
    params = {k: np.array(v) for k, v in instance["params"].items()}
    loss, grads = model.loss_and_grads(params, data.X, model.check_targets(data.y), 0.001)
    right = {k: v.tolist() for k, v in grads.items()}
    summed = {k: (300 * v).tolist() for k, v in grads.items()}
    value = float(loss.loss)
    return [{"gradients": summed, "loss_value": value}, {"gradients": right, "loss_value": value}]


def assignments(ctx: Context, submissions: int = 300) -> list[Row]:
    with ctx.server(workers=0, name="assignments") as server, server.client() as http:
        made = http.post("/v1/assignments", json=ASSIGNMENT)
        assert made.status_code == 201, made.text[:300]
        url = "/v1/assignments/bench-softmax"
        instance = http.get(url, params={"student": "local"}).json()["instance"]
        answers = _answers(instance)
        check_body = {
            **{k: EXERCISE[k] for k in ("model", "loss", "l2", "data")},
            "params": instance["params"],
            **answers[1],
        }
        feedback: list[float] = []
        checks: list[float] = []
        paired: list[float] = []
        for i in range(submissions // 20):  # interleaved rounds of 20: the load falls alike
            round_sub, round_check = [], []
            for j in range(20):
                t = time.perf_counter()
                r = http.post(f"{url}/submissions", json=answers[(i * 20 + j) % 2])
                round_sub.append((time.perf_counter() - t) * 1e3)
                assert r.status_code == 201 and r.json()["status"] == "graded", r.text[:300]
            for _ in range(20):
                t = time.perf_counter()
                assert http.post("/v1/gradient-checks", json=check_body).status_code == 200
                round_check.append((time.perf_counter() - t) * 1e3)
            feedback += round_sub
            checks += round_check
            paired.append(float(np.median(round_sub) / np.median(round_check)))
        class_seconds = sum(feedback) / 1e3  # the submissions' own time, checks aside
        grades = http.get(f"{url}/grades").json()["grades"]
        scores = {g["score"] for g in grades if g["student"] == "local"}
        assert scores == {10.0}, scores  # local's latest is the last, right, answer
        # (other sections' accounts in the same database are in the gradebook, unsubmitted)
        reads: dict[str, list[float]] = {"grades": [], "grades.csv": [], "insights": []}
        for _ in range(10):
            for what, path, headers in (
                ("grades", "/grades", {}),
                ("grades.csv", "/grades", {"Accept": "text/csv"}),
                ("insights", "/insights", {}),
            ):
                t = time.perf_counter()
                assert http.get(url + path, headers=headers).status_code == 200
                reads[what].append((time.perf_counter() - t) * 1e3)
        insight = http.get(f"{url}/insights").json()
        assert insight["checks"][0]["passed"] == 1  # one student (local), counted once
    p95 = float(np.percentile(feedback, 95))
    note = f"{submissions} sequential submissions, right and summed alternating"
    return [
        info("assignments", "submit gradients → graded (p50)", feedback, "ms", note),
        info("assignments", "  the same, p95", [p95], "ms"),
        info("assignments", "  POST /v1/gradient-checks, same body (p50)", checks, "ms"),
        at_most(
            "assignments",
            "  submission / gradient check, per round of 20",
            paired,
            2.0,
            "×",
            "the rest: the instance, the scoring and the stored row",
        ),
        at_most(
            "assignments",
            f"a class of {submissions}, submit → score",
            [class_seconds],
            60,
            "s",
            "sequential, one client",
        ),
        info("assignments", "  GET grades (JSON), p50", reads["grades"], "ms"),
        info("assignments", "  GET grades (CSV), p50", reads["grades.csv"], "ms"),
        info("assignments", "  GET insights, p50", reads["insights"], "ms"),
    ]


SUMMED = SOFTMAX.replace("    dscores /= num_examples\n", "")  # dW m times too large
assert SUMMED != SOFTMAX
CODE_ASSIGNMENT = {
    **ASSIGNMENT,
    "name": "bench-softmax-code",
    "submit": "code",
    "checks": [
        *ASSIGNMENT["checks"],
        {"name": "final", "points": 1, "kind": "final_loss", "tolerance": 1e-6},
    ],
}


def code_class(ctx: Context, submissions: int = 300) -> list[Row]:
    students = [f"b{i:03d}" for i in range(submissions)]
    with ctx.db.write_session() as session:
        staff = accounts.create_user(session, "bench-ian", Role.INSTRUCTOR)[1]
        tokens = {s: accounts.create_user(session, s, Role.STUDENT)[1] for s in students}
    url = f"/v1/assignments/{CODE_ASSIGNMENT['name']}"
    with (
        ctx.server(workers=2, name="code-class", auth="required") as server,
        server.client() as http,
    ):
        made = http.post(
            "/v1/assignments", json=CODE_ASSIGNMENT, headers={"Authorization": f"Bearer {staff}"}
        )
        assert made.status_code == 201, made.text[:300]
        posted: list[float] = []
        for i, student in enumerate(students):
            t = time.perf_counter()
            r = http.post(
                f"{url}/submissions",
                json={"code": SOFTMAX if i % 2 == 0 else SUMMED},
                headers={"Authorization": f"Bearer {tokens[student]}"},
            )
            posted.append((time.perf_counter() - t) * 1e3)
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text[:300]

        def graded() -> list[Submission]:
            with ctx.db.read_session() as session:
                query = select(Submission).where(Submission.assignment == CODE_ASSIGNMENT["name"])
                rows = list(session.scalars(query))
            return rows if all(s.status != "pending" for s in rows) else []

        deadline = time.monotonic() + 600
        while not (rows := graded()):  # slowly: the workers have the cores
            assert time.monotonic() < deadline, "the class was not graded in 10 minutes"
            time.sleep(0.5)
    assert len(rows) == submissions and {r.status for r in rows} == {"graded"}
    by_owner = {r.owner: r.score for r in rows}
    assert {by_owner[s] for s in students[::2]} == {11.0}, "a right answer lost points"
    assert max(by_owner[s] for s in students[1::2]) < 11.0, "a summed dW passed"
    start = min(r.submitted_at for r in rows)
    end = max(r.graded_at for r in rows if r.graded_at is not None)
    feedback = [(r.graded_at - r.submitted_at).total_seconds() for r in rows if r.graded_at]
    note = f"{submissions} students at once, 2 workers, {ctx.engine_name}"
    return [
        at_most(
            "class", f"a class of {submissions} code submissions, submit → score",
            [(end - start).total_seconds()], 60, "s", note,
        ),
        info("class", "  time to feedback while graded, p50", [float(np.median(feedback))], "s"),
        info("class", "  the same, p95", [float(np.percentile(feedback, 95))], "s"),
        info("class", "  POST …/submissions (code), p50", posted, "ms", "validate, queue"),
    ]  # fmt: skip
