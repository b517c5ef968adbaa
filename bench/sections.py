"""The benchmark sections. Each returns table rows; each is bounded in time and in load
(loopback only, fixed request and job counts)."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import httpx
import numpy as np

import engine as ml
from bench import (
    api,
    assignments,
    bodies,
    csvpaths,
    external,
    fairshare,
    gradchecks,
    load,
    sandbox,
    telemetry,
)
from bench import engine as engine_bench
from bench.context import TINY, Context, parse_time
from bench.report import Row, at_least, at_most, info, ratio
from engine.seeds import two_layer_seed
from gradlab.procs import kill_group, rss_mb, start_worker, stop_all, wait_for
from service.jobs.examples import SEEDS
from store.status import TERMINAL, Status

TWO_LAYER = {**SEEDS["spiral_two_layer"]["value"], "iterations": 5000}


def _wait_job(http: httpx.Client, job_id: str, interval: float = 0.01) -> dict[str, Any]:
    """The job once it has finished."""

    def finished() -> dict[str, Any] | None:
        view = http.get(f"/v1/jobs/{job_id}").json()
        return view if view["status"] in TERMINAL else None

    view = wait_for(finished, timeout=300, interval=interval, what=f"job {job_id}")
    assert view["status"] == Status.SUCCEEDED, view["error"]
    return view


# --- the engine (issue 2) ----------------------------------------------------------------


def engine(ctx: Context) -> list[Row]:
    rows = []
    for case in engine_bench.run(repeats=5, iterations=2000):
        rows.append(
            at_most(
                "engine",
                f"engine / seed loop: {case['case']}",
                case["ratios"],
                1.10,
                "×",
                note=f"seed {case['seed_ms_per_iter']:.4f} ms/iter, engine "
                f"{case['engine_ms_per_iter']:.4f} ms/iter",
            )
        )
    return rows


# --- tracking overhead (issues 3 and 5) ------------------------------------------------------


def tracking(ctx: Context, repeats: int = 3) -> list[Row]:
    """A job recording every iteration of the 2-layer net, run by a real worker, against the
    bare seed loop on the same data in this process."""
    data = ml.spiral(n_per_class=100, n_classes=3, seed=0)
    X, y = np.asarray(data.X), data.y.astype(np.uint8)
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100])
    p = model.init_params("random", scale=0.01, seed=0)
    n = TWO_LAYER["iterations"]

    def seed_loop() -> float:
        start = time.perf_counter()
        two_layer_seed(X, y, p["W1"], p["b1"], p["W2"], p["b2"], 1.0, 1e-3, n)
        return time.perf_counter() - start

    ratios, seeds, jobs = [], [], []
    with ctx.server(workers=1, name="tracking") as server, server.client() as http:

        def job() -> float:
            job_id = http.post("/v1/jobs", json=TWO_LAYER).json()["id"]
            view = wait_for(
                lambda: (
                    (v := http.get(f"/v1/jobs/{job_id}").json())["status"]
                    in (Status.SUCCEEDED, Status.FAILED)
                    and v
                ),
                timeout=120,
                interval=0.05,
            )
            assert view["status"] == Status.SUCCEEDED, view["error"]
            return parse_time(view["finished_at"]) - parse_time(view["started_at"])

        job()  # warm the worker up
        seed_loop()
        for r in range(repeats):
            order = (seed_loop, job) if r % 2 == 0 else (job, seed_loop)
            times = {f: f() for f in order}
            seeds.append(times[seed_loop])
            jobs.append(times[job])
            ratios.append(times[job] / times[seed_loop])
    note = (
        f"seed loop {statistics.median(seeds):.2f} s, tracked job {statistics.median(jobs):.2f} s "
        f"(claim to final flush: training, every point, two gradient checks, checkpoints)"
    )
    return [
        at_most("tracking", f"tracked 2-layer job / seed loop, {n} it", ratios, 1.05, "×", note),
        at_most("tracking", "same, against issue 3's bound", ratios, 1.25, "×"),
    ]


# --- the write path (issue 5) --------------------------------------------------------------


def writes(ctx: Context, points: int = 300_000, repeats: int = 3) -> list[Row]:
    rates = []
    for _ in range(repeats):
        claim = ctx.running_job(TINY)
        rates.append(points / ctx.write_points(claim, points, finish=True))
    target = 1_000_000 if ctx.engine_name == "SQLite" else 500_000
    note = (
        "chunks of 1,000 points (iteration + 5 values) with a checkpoint, "
        "one fenced transaction each"
    )
    return [
        at_least(
            "writes", f"metric write path ({ctx.engine_name})", rates, target, "points/s", note
        )
    ]


# --- history reads (issue 5) ---------------------------------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak = self.base = rss_mb(pid)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.join()


def reads(
    ctx: Context, iterations: int = 1_000_000, repeats: int = 3, downsampled: int = 50
) -> list[Row]:
    claim = ctx.running_job({**TINY, "iterations": iterations})
    ctx.write_points(claim, iterations, finish=True)
    job_id = claim.job_id
    rows: list[Row] = []
    growth: dict[str, float] = {}
    with ctx.server(workers=0, name="reads") as server, server.client() as http:
        assert server.proc is not None
        limits = {
            "format=columns": 0.5,
            "format=csv": 0.35,
            "format=points": 1.5,
            "format=arrow": 0.1,
            "format=parquet": None,
        }
        medians: dict[str, float] = {}
        for query, limit in limits.items():
            times = []
            for _ in range(repeats):
                with RssSampler(server.proc.pid) as sampler:
                    start = time.perf_counter()
                    size = 0
                    with http.stream("GET", f"/v1/jobs/{job_id}/metrics?{query}") as r:
                        assert r.status_code == 200
                        for piece in r.iter_raw():
                            size += len(piece)
                    times.append(time.perf_counter() - start)
                growth[query] = max(growth.get(query, 0.0), sampler.peak - sampler.base)
            figure, note = f"1M-point history, {query}", f"{size / 1e6:.0f} MB"
            medians[query] = statistics.median(times)
            rows.append(
                info("reads", figure, times, "s", note)
                if limit is None
                else at_most("reads", figure, times, limit, "s", note)
            )
        rows.append(
            ratio(
                "reads",
                "CSV lines: whole-array / row-by-row writer",
                csvpaths.paired_ratios(ctx.url, job_id),
                "the same 1M points' blocks, the two writers timed alternately in this process",
            )
        )
        rows.append(
            ratio(
                "reads",
                "1M points end to end: arrow / columns",
                [medians["format=arrow"] / medians["format=columns"]],
                "medians of the rows above",
            )
        )
        columns = http.get(f"/v1/jobs/{job_id}/metrics?format=columns").json()["columns"]
        assert len(columns["iteration"]) == iterations
        worst = ", ".join(f"{q.split('=')[1]} {g:.1f}" for q, g in growth.items())
        rows.append(
            at_most(
                "reads",
                "API memory growth while serving 1M points (worst)",
                [max(growth.values())],
                50,
                "MB",
                f"peak RSS over the request's start, worst of {repeats} per format: {worst} MB",
            )
        )

        latencies = []
        for _ in range(downsampled):
            start = time.perf_counter()
            r = http.get(f"/v1/jobs/{job_id}/metrics?max_points=1000")
            latencies.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200 and len(r.json()["points"]) <= 1000
        rows.append(
            at_most("reads", "downsampled read, max_points=1000 of 1M", latencies, 10, "ms")
        )
    return rows


# --- tiny jobs and pickup latency (issues 4 and 5) ----------------------------------------------


def _drain_rate(ctx: Context, workers: int, count: int) -> float:
    procs = [
        start_worker(ctx.url, log=ctx.work / f"tiny-{workers}-{i}.log") for i in range(workers)
    ]
    try:
        time.sleep(1.5)  # let them import and go idle
        start = time.time()  # from before the jobs are queued to the last one's finished_at
        name = ctx.insert_jobs(TINY, count)
        end = ctx.wait_named(name, count)
        assert ctx.count(name, (Status.SUCCEEDED,)) == count
        return count / (end - start)
    finally:
        stop_all(procs)


def tiny_jobs(ctx: Context, count: int = 600, repeats: int = 2) -> list[Row]:
    rates: dict[int, list[float]] = {}
    for workers in (1, 2, 4):
        rates[workers] = [_drain_rate(ctx, workers, count) for _ in range(repeats)]
    scaling = [b / a for a, b in zip(rates[1], rates[2], strict=True)]
    where = ctx.engine_name
    rows = [
        info("tiny jobs", f"100-iteration jobs, 1 worker ({where})", rates[1], "jobs/s"),
        at_least("tiny jobs", f"100-iteration jobs, 2 workers ({where})", rates[2], 100, "jobs/s"),
        info(
            "tiny jobs",
            f"100-iteration jobs, 4 workers ({where})",
            rates[4],
            "jobs/s",
            "2 cores: 4 workers share them",
        ),
        at_least("tiny jobs", "2 workers / 1 worker", scaling, 1.7, "×"),
    ]
    return rows


def pickup(ctx: Context, jobs: int = 25) -> list[Row]:
    """Submit jobs one at a time to an idle worker: how long each waits to be claimed."""
    latencies = []
    with ctx.server(workers=1, name="pickup") as server, server.client() as http:
        time.sleep(1.0)
        for _ in range(jobs):
            job_id = http.post("/v1/jobs", json=TINY).json()["id"]
            view = _wait_job(http, job_id, interval=0.005)
            latencies.append(
                (parse_time(view["started_at"]) - parse_time(view["created_at"])) * 1000
            )
            time.sleep(0.05)
    how = "LISTEN/NOTIFY" if ctx.engine_name == "PostgreSQL" else "a 50 ms poll"
    return [
        info(
            "tiny jobs",
            f"pickup latency, idle worker ({ctx.engine_name})",
            latencies,
            "ms",
            f"{how}; created_at → started_at",
        )
    ]


# --- worker memory (issue 5) -----------------------------------------------------------------


def worker_memory(ctx: Context, iterations: int = 1_000_000) -> list[Row]:
    spec = {
        "model": {"kind": "linear_regression"},
        "data": {"kind": "line", "n_samples": 64},
        "optimizer": {"kind": "gd", "learning_rate": 0.05},
        "iterations": iterations,
    }
    name = ctx.insert_jobs(spec, 1)
    proc = start_worker(ctx.url, "--burst", log=ctx.work / "memory.log")
    samples: list[tuple[float, float]] = []
    try:
        start = time.perf_counter()
        while proc.poll() is None:
            try:
                samples.append((time.perf_counter() - start, rss_mb(proc.pid)))
            except (FileNotFoundError, RuntimeError):
                break
            time.sleep(0.2)
        proc.wait(timeout=60)
    finally:
        kill_group(proc)
    assert ctx.count(name, (Status.SUCCEEDED,)) == 1
    elapsed = time.perf_counter() - start
    rss = [r for _, r in samples]
    tenth = rss[max(len(rss) // 10, 1)]
    drift = rss[-1] - tenth
    note = (
        f"{iterations:,} iterations in {elapsed:.1f} s; RSS at 10% {tenth:.0f} MB, at the end "
        f"{rss[-1]:.0f} MB (drift {drift:+.1f} MB)"
    )
    return [
        at_most("worker", "worker RSS on a 1M-iteration job (peak)", [max(rss)], 150, "MB", note),
        at_most("worker", "RSS drift from 10% to the end", [abs(drift)], 10, "MB"),
    ]


SECTIONS: dict[str, Any] = {
    "engine": engine,
    "tracking": tracking,
    "writes": writes,
    "reads": reads,
    "api": api.get_job,
    "auth": api.get_job_auth,
    "tiny": tiny_jobs,
    "pickup": pickup,
    "memory": worker_memory,
    "load": load.load,
    "gradchecks": gradchecks.gradient_checks,
    "assignments": assignments.assignments,
    "class": assignments.code_class,
    "bodies": bodies.bodies,
    "fairshare": fairshare.fairshare,
    "external": external.external,
    "metrics": telemetry.metrics,
    "sandbox": sandbox.sandbox,
}
