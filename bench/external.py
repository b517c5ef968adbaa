"""External runs: ``POST /v1/jobs/{id}/metrics`` appending batches of 1,000 points to a run
in a real ``gradlab serve`` on loopback — its throughput (points/s) and the p50 of one
batch — against, in the same run, the worker's own flush of the same number of points
(records → blocks → chunks → fenced transactions, in this process, no HTTP); and a re-sent
batch (every point stored already: the no-op a retry costs)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from bench.context import TINY, Context
from bench.report import Row, info, ratio

BATCH = 1000


def _batches(points: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    loss = (np.abs(rng.standard_normal(points)).cumsum()[::-1] / points).tolist()
    return [
        {
            "points": [
                {"iteration": i, "loss": loss[i], "accuracy": 0.75}
                for i in range(lo, min(lo + BATCH, points))
            ]
        }
        for lo in range(0, points, BATCH)
    ]


def external(ctx: Context, points: int = 100_000, repeats: int = 3) -> list[Row]:
    batches = _batches(points)
    rates, baseline, ratios, p50s, resend = [], [], [], [], []
    with ctx.server(workers=0, name="external") as server, server.client() as http:
        for _ in range(repeats):
            # The baseline first, then the same points over HTTP, in turns.
            claim = ctx.running_job(TINY)
            flushed = points / ctx.write_points(claim, points, chunk=BATCH, finish=True)
            r = http.post("/v1/jobs", json={"runner": "external", "name": "bench-external"})
            assert r.status_code == 201, r.text
            url = f"/v1/jobs/{r.json()['id']}/metrics"
            times = []
            start = time.perf_counter()
            for body in batches:
                t0 = time.perf_counter()
                answer = http.post(url, json=body)
                times.append(time.perf_counter() - t0)
                assert answer.status_code == 200 and answer.json()["stored"] == len(body["points"])
            rate = points / (time.perf_counter() - start)
            again = []
            for body in batches[:20]:
                t0 = time.perf_counter()
                assert http.post(url, json=body).json()["unchanged"] == BATCH
                again.append(time.perf_counter() - t0)
            rates.append(rate)
            baseline.append(flushed)
            ratios.append(rate / flushed)
            p50s.append(statistics.median(times) * 1000)
            resend.append(statistics.median(again) * 1000)
    engine = ctx.engine_name
    return [
        info("external", f"append over HTTP ({engine})", rates, "points/s",
             f"{points:,} points in batches of {BATCH:,}, one client, one connection"),
        info("external", "one batch of 1,000 points (p50)", p50s, "ms",
             "JSON parse + validation + locked append + summary update + commit"),
        info("external", "a re-sent batch (all stored: a no-op, p50)", resend, "ms",
             "read back and compare 1,000 stored points"),
        info("external", f"worker flush, same points ({engine})", baseline, "points/s",
             "the baseline: chunks of 1,000 with a checkpoint, in-process"),
        ratio("external", "append over HTTP / worker flush", ratios,
              "paired per repeat; HTTP and JSON are most of the gap"),
    ]  # fmt: skip
