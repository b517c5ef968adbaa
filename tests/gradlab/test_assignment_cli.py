"""The assignment commands against a real `gradlab serve` (SQLite, no workers, auth off):
create from YAML, list, submit gradients and follow the grade, the gradebook as a table,
as CSV and as Gradescope results.json files."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml
from typer.testing import CliRunner

import migrations as migrate
from gradlab.cli import app
from gradlab.procs import Server

pytestmark = pytest.mark.slow  # a real server, as tests/gradlab/test_client.py

runner = CliRunner()
ASSIGNMENT = {
    "name": "line-1",
    "title": "Linear regression",
    "exercise": {
        "model": {"kind": "linear_regression"},
        "data": {"kind": "inline", "X": [[0.0], [1.0], [2.0]], "y": [1.0, 3.0, 5.0]},
        "optimizer": {"kind": "gd"},
        "iterations": 5,
        "init": {"kind": "given", "params": {"W": [[0.5]], "b": [0.0]}},
    },
    "submit": "gradients",
    "checks": [
        {"name": "dW", "points": 3, "kind": "solution", "tensor": "W"},
        {"name": "db", "points": 1, "kind": "solution", "tensor": "b", "visibility": "hidden"},
    ],
}
# X = [0, 1, 2], y = [1, 3, 5], W = 0.5, b = 0: residuals r = -1, -2.5, -4 of the mean
# squared error: dW = 2·mean(r·x) = -7, db = 2·mean(r) = -5.
RIGHT = {"W": [[-7.0]], "b": [-5.0]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("assign-cli")
    url = f"sqlite:///{tmp / 'gradlab.db'}"
    migrate.upgrade(url)
    with Server(url, workers=0, log=tmp / "serve.log") as s:
        yield s


def gradlab(server: Server, *args: str):
    return runner.invoke(app, [*args, "--url", server.base])


def test_create_submit_follow_and_export(server, tmp_path):
    spec = tmp_path / "hw.yaml"
    spec.write_text(yaml.safe_dump(ASSIGNMENT))
    made = runner.invoke(app, ["assignment", "create", str(spec), "--url", server.base])
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == "line-1"
    listed = gradlab(server, "assignments")
    assert listed.stdout.startswith("line-1\tLinear regression\tgradients")

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"W": [[-21.0]], "b": [-15.0]}))  # summed, not averaged
    r = gradlab(server, "submit-assignment", "line-1", str(wrong), "--follow")
    assert r.exit_code == 1 and "3 times too large" in r.stderr
    right = tmp_path / "right.json"
    right.write_text(json.dumps({"gradients": RIGHT}))
    r = gradlab(server, "submit-assignment", "line-1", str(right), "--follow")
    assert r.exit_code == 0, r.output
    assert "graded: 4 of 4" in r.stderr

    table = gradlab(server, "grades", "line-1")
    assert table.stdout.strip() == "local\t4/4\tgraded\t2 attempts"
    rows = list(csv.DictReader(io.StringIO(gradlab(server, "grades", "line-1", "--csv").stdout)))
    assert [(r["student"], r["score"], r["attempts"]) for r in rows] == [("local", "4.0", "2")]
    out = tmp_path / "gs"
    assert gradlab(server, "grades", "line-1", "--gradescope", str(out)).exit_code == 0
    results = json.loads((out / "local" / "results.json").read_text())
    assert results["score"] == 4.0
    assert [(t["name"], t["visibility"]) for t in results["tests"]] == [
        ("dW", "visible"),
        ("db", "hidden"),
    ]
    bad = gradlab(server, "submit-assignment", "line-1", str(spec))  # YAML is not gradients
    assert bad.exit_code == 2
