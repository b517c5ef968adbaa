"""How close the API's memory estimates (``engine.estimate``) are to the real peaks.

    python -m bench.estimates

Each run is a fresh process that imports gradlab, notes its resident memory, then does what
a worker does with the spec: parses it from JSON, builds the data and model, trains a few
iterations with a gradient check and a checkpoint. Its peak resident memory above the
start is the measured figure; the estimate is what ``POST /v1/jobs`` compares with
``GRADLAB_JOB_MEMORY_MB``. A ratio below 1 means the estimate errs on the safe side.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from engine import estimate

CHILD = r"""
import json, resource, sys
import numpy as np, orjson
from engine import Trainer, gradient_check
from store.build import build
from store.codec import pack_state
from store.spec import JobSpec

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

raw = sys.stdin.buffer.read()
start = rss()
spec = JobSpec.model_validate(orjson.loads(raw))
built = build(spec)
trainer = Trainer(built.model, built.optimizer, built.data.X, built.data.y,
                  iterations=built.iterations, l2=built.l2, params=built.params)
for record in trainer:
    if record.iteration == 0:
        Xb, yb = trainer.batch
        gradient_check(built.model, trainer.params, Xb, yb, built.l2, max_coordinates=2)
        pack_state(trainer.state_dict())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"start": start, "peak": peak}))
"""

GD = {"kind": "gd", "learning_rate": 0.1}
RUNS: dict[str, dict[str, Any]] = {
    "mlp [512], spiral 15k rows": {
        "model": {"kind": "mlp", "hidden_sizes": [512]},
        "data": {"kind": "spiral", "n_per_class": 5_000},
        "optimizer": GD,
    },
    "mlp [100, 100], spiral 60k rows": {
        "model": {"kind": "mlp", "hidden_sizes": [100, 100]},
        "data": {"kind": "spiral", "n_per_class": 20_000},
        "optimizer": GD,
    },
    "mlp [1024], sgd batch 4096": {
        "model": {"kind": "mlp", "hidden_sizes": [1024]},
        "data": {"kind": "spiral", "n_per_class": 20_000},
        "optimizer": {"kind": "sgd", "batch_size": 4096},
    },
    "softmax, blobs 20k x 500 x 100": {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "blobs", "n_samples": 20_000, "n_features": 500, "n_classes": 100},
        "optimizer": GD,
    },
    "newton softmax, 2k x 100 x 20": {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "blobs", "n_samples": 2000, "n_features": 100, "n_classes": 20},
        "optimizer": {"kind": "newton"},
    },
    "newton logistic, 5k x 600": {
        "model": {"kind": "logistic_regression"},
        "data": {"kind": "blobs", "n_samples": 5000, "n_features": 600},
        "optimizer": {"kind": "newton"},
    },
    "linear, inline 20k x 50": {
        "model": {"kind": "linear_regression"},
        "data": {
            "kind": "inline",
            "X": [[(i * 7 + j) % 13 / 13 for j in range(50)] for i in range(20_000)],
            "y": [i % 17 / 17 for i in range(20_000)],
        },
        "optimizer": GD,
    },
}


def measure(spec: dict[str, Any]) -> float:
    """Peak resident bytes of a worker-like run of ``spec`` above its start."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps({**spec, "iterations": 3}).encode(),
        capture_output=True,
        check=True,
    )
    figures = json.loads(out.stdout)
    return float(figures["peak"] - figures["start"])


def estimated(spec: dict[str, Any]) -> estimate.Cost:
    from service.jobs.validation import data_shape
    from store.spec import MLP, SGD, InlineData, JobSpec, Newton

    parsed = JobSpec.model_validate({**spec, "iterations": 3})
    return estimate.training_cost(
        parsed.model.kind,
        parsed.resolved_loss,
        data_shape(parsed),
        hidden_sizes=parsed.model.hidden_sizes if isinstance(parsed.model, MLP) else (),
        batch_rows=parsed.optimizer.batch_size if isinstance(parsed.optimizer, SGD) else None,
        newton=isinstance(parsed.optimizer, Newton),
        inline=isinstance(parsed.data, InlineData),
    )


def main() -> int:
    rows = []
    for name, spec in RUNS.items():
        cost = estimated(spec)
        rows.append((name, cost.total / 2**20, measure(spec) / 2**20, cost.largest()))
    width = max(len(r[0]) for r in rows)
    print("memory estimates against measured peaks (resident, above the process's start)")
    print(f"{'run':<{width}} | estimate  | measured  | measured / estimate | largest part")
    print(f"{'-' * width}-+-----------+-----------+---------------------+-------------")
    for name, est, real, part in rows:
        print(f"{name:<{width}} | {est:>6.0f} MB | {real:>6.0f} MB | {real / est:>19.2f} | {part}")
    ratios = [real / est for _, est, real, _ in rows]
    print(f"measured / estimate: {min(ratios):.2f} to {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
