"""The command-line client against a real `gradlab serve`: submit (and follow), jobs, show,
metrics, cancel, sweep; its exit codes; and what it says when the server is not there."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner, Result

import migrations as migrate
from gradlab.cli import app
from gradlab.client import Client
from gradlab.procs import ROOT, Server, free_port, wait_for

pytestmark = pytest.mark.slow

runner = CliRunner()
JOB_ID = re.compile(r"^[0-9a-f]{32}$")

SOFTMAX = {
    "name": "cli-softmax",
    "model": {"kind": "softmax_regression"},
    "data": {"kind": "spiral", "n_per_class": 50},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "l2": 1e-3,
    "iterations": 300,
    "gradient_check": {"every": 100},
}
DIVERGING = {
    "name": "cli-diverging",
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line"},
    "optimizer": {"kind": "gd", "learning_rate": 50.0},
    "iterations": 300,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """One server (SQLite, one worker) for the tests that only read what they submit."""
    tmp = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{tmp / 'gradlab.db'}"
    migrate.upgrade(url)
    with Server(url, workers=1, log=tmp / "serve.log") as s:
        yield s


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory: pytest.TempPathFactory):
    """A server without workers: whatever is submitted stays queued."""
    tmp = tmp_path_factory.mktemp("cli-idle")
    url = f"sqlite:///{tmp / 'gradlab.db'}"
    migrate.upgrade(url)
    with Server(url, workers=0, log=tmp / "serve.log") as s:
        yield s


def gradlab(*args: str, input: str | None = None, env: dict | None = None) -> Result:
    return runner.invoke(app, list(args), input=input, env=env)


def on(server: Server, *args: str, input: str | None = None) -> Result:
    """``gradlab ARGS --url <server>``, in this process."""
    return gradlab(*args, "--url", server.base, input=input)


def write(tmp_path, name: str, spec: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return str(path)


def csv_rows(result: Result) -> list[list[str]]:
    return list(csv.reader(io.StringIO(result.stdout)))


def wait_status(server: Server, job_id: str, *statuses: str) -> dict:
    def done() -> dict | None:
        job = httpx.get(f"{server.base}/v1/jobs/{job_id}").json()
        return job if job["status"] in statuses else None

    return wait_for(done, timeout=30, interval=0.05, what=f"job {job_id} to be {statuses}")


# --- submit --follow ---------------------------------------------------------------------------


def test_submit_follow_as_a_real_process_prints_the_id_progress_and_summary(db_url, tmp_path):
    spec = write(tmp_path, "softmax.json", SOFTMAX)
    with Server(db_url, workers=1, log=tmp_path / "serve.log") as server:
        done = subprocess.run(
            [sys.executable, "-m", "gradlab", "submit", spec, "--follow", "--url", server.base],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip()
        assert JOB_ID.match(job_id), done.stdout  # stdout is the id alone; the rest is stderr
        job = httpx.get(f"{server.base}/v1/jobs/{job_id}").json()

    err = done.stderr
    assert job["status"] == "succeeded" and job["iterations_done"] == 300
    assert "Traceback" not in err
    assert f"job {job_id} cli-softmax: succeeded" in err
    assert "300/300" in err  # the progress bar's last state
    summary = job["summary"]
    assert re.search(rf"final loss\s+{summary['final_loss']:.5g}", err)
    assert re.search(
        rf"best loss\s+{summary['best_loss']:.5g} @ iteration {summary['best_iteration']}", err
    )
    assert re.search(rf"final accuracy\s+{summary['final_accuracy']:.1%}", err)
    assert re.search(r"attempts\s+1", err)
    # Each check's verdict as it arrived, then the table: one row per check.
    for iteration in (0, 100, 200, 299):
        assert f"✓ gradient check @ {iteration} (numeric): passed" in err
        assert re.search(
            rf"^\s*{iteration}\s+numeric\s+\S+e-\d+\s+\S+e-\d+\s+pass\s+\d+", err, re.M
        )
    assert "Gradient checks: max relative error per tensor" in err


def test_follow_of_a_diverging_job_exits_1_and_prints_the_error(server, tmp_path):
    result = on(server, "submit", write(tmp_path, "diverge.json", DIVERGING), "--follow")
    assert result.exit_code == 1, result.output
    job_id = result.stdout.strip()
    job = httpx.get(f"{server.base}/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["type"] == "diverged"
    assert f"job {job_id} cli-diverging: failed" in result.stderr
    assert f"error (diverged, iteration {job['error']['iteration']}):" in result.stderr
    assert " ".join(job["error"]["message"].split()) in " ".join(result.stderr.split())
    assert "final accuracy" not in result.stderr  # a regression has none


def test_follow_of_a_cancelled_job_exits_1(idle_server, tmp_path):
    spec = write(tmp_path, "softmax.json", SOFTMAX)
    follower = subprocess.Popen(
        [sys.executable, "-m", "gradlab", "submit", spec, "-f", "--url", idle_server.base],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stdout is not None
        job_id = follower.stdout.readline().strip()  # printed before it starts following
        assert JOB_ID.match(job_id)
        time.sleep(0.3)  # following a queued job that no worker will take

        cancelled = on(idle_server, "cancel", job_id)
        assert cancelled.exit_code == 0, cancelled.output
        assert cancelled.stdout == "cancelled\n"

        _, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 1, err
    assert "cancelled after 0 iterations" in err and "Traceback" not in err


# --- jobs, show, metrics -----------------------------------------------------------------------


def test_jobs_show_and_metrics_of_a_finished_job(server, tmp_path):
    spec = write(tmp_path, "softmax.json", SOFTMAX | {"name": "cli-listed", "tags": {"lab": "3"}})
    submitted = on(server, "submit", spec)
    assert submitted.exit_code == 0, submitted.output
    job_id = submitted.stdout.strip()
    assert JOB_ID.match(job_id) and submitted.stderr == ""
    job = wait_status(server, job_id, "succeeded")

    listed = on(server, "jobs", "--name", "cli-listed")
    assert listed.exit_code == 0, listed.output
    (row,) = [line for line in listed.stdout.splitlines() if job_id in line]
    assert "succeeded" in row and "300/300" in row and f"{job['summary']['final_loss']:.5g}" in row
    as_json = json.loads(on(server, "jobs", "--tag", "lab:3", "--json").stdout)
    assert [j["id"] for j in as_json["jobs"]] == [job_id]
    assert json.loads(on(server, "jobs", "--status", "queued", "--json").stdout)["jobs"] == []
    bad_status = on(server, "jobs", "--status", "finished")
    assert bad_status.exit_code == 2 and "finished" in bad_status.output

    shown = on(server, "show", job_id)
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert f"job {job_id} cli-listed: succeeded" in out
    assert "softmax_regression, loss cross_entropy" in out
    assert "gd learning_rate=1.0" in out and "lab=3" in out
    assert re.search(r"best loss\s+\S+ @ iteration \d+", out)
    assert "4 gradient checks: all passed" in out
    assert json.loads(on(server, "show", job_id, "--json").stdout) == job

    exported = on(server, "metrics", job_id, "--csv")
    assert exported.exit_code == 0, exported.output
    rows = csv_rows(exported)
    assert rows[0] == ["iteration", "loss", "data_loss", "reg_loss", "grad_norm", "accuracy"]
    assert [int(r[0]) for r in rows[1:]] == list(range(300))
    assert float(rows[-1][1]) == pytest.approx(job["summary"]["final_loss"])
    ranged = csv_rows(on(server, "metrics", job_id, "--csv", "--start", "10", "--end", "19"))
    assert [int(r[0]) for r in ranged[1:]] == list(range(10, 20))

    table = on(server, "metrics", job_id)
    assert table.exit_code == 0 and "accuracy" in table.stdout
    assert "of 300 points, downsampled" in table.stdout
    points = json.loads(on(server, "metrics", job_id, "--json", "--max-points", "10").stdout)
    iterations = [p["iteration"] for p in points["points"]]
    assert len(iterations) <= 10 and iterations[0] == 0 and iterations[-1] == 299


def test_unknown_ids_say_so_and_exit_1(server):
    for args in (["show", "nope"], ["metrics", "nope", "--csv"], ["cancel", "nope"]):
        result = on(server, *args)
        assert result.exit_code == 1, args
        assert result.stderr.strip() == f"gradlab: no job nope at {server.base}."
        assert result.stdout == ""


# --- specs: YAML, stdin, overrides, invalid ---------------------------------------------------


def test_a_yaml_spec_with_a_name_override_and_an_idempotency_key(server, tmp_path):
    path = tmp_path / "line.yaml"
    path.write_text(
        "# a straight line\n"
        "model: {kind: linear_regression}\n"
        "data:\n  kind: line\n  n_samples: 50\n"
        "optimizer: {kind: gd, learning_rate: 0.1}\n"
        "l2: 1e-3  # YAML 1.1 would read this as a string\n"
        "iterations: 20\n"
    )
    args = ("submit", str(path), "--name", "from-yaml", "--idempotency-key", "yaml-once")
    first, again = on(server, *args), on(server, *args)
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    job_id = first.stdout.strip()
    assert again.stdout.strip() == job_id  # the same key, the same job
    job = httpx.get(f"{server.base}/v1/jobs/{job_id}").json()
    assert job["name"] == "from-yaml" and job["spec"]["l2"] == 0.001
    assert job["spec"]["data"]["n_samples"] == 50

    piped = on(server, "submit", "-", input=json.dumps(SOFTMAX | {"iterations": 5}))
    assert piped.exit_code == 0, piped.output
    assert (
        httpx.get(f"{server.base}/v1/jobs/{piped.stdout.strip()}").json()["spec"]["iterations"] == 5
    )


def test_an_invalid_spec_lists_each_field_and_exits_2(server, tmp_path):
    bad = SOFTMAX | {"name": "cli-invalid", "iterations": 0, "typo": 1}
    bad["optimizer"] = {"kind": "gd", "learning_rate": -1}
    result = on(server, "submit", write(tmp_path, "bad.json", bad), "--follow")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == "gradlab: the server rejected it:"
    assert "  optimizer.learning_rate: Input should be greater than 0" in lines
    assert any(line.startswith("  iterations: ") for line in lines)
    assert any(line.startswith("  typo: is not a field here") for line in lines)
    assert json.loads(on(server, "jobs", "--name", "cli-invalid", "--json").stdout)["jobs"] == []

    # Files that are not specs never reach the server.
    (tmp_path / "broken.yaml").write_text("model: {kind: [\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    for path, says in (
        (tmp_path / "missing.json", "cannot read"),
        (tmp_path / "broken.yaml", "is not valid YAML"),
        (tmp_path / "list.json", "must hold a mapping"),
    ):
        result = on(server, "submit", str(path))
        assert result.exit_code == 2 and says in result.stderr, result.output
        assert "Traceback" not in result.output


# --- cancel, sweep ----------------------------------------------------------------------------


def test_cancel_a_queued_job_prints_its_new_status(idle_server, tmp_path):
    long = write(tmp_path, "long.json", SOFTMAX | {"iterations": 1_000_000})
    job_id = on(idle_server, "submit", long).stdout.strip()
    assert json.loads(on(idle_server, "show", job_id, "--json").stdout)["status"] == "queued"
    result = on(idle_server, "cancel", job_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == "cancelled\n"
    shown = on(idle_server, "show", job_id).stdout
    assert f"job {job_id} cli-softmax: cancelled" in shown and "no gradient checks\n" in shown
    assert on(idle_server, "cancel", job_id).stdout == "cancelled\n"  # again: nothing changes


def test_cancel_of_a_finished_job_prints_the_servers_message(server, tmp_path):
    job_id = on(server, "submit", write(tmp_path, "s.json", SOFTMAX | {"iterations": 5})).stdout
    wait_status(server, job_id.strip(), "succeeded")
    result = on(server, "cancel", job_id.strip())
    assert result.exit_code == 1
    assert "already succeeded; there is nothing to cancel" in result.stderr


def test_sweep_starts_one_job_per_combination(server, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "name: cli-sweep\n"
        "base:\n"
        "  model: {kind: softmax_regression}\n"
        "  data: {kind: spiral, n_per_class: 20}\n"
        "  optimizer: {kind: gd}\n"
        "  iterations: 10\n"
        "grid:\n  optimizer.learning_rate: [0.1, 1.0]\n  l2: [0, 1e-3]\n"
    )
    result = on(server, "sweep", str(path))
    assert result.exit_code == 0, result.output
    sweep_id = result.stdout.strip()
    assert JOB_ID.match(sweep_id) and "4 jobs" in result.stderr
    listed = json.loads(on(server, "jobs", "--sweep", sweep_id, "--json").stdout)["jobs"]
    assert len(listed) == 4


# --- no server, a dropped stream ---------------------------------------------------------------


def test_an_unreachable_server_is_one_clear_sentence_and_exit_3(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    spec = write(tmp_path, "s.json", SOFTMAX)
    for result in (
        gradlab("jobs", "--url", url),
        gradlab("submit", spec, "--follow", "--url", url),
        gradlab("show", "abc", env={"GRADLAB_URL": url}),
        gradlab("metrics", "abc", "--csv", env={"GRADLAB_URL": url}),
    ):
        assert result.exit_code == 3, result.output
        assert result.stdout == ""
        message = result.stderr.strip()
        assert message.startswith(f"gradlab: cannot reach a gradlab server at {url} (")
        assert "`gradlab serve`" in message and "GRADLAB_URL" in message
        assert len(message.splitlines()) == 1 and "Traceback" not in message


def _sse(kind: str, cursor: str, data: dict) -> bytes:
    return f"event: {kind}\nid: {cursor}\ndata: {json.dumps(data)}\n\n".encode()


class _Dropping(httpx.SyncByteStream):
    """Some events, then the connection drops."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self):
        yield from self.chunks
        raise httpx.ReadError("connection reset by peer")


