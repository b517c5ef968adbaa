"""``--only load``: the API's latency while 200 event streams and 60 plot renders run.

A real `gradlab serve` on loopback with a job training; the listing (``GET /v1/jobs?limit=20``)
and a submission (``POST /v1/jobs``) are timed one at a time, first with nothing else going on
(the in-run baseline), then while a separate load process keeps 200 streams of the running
job reading and 60 clients asking for fit plots (a refused one waits briefly and asks again).
Bounded: fixed request counts, a fixed load, loopback only.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

from bench.context import Context
from bench.report import Row, at_most, info
from gradlab.procs import wait_for
from store.status import Status

STREAMS, PLOTS = 200, 60
LISTS, SUBMITS = 200, 60  # requests timed per phase
P50_MS, P99_MS = 50.0, 500.0
BUDGET_SECONDS = 120  # the most one timed phase takes, however slow the server is
RUNNING = {
    "name": "bench-load-running",
    "model": {"kind": "mlp", "hidden_sizes": [32]},
    "data": {"kind": "spiral", "n_per_class": 100},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 1_000_000,
}
FITTED = {
    "name": "bench-load-fitted",
    "model": {"kind": "mlp", "hidden_sizes": [32]},
    "data": {"kind": "spiral", "n_per_class": 100},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 200,
}
SUBMITTED = {
    "name": "bench-load-submitted",
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 50},
    "optimizer": {"kind": "gd"},
    "iterations": 10,
}


async def _load(base: str, running: str, fitted: str, stop: Event, out: Any) -> None:
    counts = {"stream_bytes": 0, "streams_open": 0, "plots": 0, "plots_refused": 0}
    limits = httpx.Limits(max_connections=STREAMS + PLOTS, max_keepalive_connections=PLOTS)

    async def stream(http: httpx.AsyncClient) -> None:
        async with http.stream("GET", f"/v1/jobs/{running}/events") as r:
            assert r.status_code == 200, r.status_code
            counts["streams_open"] += 1
            async for chunk in r.aiter_bytes():
                counts["stream_bytes"] += len(chunk)

    async def plots(http: httpx.AsyncClient) -> None:
        while True:
            r = await http.get(f"/v1/jobs/{fitted}/plots/fit.png")
            if r.status_code == 200:
                counts["plots"] += 1
            else:
                assert r.status_code == 503, r.status_code
                counts["plots_refused"] += 1
                await asyncio.sleep(0.2)

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        tasks = [asyncio.create_task(stream(http)) for _ in range(STREAMS)]
        tasks += [asyncio.create_task(plots(http)) for _ in range(PLOTS)]
        while not stop.is_set():
            await asyncio.sleep(0.1)
            out.put(("progress", dict(counts)))
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    out.put(("done", dict(counts)))


def _load_process(base: str, running: str, fitted: str, stop: Event, out: Any) -> None:
    asyncio.run(_load(base, running, fitted, stop, out))


def _timed(http: httpx.Client, budget: float = BUDGET_SECONDS) -> dict[str, list[float]]:
    """Milliseconds per listing and per submission, interleaved, one at a time. A request
    that times out counts as the client's timeout (``timeouts`` says how many), and the
    phase stops at ``budget`` seconds, so that a server that cannot keep up still gives
    figures instead of taking the run down."""
    out: dict[str, list[float]] = {"list": [], "submit": [], "timeouts": []}
    deadline = time.monotonic() + budget
    limit = http.timeout.read or 30.0

    def one(what: str, send: Any, status: int) -> None:
        t = time.perf_counter()
        try:
            assert send().status_code == status
            out[what].append((time.perf_counter() - t) * 1000)
        except httpx.TimeoutException:
            out[what].append(limit * 1000)
            out["timeouts"].append(1.0)

    for i in range(LISTS):
        if time.monotonic() > deadline:
            break
        one("list", lambda: http.get("/v1/jobs?limit=20"), 200)
        if i % (LISTS // SUBMITS) == 0:
            one("submit", lambda: http.post("/v1/jobs", json=SUBMITTED), 201)
    return out


def _p(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def load(ctx: Context) -> list[Row]:
    # The bench is one client address: let it hold every stream.
    with (
        ctx.server(workers=1, name="load", max_streams_per_client=STREAMS + 10) as server,
        server.client() as http,
    ):
        fitted = http.post("/v1/jobs", json=FITTED).json()["id"]
        wait_for(lambda: http.get(f"/v1/jobs/{fitted}").json()["status"] == Status.SUCCEEDED, 120)
        assert http.get(f"/v1/jobs/{fitted}/plots/fit.png").status_code == 200  # warm renderers
        running = http.post("/v1/jobs", json=RUNNING).json()["id"]
        wait_for(lambda: http.get(f"/v1/jobs/{running}").json()["status"] == Status.RUNNING, 60)
        _timed(http)  # warm up
        idle = _timed(http)

        mp = multiprocessing.get_context("spawn")
        stop, out = mp.Event(), mp.Queue()
        proc = mp.Process(target=_load_process, args=(server.base, running, fitted, stop, out))
        proc.start()
        try:
            wait_for(
                lambda: out.get(timeout=30)[1]["streams_open"] >= STREAMS,
                timeout=120,
                what="200 open streams",
            )
            time.sleep(2)  # let the plots queue fill
            loaded = _timed(http)
            loadavg = Path("/proc/loadavg").read_text().split()[0]  # the machine, not us
            assert http.get(f"/v1/jobs/{running}").json()["status"] == Status.RUNNING
        finally:
            stop.set()
        counts: dict[str, int] = {}
        while True:
            kind, counts = out.get(timeout=60)
            if kind == "done":
                break
        proc.join(30)
        if proc.exitcode != 0:
            raise RuntimeError(f"the load process failed (exit {proc.exitcode})")

    rows = []
    for what, label in (("list", "GET /v1/jobs?limit=20"), ("submit", "POST /v1/jobs")):
        base50, base99 = _p(idle[what], 50), _p(idle[what], 99)
        p50, p99 = _p(loaded[what], 50), _p(loaded[what], 99)
        rows += [
            info("load", f"{label} p50, no load (baseline)", [base50], "ms"),
            info("load", f"{label} p99, no load (baseline)", [base99], "ms"),
            at_most(
                "load",
                f"{label} p50, {STREAMS} streams + {PLOTS} plots",
                [p50],
                P50_MS,
                "ms",
                note=f"{p50 / base50:.1f}× the baseline p50; {len(loaded[what])} requests",
            ),
            at_most(
                "load",
                f"{label} p99, {STREAMS} streams + {PLOTS} plots",
                [p99],
                P99_MS,
                "ms",
                note=f"{p99 / base99:.1f}× the baseline p99; max {max(loaded[what]):.0f} ms",
            ),
        ]
    seconds = sum(loaded["list"]) / 1000 + sum(loaded["submit"]) / 1000
    rows += [
        info("load", "fit plots drawn during the run", [counts["plots"]], "plots"),
        info(
            "load",
            "fit plots refused (503 plots_busy)",
            [counts["plots_refused"]],
            "plots",
            note=f"over {seconds:.1f} s; refused clients waited 0.2 s and asked again",
        ),
        info("load", "bytes the 200 streams received", [counts["stream_bytes"] / 1e6], "MB"),
        info(
            "load",
            "requests that timed out under load",
            [len(loaded["timeouts"])],
            "requests",
            note=f"counted as {http.timeout.read:g} s each; the machine's load average at the "
            f"end of the loaded phase: {loadavg}",
        ),
    ]
    return rows
