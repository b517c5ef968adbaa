"""gradlab.Client, as a notebook uses it, against one real `gradlab serve` (SQLite, one
worker): submit by example name with deep overrides, wait, metrics as NumPy columns (Arrow
and JSON agree), parameters by the model's names, checks, figures, HTML, sweeps, errors."""

from __future__ import annotations

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gradlab
import migrations as migrate
from gradlab.cli import app as cli
from gradlab.client.http import APIError, ServerUnreachable
from gradlab.notebook import job as job_module
from gradlab.procs import Server, free_port
from tests.worker.student_code import SOFTMAX, softmax_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebook")
    url = f"sqlite:///{tmp / 'gradlab.db'}"
    migrate.upgrade(url)
    with Server(url, workers=1, log=tmp / "serve.log") as server, gradlab.connect(server.base) as c:
        yield c


@pytest.fixture(scope="module")
def softmax(client):
    """The CS231n softmax example, shortened and with a smaller step, run to the end."""
    job = client.submit("spiral_softmax", iterations=40, optimizer={"learning_rate": 0.5})
    return job.wait(progress=False, timeout=60)


def test_submit_merges_overrides_into_the_example_deeply(client, softmax):
    spec = softmax.spec
    example = client.examples()["spiral_softmax"]
    assert spec["iterations"] == 40
    assert spec["optimizer"]["learning_rate"] == 0.5
    assert spec["optimizer"]["kind"] == example["optimizer"]["kind"] == "gd"  # kept
    assert spec["data"]["n_per_class"] == example["data"]["n_per_class"]
    assert softmax.status == "succeeded" and softmax.done


def test_metrics_are_numpy_columns_and_arrow_agrees_with_json(client, softmax, monkeypatch):
    cols = softmax.metrics()
    assert cols["iteration"].dtype == np.int64
    np.testing.assert_array_equal(cols["iteration"], np.arange(40))
    assert cols["loss"].dtype == np.float64 and cols["loss"][0] == pytest.approx(
        np.log(3), abs=2e-3
    )
    assert cols["loss"][-1] < cols["loss"][0]
    json_body = client.api.metrics(softmax.id, format="columns")["columns"]
    np.testing.assert_array_equal(cols["accuracy"], json_body["accuracy"])
    monkeypatch.setattr(job_module, "has_pyarrow", lambda: False)
    by_json = softmax.metrics()
    assert by_json.keys() == cols.keys()
    for name in cols:
        np.testing.assert_array_equal(by_json[name], cols[name])
    part = softmax.metrics(start=5, end=9)
    np.testing.assert_array_equal(part["iteration"], np.arange(5, 10))


def test_to_pandas_is_indexed_by_iteration(softmax):
    frame = softmax.to_pandas()
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "iteration"
    assert list(frame.columns) == ["loss", "data_loss", "reg_loss", "grad_norm", "accuracy"]
    assert len(frame) == 40 and frame["loss"].iloc[-1] == softmax.metrics()["loss"][-1]


def test_parameters_carry_the_models_names_and_shapes(client, softmax):
    params = softmax.parameters()
    assert list(params) == ["W", "b"]
    assert params["W"].shape == (2, 3) and params["b"].shape == (3,)
    two_layer = client.submit("spiral_two_layer", iterations=5).wait(progress=False, timeout=60)
    shapes = {name: a.shape for name, a in two_layer.parameters().items()}
    assert shapes == {"W1": (2, 100), "b1": (100,), "W2": (100, 3), "b2": (3,)}


def test_checks_are_the_servers(softmax):
    checks = softmax.checks()
    assert checks and all(c["passed"] for c in checks)


def test_plot_is_a_figure_that_renders_inline(softmax):
    fig = softmax.plot()
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) == 2  # loss, and accuracy on its own axis
    assert fig._repr_png_().startswith(b"\x89PNG")
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_ydata(), softmax.metrics()["loss"])