def test_events_resume_from_the_last_event_id_after_a_drop():
    def metrics(first: int, last: int) -> dict:
        its = list(range(first, last + 1))
        return {"first": first, "last": last, "columns": {"iteration": its, "loss": its}}

    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("last-event-id"))
        headers = {"content-type": "text/event-stream"}
        if len(seen) == 1:
            first = _sse("status", "p0-c0", {"status": "running"})
            dropped = _Dropping([first, _sse("metrics", "p5-c0", metrics(0, 4))])
            return httpx.Response(200, headers=headers, stream=dropped)
        rest = _sse("metrics", "p10-c0", metrics(5, 9)) + _sse("end", "p10-c0", {"status": "ok"})
        return httpx.Response(200, headers=headers, content=rest)

    with Client("http://gradlab.test", transport=httpx.MockTransport(handler)) as api:
        events = list(api.events("job"))
    assert seen == [None, "p5-c0"]
    iterations = [i for kind, d in events if kind == "metrics" for i in d["columns"]["iteration"]]
    assert iterations == list(range(10))  # every point once, across the drop
    assert events[-1] == ("end", {"status": "ok"})


def test_the_server_commands_do_not_import_the_clients_libraries():
    code = "import sys, gradlab.cli; print(sorted({'rich', 'httpx', 'yaml'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr
