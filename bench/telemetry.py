"""``GET /metrics`` and what the metrics cost the request path (issue 14).

Two ``gradlab serve`` s on one database holding 1,000 jobs, GRADLAB_AUTH=required, one with
GRADLAB_METRICS on and one off, measured in turns under wrk (a student's token on
``GET /v1/jobs/{id}``) so that the machine's load falls on both alike: the throughput ratio
and the API's CPU per request on each, whose difference is what counting and timing each
request costs. Then the scrape itself, with an admin's token: each one a second apart, so
that every scrape counts the jobs afresh (the job gauges are cached for a second), idle and
with wrk running against the same server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import statistics
import subprocess
import threading
import time
import uuid

import httpx

from bench.api import _api_pid, _wrk
from bench.context import TINY, Context
from bench.report import Row, at_least, at_most, info, ratio
from service.jobs import service as jobs_service
from service.web.accesslog import AccessLog
from store import accounts
from store.spec import JobSpec
from store.telemetry import RequestMetrics

JOBS = 1000


def _scrapes(http: httpx.Client, count: int, token: str, spacing: float = 1.05) -> list[float]:
    """``count`` scrapes, ``spacing`` seconds apart (past the job gauges' cache); each in ms."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        r = http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        times.append((time.perf_counter() - start) * 1e3)
        assert r.status_code == 200 and "gradlab_queue_depth" in r.text, r.text[:200]
        time.sleep(spacing)
    return times


def access_log_cost(requests: int = 20_000, rounds: int = 5) -> list[float]:
    """µs per request the request metrics add to the access-log middleware, in this process:
    the same ASGI request through ``AccessLog`` with and without them, in alternating rounds
    (the log itself off in both), so that the machine's load falls on both alike."""

    async def app(scope: dict, receive: object, send: object) -> None:
        scope["route"] = ROUTE

    scope = {"type": "http", "method": "GET", "path": "/v1/jobs/x", "state": {}}

    async def run(middleware: AccessLog) -> float:
        start = time.perf_counter()
        for _ in range(requests):
            await middleware(dict(scope), None, None)  # type: ignore[arg-type]
        return (time.perf_counter() - start) / requests * 1e6

    logger = logging.getLogger("gradlab.access")
    was, logger.disabled = logger.disabled, True
    try:
        added = []
        for _ in range(rounds):
            with_metrics = asyncio.run(run(AccessLog(app, RequestMetrics())))  # type: ignore[arg-type]
            without = asyncio.run(run(AccessLog(app, None)))  # type: ignore[arg-type]
            added.append(with_metrics - without)
        return added
    finally:
        logger.disabled = was


class _Route:
    path = "/v1/jobs/{job_id}"


ROUTE = _Route()


def metrics(ctx: Context, repeats: int = 3, seconds: int = 5, scrapes: int = 12) -> list[Row]:
    if shutil.which("wrk") is None:
        return [Row("metrics", "GET /metrics", "", float("nan"), "", note="wrk is missing")]
    with ctx.db.write_session() as session:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        _, student = accounts.create_user(session, name, accounts.Role.STUDENT)
        _, admin = accounts.create_user(session, f"{name}-ops", accounts.Role.ADMIN)
        spec = JobSpec.model_validate({**TINY, "name": "bench-metrics"})
        for _ in range(JOBS):
            session.add(jobs_service.new_job(session, spec, ctx.settings, name))
    modes = ("on", "off")
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with contextlib.ExitStack() as stack:
        servers, urls, pids = {}, {}, {}
        for mode in modes:
            server = stack.enter_context(
                ctx.server(name=f"metrics-{mode}", auth="required", metrics=mode == "on")
            )
            assert server.proc is not None
            with server.client(headers={"Authorization": f"Bearer {student}"}) as http:
                job_id = http.get("/v1/jobs?name=bench-metrics&limit=1").json()["jobs"][0]["id"]
            servers[mode] = server
            urls[mode], pids[mode] = f"{server.base}/v1/jobs/{job_id}", _api_pid(server.proc.pid)
        for mode in modes:
            _wrk(urls[mode], 4, 1, token=student)  # warm-up
        for r in range(repeats):
            for mode in modes[r % 2 :] + modes[: r % 2]:
                runs[mode].append(_wrk(urls[mode], 4, seconds, pids[mode], student))
        with servers["on"].client() as http:
            idle = _scrapes(http, scrapes, admin)
            loaded: list[float] = []
            loader = threading.Thread(
                target=lambda: subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        "-c4",
                        f"-d{scrapes + 2}s",
                        "-H",
                        f"Authorization: Bearer {student}",
                        urls["on"],
                    ],
                    capture_output=True,
                    check=True,
                )
            )
            loader.start()
            time.sleep(0.5)
            loaded = _scrapes(http, scrapes, admin)
            loader.join()
            size = len(http.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).content)
    on, off = runs["on"], runs["off"]
    pairs = list(zip(on, off, strict=True))
    added = [a["cpu"] - b["cpu"] for a, b in pairs]
    middleware = access_log_cost()
    return [
        at_least(
            "metrics",
            "GET /v1/jobs/{id} throughput, metrics on",
            [x["rate"] for x in on],
            3000,
            "req/s",
            "GRADLAB_AUTH=required, a student's token, wrk -t1 -c4",
        ),
        info(
            "metrics",
            "GET /v1/jobs/{id} throughput, metrics off",
            [x["rate"] for x in off],
            "req/s",
        ),
        ratio("metrics", "throughput, on / off", [a["rate"] / b["rate"] for a, b in pairs]),
        info("metrics", "API CPU per request, on", [x["cpu"] for x in on], "µs"),
        info("metrics", "API CPU per request, off", [x["cpu"] for x in off], "µs"),
        info(
            "metrics",
            "API CPU per request, on − off (under wrk)",
            added,
            "µs",
            "paired rounds of two servers; the machine's load swamps a few µs",
        ),
        at_most(
            "metrics",
            "per request added by the metrics, in the access log",
            middleware,
            15,
            "µs",
            "the ASGI middleware with and without them, alternating rounds, one process",
        ),
        at_most(
            "metrics",
            f"GET /metrics p50, {JOBS} jobs, each scrape counting afresh",
            [statistics.median(idle)],
            50,
            "ms",
            f"{scrapes} scrapes 1 s apart; {size} bytes",
        ),
        at_most(
            "metrics",
            "GET /metrics p50, under wrk load on the same API",
            [statistics.median(loaded)],
            100,
            "ms",
            f"max {max(loaded):.1f} ms",
        ),
    ]
