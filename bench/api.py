"""The API's hottest read, ``GET /v1/jobs/{id}``, under wrk: the shipped read path against the
library alternatives of ``bench.readpaths``, each in a server of its own, measured in turns."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import uuid

from bench import readpaths
from bench.context import TINY, Context
from bench.report import Row, at_least, at_most, info, ratio
from gradlab.procs import children, cpu_seconds
from service.jobs import service as jobs_service
from store.spec import JobSpec

# --- GET /v1/jobs/{id} (issue 5) --------------------------------------------------------------

_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_COUNT = re.compile(r"(\d+) requests in")
_WRK_P50 = re.compile(r"50%\s+([\d.]+)(us|ms|s)")


def _api_pid(pid: int) -> int:
    """The process that answers: ``gradlab serve`` supervises its API as a child process
    (``gradlab api``); a ``bench.serve`` server answers itself."""
    for child, argv in children(pid).items():
        if "api" in argv:
            return child
    return pid


def _wrk(
    url: str, connections: int, seconds: int, pid: int | None = None, token: str | None = None
) -> dict[str, float]:
    """One wrk run: req/s, p50 in ms and, given the server's pid, the server's CPU time per
    request in µs, which the machine's other load hardly moves; ``token`` as a Bearer header."""
    cpu = cpu_seconds(pid) if pid else 0.0
    header = ["-H", f"Authorization: Bearer {token}"] if token else []
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(pid) - cpu if pid else float("nan")
    value, unit = _WRK_P50.search(out).groups()  # type: ignore[union-attr]
    return {
        "rate": float(_WRK_RATE.search(out)[1]),  # type: ignore[index]
        "p50": float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit],
        "cpu": cpu / int(_WRK_COUNT.search(out)[1]) * 1e6,  # type: ignore[index]
    }


def get_job(ctx: Context, repeats: int = 3, seconds: int = 5) -> list[Row]:
    """Each reader of ``bench.readpaths`` in a server of its own (the API's own in
    ``gradlab serve``), all started at once and measured in turns, the order rotating each
    round, so that the machine's other load falls on each alike."""
    if shutil.which("wrk") is None:
        return [
            Row(
                "api",
                "GET /v1/jobs/{id}",
                "",
                float("nan"),
                "",
                note="wrk is not installed: apt-get install wrk",
            )
        ]
    ctx.insert_jobs(TINY, 1, name="bench-get")
    paths = readpaths.names(ctx.engine_name)
    runs: dict[str, list[dict[str, float]]] = {path: [] for path in paths}
    single: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        urls, pids = {}, {}
        for path in paths:
            command = ("gradlab", "serve") if path == "fast" else ("bench.serve", "--reader", path)
            server = stack.enter_context(ctx.server(name=f"get-{path}", command=command))
            assert server.proc is not None
            with server.client() as http:
                job_id = http.get("/v1/jobs?name=bench-get&limit=1").json()["jobs"][0]["id"]
            urls[path], pids[path] = f"{server.base}/v1/jobs/{job_id}", _api_pid(server.proc.pid)
        for path in paths:
            _wrk(urls[path], 4, 1)  # warm-up: connections opened, statements prepared
        for r in range(repeats):
            for path in paths[r % len(paths) :] + paths[: r % len(paths)]:
                runs[path].append(_wrk(urls[path], 4, seconds, pids[path]))
        for path in paths:
            single[path] = _wrk(urls[path], 1, seconds)
    rows = []
    base = paths[0]  # the API's own; the others' targets are shown, not binding
    for path in paths:
        tag = "" if path == base else f" [{path}]"
        note = "wrk -t1 -c4 on loopback against one uvicorn process" if path == base else ""
        p50s, rates = [r["p50"] for r in runs[path]], [r["rate"] for r in runs[path]]
        cpu = [r["cpu"] for r in runs[path]]
        one = f"{single[path]['rate']:.0f} req/s"
        group = [
            at_most("api", f"GET /v1/jobs/{{id}} p50 (4 connections){tag}", p50s, 2.0, "ms", note),
            at_least("api", f"GET /v1/jobs/{{id}} throughput{tag}", rates, 3000, "req/s"),
            info("api", f"API CPU per request{tag}", cpu, "µs", note and "the server's user+sys"),
            at_most(
                "api",
                f"GET /v1/jobs/{{id}} p50, one keep-alive connection{tag}",
                [single[path]["p50"]],
                2.0,
                "ms",
                f"{one}; no 40 ms Nagle/delayed-ACK stalls" if path == base else one,
            ),
        ]
        for row in group:
            row.binding = path == base
        rows += group
    for path in paths[1:]:
        pairs = list(zip(runs[path], runs[base], strict=True))
        rows += [
            ratio(
                "api",
                f"throughput, {path} / {base}",
                [a["rate"] / b["rate"] for a, b in pairs],
                "the same round, 4 connections",
            ),
            ratio(
                "api", f"CPU per request, {path} / {base}", [a["cpu"] / b["cpu"] for a, b in pairs]
            ),
        ]
    return rows


