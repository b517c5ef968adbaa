"""``POST /v1/gradient-checks`` on the CS231n 2-layer net (h = 100, the spiral's 300 × 2, three
classes), in a real ``gradlab serve`` on loopback: its p50 against the 20 ms target, and beside
it, in the same run, the engine's own call (what the route computes, without HTTP and JSON)
and ``GET /healthz`` on the same server (HTTP alone)."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from bench.context import Context
from bench.report import Row, at_most, info, ratio
from engine import make_dataset, make_model
from engine.studentcheck import check_gradients

EXERCISE: dict[str, Any] = {
    "model": {"kind": "mlp", "hidden_sizes": [100], "activation": "relu"},
    "loss": "cross_entropy",
    "l2": 0.001,
    "data": {"kind": "spiral", "n_per_class": 100, "n_classes": 3},
}


def _problem() -> tuple[Any, dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, Any]]:
    data = make_dataset("spiral", n_per_class=100, n_classes=3)
    model = make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100])
    params = model.init_params("random", scale=0.1, seed=1)
    y = model.check_targets(data.y)
    loss, grads = model.loss_and_grads(params, data.X, y, 0.001)
    body = {
        **EXERCISE,
        "params": {k: v.tolist() for k, v in params.items()},
        "gradients": {k: v.tolist() for k, v in grads.items()},
        "loss_value": float(loss.loss),
    }
    return model, params, data.X, y, body


def _times(call: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def gradient_checks(ctx: Context, requests: int = 200) -> list[Row]:
    model, params, X, y, body = _problem()
    grads = {k: np.array(v) for k, v in body["gradients"].items()}
    with ctx.server(workers=0, name="gradchecks") as server, server.client() as http:
        answer = http.post("/v1/gradient-checks", json=body)
        assert answer.status_code == 200 and answer.json()["passed"], answer.text[:300]
        post: list[float] = []
        health: list[float] = []
        engine: list[float] = []
        paired: list[float] = []
        for _ in range(requests // 20):  # interleaved rounds: the machine's load falls alike
            post += (p := _times(lambda: http.post("/v1/gradient-checks", json=body), 20))
            health += _times(lambda: http.get("/healthz"), 20)
            engine += (e := _times(lambda: check_gradients(model, params, X, y, 0.001, grads), 20))
            paired.append(float(np.median(p) / np.median(e)))
    size = len(json.dumps(body)) / 1024
    note = f"{requests} sequential requests of a {size:.0f} KB body, interleaved with the others"
    figure = "POST /v1/gradient-checks, 2-layer net h=100 (p50)"
    return [
        at_most("gradchecks", figure, post, 20, "ms", note),
        info("gradchecks", "  the engine's check_gradients alone (p50)", engine, "ms"),
        info("gradchecks", "  GET /healthz on the same server (p50)", health, "ms"),
        ratio(
            "gradchecks",
            "  POST / engine, per round of 20",
            paired,
            "the rest is HTTP, JSON parsing and validation of the nested lists",
        ),
    ]
