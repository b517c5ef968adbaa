"""The same workloads against an MLflow tracking server, side by side (``--peer mlflow``).

MLflow is installed by this module into its own virtualenv (``bench/.peer-venv``), never into
gradlab's; its server runs on SQLite on loopback with its default settings. The workloads:

* ingestion in batches — MLflow's ``runs/log-batch`` with 1,000 metric values per request
  (its limit) against gradlab's worker write path, 1,000-point chunks;
* ingestion one point at a time — ``runs/log-metric`` per value against a gradlab flush per
  point (one fenced transaction each);
* a 100,000-step history read — ``metrics/get-history`` against ``GET /v1/jobs/{id}/metrics``.

A gradlab point is an iteration and five values (loss, data and regularisation loss, gradient
norm, accuracy); an MLflow point is one value of one key. The ratios compare points per second
and seconds per history as each tool counts them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.context import TINY, Context
from bench.report import Row
from gradlab.procs import free_port, kill_group, wait_for

STEPS = 100_000


def ensure_mlflow(work: Path) -> Path:
    venv = work.parent / ".peer-venv"
    mlflow = venv / "bin" / "mlflow"
    if not mlflow.exists():
        print("… installing MLflow into bench/.peer-venv (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "mlflow"], check=True)
    return mlflow


def _start(mlflow: Path, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    store = work / "mlflow"
    store.mkdir(exist_ok=True)
    log = open(work / "mlflow.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--default-artifact-root",
            str(store / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, "mlflow server exited; see mlflow.log"
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=180, interval=0.5, what="the MLflow server")
    return proc, base


def _run(http: httpx.Client, name: str) -> str:
    api = "/api/2.0/mlflow"
    experiment = http.post(f"{api}/experiments/create", json={"name": name}).json()["experiment_id"]
    return http.post(f"{api}/runs/create", json={"experiment_id": experiment}).json()["run"][
        "info"
    ]["run_id"]


def _mlflow_batches(http: httpx.Client, run_id: str, steps: int) -> float:
    now = int(time.time() * 1000)
    start = time.perf_counter()
    for first in range(0, steps, 1000):
        metrics = [
            {"key": "loss", "value": 1.0 / (s + 1), "timestamp": now, "step": s}
            for s in range(first, min(first + 1000, steps))
        ]
        r = http.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics})
        r.raise_for_status()
    return steps / (time.perf_counter() - start)


def _mlflow_singles(http: httpx.Client, run_id: str, count: int) -> float:
    now = int(time.time() * 1000)
    start = time.perf_counter()
    for s in range(count):
        r = http.post(
            "/api/2.0/mlflow/runs/log-metric",
            json={
                "run_id": run_id,
                "key": "loss",
                "value": 1.0 / (s + 1),
                "timestamp": now,
                "step": s,
            },
        )
        r.raise_for_status()
    return count / (time.perf_counter() - start)


def _mlflow_history(http: httpx.Client, run_id: str) -> float:
    start = time.perf_counter()
    r = http.get(
        "/api/2.0/mlflow/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss", "max_results": STEPS},
    )
    r.raise_for_status()
    assert len(r.json()["metrics"]) == STEPS, len(r.json()["metrics"])
    return time.perf_counter() - start


def compare(ctx: Context, work: Path, repeats: int = 3) -> list[Row]:
    mlflow = ensure_mlflow(work)
    proc, base = _start(mlflow, ctx.work)
    try:
        with httpx.Client(base_url=base, timeout=300) as http:
            run_id = _run(http, "gradlab-bench")
            m_batch = [_mlflow_batches(http, run_id, 20_000) for _ in range(repeats)]
            m_single = [
                _mlflow_singles(http, _run(http, f"singles-{i}"), 100) for i in range(repeats)
            ]
            history_run = _run(http, "history")
            _mlflow_batches(http, history_run, STEPS)
            m_history = [_mlflow_history(http, history_run) for _ in range(repeats)]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        finally:
            kill_group(proc)

    g_batch = [20_000 / ctx.write_points(ctx.running_job(TINY), 20_000) for _ in range(repeats)]
    g_single = [100 / ctx.write_points(ctx.running_job(TINY), 100, chunk=1) for _ in range(repeats)]
    history_job = ctx.running_job({**TINY, "iterations": STEPS})
    ctx.write_points(history_job, STEPS, finish=True)
    g_history: dict[str, list[float]] = {"points": [], "columns": []}
    with ctx.server(workers=0, name="peer") as server, server.client() as http:
        for fmt in g_history:
            for _ in range(repeats):
                start = time.perf_counter()
                r = http.get(f"/v1/jobs/{history_job.job_id}/metrics?format={fmt}")
                assert r.status_code == 200
                g_history[fmt].append(time.perf_counter() - start)

    def row(
        figure: str, gradlab: list[float], peer: list[float], unit: str, higher_is_better: bool
    ) -> Row:
        g, m = statistics.median(gradlab), statistics.median(peer)
        ratio = g / m if higher_is_better else m / g
        shown = (lambda v: f"{v:,.0f}") if unit == "points/s" else (lambda v: f"{v:.3f}")
        note = f"gradlab {shown(g)} {unit}, MLflow {shown(m)} {unit}"
        return Row("vs MLflow", figure, "", ratio, "×", ratio=ratio, note=note)

    return [
        row("ingestion, batched (points/s)", g_batch, m_batch, "points/s", True),
        row(
            "ingestion, one point per request/flush (points/s)",
            g_single,
            m_single,
            "points/s",
            True,
        ),
        row("100k-step history, rows (speed-up)", g_history["points"], m_history, "s", False),
        row("100k-step history, columns (speed-up)", g_history["columns"], m_history, "s", False),
    ]
