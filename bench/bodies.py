"""The API's memory and time for one submission of the largest inline body (issue 10 §1):
this tree against a baseline revision (the old path, which kept the arrays in the spec),
each in a `gradlab serve --workers 0` of its own on a fresh SQLite file, side by side.

Per server: the API process's peak resident memory (``VmHWM``, since it started) above its
idle peak after one ``POST /v1/jobs`` of a body just under GRADLAB_MAX_BODY_BYTES, the
POST's time and response size, and ``GET /v1/jobs/{id}`` and ``GET /v1/jobs`` after it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

from bench.api import _api_pid
from bench.context import Context
from bench.report import Row, info, ratio
from gradlab.procs import ROOT, free_port, gradlab_env, kill_group, wait_for
from store.settings import Settings

BASELINE = os.environ.get("GRADLAB_BENCH_BASELINE", "01b0240")
"""The revision before datasets were stored by hash (arrays inline in every stored spec)."""


def body(max_bytes: int) -> bytes:
    """A linear-regression spec whose inline data comes to just under ``max_bytes``."""
    features = 30
    rng = np.random.default_rng(0)
    row = len(orjson.dumps(rng.standard_normal(features).tolist())) + 1
    rows = min(int(max_bytes * 0.97) // (row + 20), Settings().max_inline_rows)
    X = rng.standard_normal((rows, features))
    spec = {
        "model": {"kind": "linear_regression"},
        "data": {"kind": "inline", "X": X, "y": X[:, 0].copy()},
        "optimizer": {"kind": "gd"},
        "iterations": 10,
    }
    out = orjson.dumps(spec, option=orjson.OPT_SERIALIZE_NUMPY)
    assert len(out) <= max_bytes, (len(out), max_bytes)
    return out


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def _measure(tree: Path, work: Path, payload: bytes) -> dict[str, float]:
    """One fresh server of ``tree`` on its own SQLite file: the figures for ``payload``."""
    port = free_port()
    env = gradlab_env(f"sqlite:///{work / 'bodies.db'}")
    env["PYTHONPATH"] = str(tree)
    log = open(work / "serve.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradlab", "serve", "--port", str(port), "--workers", "0"],
        cwd=tree,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=60, interval=0.1, what=f"gradlab serve in {tree}")
        api = _api_pid(proc.pid)
        with httpx.Client(base_url=base, timeout=300) as http:
            idle = _peak_mb(api)
            start = time.perf_counter()
            r = http.post("/v1/jobs", content=payload, headers={"Content-Type": "application/json"})
            post_s = time.perf_counter() - start
            assert r.status_code == 201, r.text[:300]
            peak = _peak_mb(api)
            start = time.perf_counter()
            one = http.get(f"/v1/jobs/{r.json()['id']}")
            get_s = time.perf_counter() - start
            start = time.perf_counter()
            assert http.get("/v1/jobs").status_code == 200
            list_s = time.perf_counter() - start
        return {
            "peak": peak - idle,
            "post": post_s,
            "response": len(r.content) / 2**20,
            "get": get_s,
            "get_bytes": len(one.content) / 2**20,
            "list": list_s,
        }
    finally:
        kill_group(proc)
        log.close()


def bodies(ctx: Context) -> list[Row]:
    payload = body(Settings().max_body_bytes)
    size = len(payload) / 2**20
    with tempfile.TemporaryDirectory(dir=ctx.work) as tmp:
        old_tree, old_work, new_work = Path(tmp, "old"), Path(tmp, "old-db"), Path(tmp, "new-db")
        for path in (old_tree, old_work, new_work):
            path.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", BASELINE], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(old_tree)], input=archive.stdout, check=True)
        new = _measure(ROOT, new_work, payload)
        old = _measure(old_tree, old_work, payload)
    note = f"{size:.1f} MB body, baseline {BASELINE}"
    rows: list[Row] = []
    figures: list[tuple[str, str, str]] = [
        ("peak", "API peak RSS above idle for one POST", "MB"),
        ("post", "POST /v1/jobs", "s"),
        ("response", "POST's response", "MB"),
        ("get", "GET /v1/jobs/{id}", "s"),
        ("list", "GET /v1/jobs (that one job)", "s"),
    ]
    for key, figure, unit in figures:
        rows.append(info("bodies", f"{figure} (now)", [new[key]], unit, note))
        rows.append(info("bodies", f"{figure} (baseline)", [old[key]], unit, note))
        if old[key] > 0:
            rows.append(ratio("bodies", f"{figure}: now / baseline", [new[key] / old[key]], note))
    rows.append(info("bodies", "API peak RSS per body byte (now)", [new["peak"] / size], "×"))
    return rows