# --- GET /v1/jobs/{id} with GRADLAB_AUTH=required (issue 11) ---------------------------------


def get_job_auth(ctx: Context, repeats: int = 3, seconds: int = 5) -> list[Row]:
    """The same read on two ``gradlab serve`` s of one database, one with GRADLAB_AUTH=off and
    one with ``required`` (a student's token, the owner predicate in the query, the token
    cache), measured in turns so that the machine's load falls on both alike."""
    if shutil.which("wrk") is None:
        return [Row("auth", "GET /v1/jobs/{id}", "", float("nan"), "", note="wrk is missing")]
    from store import accounts

    with ctx.db.write_session() as session:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        _, token = accounts.create_user(session, name, accounts.Role.STUDENT)
        spec = JobSpec.model_validate({**TINY, "name": "bench-auth"})
        session.add(jobs_service.new_job(session, spec, ctx.settings, name))
    modes = ("off", "required")
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with contextlib.ExitStack() as stack:
        urls, pids, tokens = {}, {}, {"off": None, "required": token}
        for mode in modes:
            server = stack.enter_context(ctx.server(name=f"auth-{mode}", auth=mode))
            assert server.proc is not None
            with server.client(headers={"Authorization": f"Bearer {token}"}) as http:
                found = http.get("/v1/jobs?name=bench-auth&limit=1").json()["jobs"][0]
                assert found["owner"] == name
            urls[mode], pids[mode] = (
                f"{server.base}/v1/jobs/{found['id']}",
                _api_pid(server.proc.pid),
            )
        for mode in modes:
            _wrk(urls[mode], 4, 1, token=tokens[mode])  # warm-up
        for r in range(repeats):
            for mode in modes[r % 2 :] + modes[: r % 2]:
                runs[mode].append(_wrk(urls[mode], 4, seconds, pids[mode], tokens[mode]))
    rows = []
    for mode in modes:
        tag = f" [GRADLAB_AUTH={mode}]"
        binding = mode == "required"
        group = [
            at_most(
                "auth", f"GET /v1/jobs/{{id}} p50{tag}", [x["p50"] for x in runs[mode]], 2.0, "ms"
            ),
            at_least(
                "auth",
                f"GET /v1/jobs/{{id}} throughput{tag}",
                [x["rate"] for x in runs[mode]],
                3000,
                "req/s",
                "a student's token, wrk -t1 -c4" if binding else "",
            ),
            info("auth", f"API CPU per request{tag}", [x["cpu"] for x in runs[mode]], "µs"),
        ]
        for row in group:
            row.binding = binding
        rows += group
    pairs = list(zip(runs["required"], runs["off"], strict=True))
    rows += [
        ratio("auth", "throughput, required / off", [a["rate"] / b["rate"] for a, b in pairs]),
        ratio("auth", "p50, required / off", [a["p50"] / b["p50"] for a, b in pairs]),
        ratio("auth", "CPU per request, required / off", [a["cpu"] / b["cpu"] for a, b in pairs]),
    ]
    return rows
