"""Time the engine's Trainer against the bare CS231n seed loops, in the same process.

    python -m bench.engine [--repeats 5] [--iterations 2000]

Cases: the 2-layer ReLU net (h=100) and the linear softmax classifier on the spiral
(300×2, 3 classes), full-batch gradient descent with step 1.0 and L2 1e-3, both sides
starting from the same parameters.  The engine side builds the Trainer and consumes every
IterationRecord (loss, data/reg loss, gradient norm, accuracy); the seed side runs the
notes' loop.  Repeats are interleaved (seed, engine, engine, seed, …) so drifts in machine
load hit both alike; the table shows per-iteration medians and the engine/seed ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import engine as ml
from engine.seeds import softmax_seed, two_layer_seed

STEP_SIZE = 1.0
REG = 1e-3


def _cases() -> list[tuple[str, ml.Model, Callable[..., Any]]]:
    return [
        (
            "2-layer net h=100 relu, spiral 300x2",
            ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100]),
            lambda X, y, p, n: two_layer_seed(
                X, y, p["W1"], p["b1"], p["W2"], p["b2"], STEP_SIZE, REG, n
            ),
        ),
        (
            "softmax classifier, spiral 300x2",
            ml.make_model("softmax_regression", n_features=2, n_classes=3),
            lambda X, y, p, n: softmax_seed(X, y, p["W"], p["b"], STEP_SIZE, REG, n),
        ),
    ]


def _time_engine(model: ml.Model, X: np.ndarray, y: np.ndarray, params: dict, n: int) -> float:
    start = time.perf_counter()
    optimizer = ml.make_optimizer("gd", learning_rate=STEP_SIZE)
    trainer = ml.Trainer(model, optimizer, X, y, iterations=n, l2=REG, params=params)
    last = None
    for record in trainer:
        last = record
    elapsed = time.perf_counter() - start
    assert last is not None and last.iteration == n - 1
    return elapsed


def _time_seed(
    seed_loop: Callable[..., Any], X: np.ndarray, y: np.ndarray, params: dict, n: int
) -> float:
    start = time.perf_counter()
    losses, _ = seed_loop(X, y, params, n)
    elapsed = time.perf_counter() - start
    assert len(losses) == n
    return elapsed


def run(repeats: int = 5, iterations: int = 2000) -> list[dict]:
    """Time every case; one dict per case with per-iteration milliseconds and ratios."""
    data = ml.spiral(n_per_class=100, n_classes=3, seed=0)
    X, y = np.array(data.X), data.y.astype(np.uint8)
    results = []
    for name, model, seed_loop in _cases():
        params = model.init_params("random", scale=0.01, seed=0)
        _time_seed(seed_loop, X, y, params, 50)  # warm-up (BLAS threads, caches)
        _time_engine(model, X, y, params, 50)
        seed_s, engine_s = [], []
        for r in range(repeats):
            if r % 2 == 0:
                seed_s.append(_time_seed(seed_loop, X, y, params, iterations))
                engine_s.append(_time_engine(model, X, y, params, iterations))
            else:
                engine_s.append(_time_engine(model, X, y, params, iterations))
                seed_s.append(_time_seed(seed_loop, X, y, params, iterations))
        ratios = [e / s for e, s in zip(engine_s, seed_s, strict=True)]
        results.append(
            {
                "case": name,
                "iterations": iterations,
                "repeats": repeats,
                "seed_ms_per_iter": statistics.median(seed_s) * 1e3 / iterations,
                "engine_ms_per_iter": statistics.median(engine_s) * 1e3 / iterations,
                "ratios": ratios,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
            }
        )
    return results


def format_table(results: list[dict]) -> str:
    header = (
        f"{'case':<38} | {'seed loop ms/iter':>17} | {'engine ms/iter':>14} | "
        f"{'ratio (median)':>14} | {'min-max ratio':>13}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r['case']:<38} | {r['seed_ms_per_iter']:>17.4f} | "
            f"{r['engine_ms_per_iter']:>14.4f} | {r['ratio_median']:>14.3f} | "
            f"{r['ratio_min']:>5.3f}-{r['ratio_max']:<7.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args(argv)
    results = run(repeats=args.repeats, iterations=args.iterations)
    print(f"engine vs bare seed loop, {args.iterations} iterations x {args.repeats} repeats")
    print(format_table(results))


if __name__ == "__main__":
    main()
