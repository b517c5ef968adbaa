"""The student-code sandbox (issue 12 §3): its start-up (bubblewrap, the interpreter and
NumPy's import, the code's exec), one call's overhead over calling the same function
directly, on the CS231n softmax shapes (X 300 × 2, W 2 × 3), and a 200-iteration softmax
student job against the same built-in job in a real ``gradlab serve`` with one worker — the
worker's first (which starts its sandbox) and later ones (whose sandbox its job process
started ahead: at the worker's start, then after the job before)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from bench.context import Context, parse_time
from bench.report import Row, at_most, info
from engine import make_dataset
from store.sandboxing import sandbox_mode
from store.settings import Settings
from store.status import TERMINAL, Status
from worker.sandbox import Sandbox

SOFTMAX = """
import numpy as np


def loss_and_gradients(params, X, y, l2):
    W, b = params["W"], params["b"]
    num_examples = X.shape[0]
    scores = np.dot(X, W) + b
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    data_loss = np.sum(-np.log(probs[range(num_examples), y])) / num_examples
    loss = data_loss + 0.5 * l2 * np.sum(W * W)
    dscores = probs
    dscores[range(num_examples), y] -= 1
    dscores /= num_examples
    dW = np.dot(X.T, dscores) + l2 * W
    db = np.sum(dscores, axis=0)
    return loss, {"W": dW, "b": db}
"""
SHAPES = {"W": (2, 3), "b": (3,)}
JOB = {
    "model": {"kind": "softmax_regression"},
    "data": {"kind": "spiral", "n_per_class": 100, "n_classes": 3},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "l2": 0.001,
    "iterations": 200,
}


def _data() -> tuple[np.ndarray, np.ndarray]:
    data = make_dataset("spiral", n_per_class=100, n_classes=3)
    return data.X, data.y.astype(np.int64)


def _job_seconds(http: httpx.Client, spec: dict[str, Any]) -> float:
    job_id = http.post("/v1/jobs", json=spec).json()["id"]
    while (view := http.get(f"/v1/jobs/{job_id}").json())["status"] not in TERMINAL:
        time.sleep(0.02)
    assert view["status"] == Status.SUCCEEDED, view["error"]
    return parse_time(view["finished_at"]) - parse_time(view["started_at"])


def sandbox(ctx: Context, starts: int = 10, calls: int = 2000, jobs: int = 3) -> list[Row]:
    settings = Settings(database_url=ctx.url)
    mode = sandbox_mode(settings).kind
    assert mode is not None, sandbox_mode(settings).reason
    X, y = _data()
    params = {"W": 0.01 * np.random.default_rng(0).standard_normal((2, 3)), "b": np.zeros(3)}

    start_ms = []
    for _ in range(starts):
        t = time.perf_counter()
        box = Sandbox(settings, mode, SOFTMAX, "loss_and_gradients", SHAPES, X, y, 1e-3)
        start_ms.append((time.perf_counter() - t) * 1e3)
        box.close()

    namespace: dict[str, Any] = {}
    exec(compile(SOFTMAX, "softmax", "exec"), namespace)
    direct = namespace["loss_and_gradients"]
    through, alone, overhead = [], [], []
    with Sandbox(settings, mode, SOFTMAX, "loss_and_gradients", SHAPES, X, y, 1e-3) as box:
        for _ in range(calls // 100):  # interleaved rounds: the machine's load falls alike
            a = []
            for _ in range(100):
                t = time.perf_counter()
                box.call(params)
                a.append((time.perf_counter() - t) * 1e6)
            d = []
            for _ in range(100):
                t = time.perf_counter()
                direct(params, X, y, 1e-3)
                d.append((time.perf_counter() - t) * 1e6)
            through += a
            alone += d
            overhead.append(float(np.median(a) - np.median(d)))

    builtin, cold, warm = [], [], []
    with ctx.server(workers=1, name="sandbox") as server, server.client() as http:
        builtin.append(_job_seconds(http, JOB))
        cold.append(_job_seconds(http, {**JOB, "student": {"code": SOFTMAX}}))  # warmed at start
        for _ in range(jobs):
            builtin.append(_job_seconds(http, JOB))
            warm.append(_job_seconds(http, {**JOB, "student": {"code": SOFTMAX}}))
    start_s = float(np.median(start_ms)) / 1e3
    budget = 2 * float(np.median(builtin)) + start_s
    return [
        at_most("sandbox", f"sandbox start-up ({mode}, incl. NumPy) p50", start_ms, 200, "ms"),
        at_most(
            "sandbox",
            "per-call overhead over a direct call, softmax 300×2 (p50)",
            overhead,
            100,
            "µs",
            f"medians of {calls // 100} interleaved rounds of 100 calls each way",
        ),
        info("sandbox", "  one call through the sandbox (p50)", through, "µs"),
        info("sandbox", "  the same function called directly (p50)", alone, "µs"),
        info("sandbox", "200-iteration softmax job, built-in", builtin, "s"),
        info("sandbox", "200-iteration softmax job, student code, spare ready", warm, "s"),
        info("sandbox", "200-iteration softmax job, student code, worker's first", cold, "s"),
        at_most(
            "sandbox",
            "  student job / (2 × built-in + start-up)",
            [w / budget for w in warm],
            1.0,
            "×",
            "started_at → finished_at, one worker, its sandbox started ahead (GRADLAB_SANDBOX_"
            "SPARE); the student job also records 3 checks × 2 iterations",
        ),
        at_most(
            "sandbox",
            "  worker's first student job / (2 × built-in + start-up)",
            [c / budget for c in cold],
            1.0,
            "×",
            "its sandbox was started when the worker started",
        ),
    ]