def test_the_html_summary_escapes_what_the_user_wrote(client):
    job = client.submit("line_mse", name="<script>alert(1)</script>", iterations=3)
    html = job._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "linear_regression" in html
    listed = client.jobs(name="<script>alert(1)</script>")
    assert [j.id for j in listed] == [job.id]
    assert "&lt;script&gt;" in listed._repr_html_() and "<script>" not in listed._repr_html_()


def test_a_sweep_waits_for_its_jobs_and_compares_them(client):
    sweep = client.sweep(
        "spiral_softmax", {"optimizer.learning_rate": [0.1, 1.0]}, iterations=20, name="lr"
    )
    sweep.wait(progress=False, timeout=60)
    assert [j.status for j in sweep.jobs] == ["succeeded", "succeeded"]
    assert sweep.labels() == ["learning_rate=0.1", "learning_rate=1.0"]
    fig = sweep.compare()
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == sweep.labels()
    assert lines[1].get_ydata()[-1] < lines[0].get_ydata()[-1]  # the larger step went further
    assert "learning_rate=0.1" in sweep._repr_html_()


def test_wait_shows_a_progress_bar(client, capsys):
    client.submit("line_mse", iterations=30).wait(progress=True, timeout=60)
    err = capsys.readouterr().err
    assert "30/30" in err


def test_errors_carry_the_servers_sentence_and_field_paths(client):
    with pytest.raises(APIError) as bad:
        client.submit("spiral_softmax", optimizer={"learning_rate": -1})
    assert bad.value.status == 422
    assert "optimizer.learning_rate" in bad.value.fields
    assert "optimizer.learning_rate" in str(bad.value)  # the server's own sentence
    with pytest.raises(APIError) as missing:
        client.job("0" * 32)
    assert missing.value.status == 404 and "0" * 32 in str(missing.value)
    with pytest.raises(KeyError, match="spiral_softmax"):
        client.submit("no_such_example")


def test_connect_reads_gradlab_url_and_says_when_no_server_answers(monkeypatch):
    monkeypatch.setenv("GRADLAB_URL", f"http://127.0.0.1:{free_port()}")
    with gradlab.connect() as c, pytest.raises(ServerUnreachable, match="cannot reach"):
        c.jobs()


def test_start_run_logs_a_loop_of_ones_own_as_an_external_run(client):
    with client.start_run(name="my-loop") as run:
        for i in range(25):
            run.log(i, loss=1.0 / (i + 1))
    job = client.job(run.id)
    assert job.status == "succeeded"
    assert job.metrics()["loss"].tolist() == [1.0 / (i + 1) for i in range(25)]


@pytest.mark.parametrize(
    ("code", "exit_code", "says"),
    [
        (SOFTMAX, 0, "dW: matches the solution"),
        (softmax_with(average=""), 1, "times too large"),  # summed where the mean belongs
    ],
)
def test_gradlab_check_runs_a_file_against_a_seed_exercise(client, tmp_path, code, exit_code, says):
    path = tmp_path / "my_softmax.py"
    path.write_text(code)
    args = ["check", str(path), "--exercise", "spiral_softmax", "--url", client.url]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == exit_code, result.output
    job = client.job(result.stdout.strip().splitlines()[0])
    assert job.status in ("succeeded", "failed")
    assert says in " ".join(result.stderr.split()), result.stderr


def test_check_sends_a_function_objects_module_to_the_sandbox(client, tmp_path, monkeypatch):
    (tmp_path / "my_grads.py").write_text(softmax_with(average=""))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_grads  # type: ignore[import-not-found]

    job = client.check(my_grads.loss_and_gradients, "spiral_softmax", iterations=5)
    job.wait(progress=False, timeout=60)
    solution = next(c for c in job.checks() if c["reference"] == "solution")
    assert solution["parameters"]["W"]["diagnosis"]["code"] == "not_averaged"
