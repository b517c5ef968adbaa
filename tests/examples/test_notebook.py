"""examples/seeds.ipynb, executed with nbclient in a real IPython kernel against a real
`gradlab serve`, and its outputs checked: the example cannot rot unnoticed."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

import migrations as migrate
from gradlab.procs import ROOT, Server

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "examples" / "seeds.ipynb"


def test_the_seeds_notebook_runs_and_finds_what_it_says(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'gradlab.db'}"
    migrate.upgrade(url)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with Server(url, workers=2, log=tmp_path / "serve.log") as server:
        monkeypatch.setenv("GRADLAB_URL", server.base)  # the kernel inherits the environment
        monkeypatch.setenv("PYTHONPATH", str(ROOT))
        NotebookClient(
            nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    line = next(line for line in text.splitlines() if line.startswith("RESULTS "))
    found = json.loads(line.removeprefix("RESULTS "))

    assert found["softmax"]["first_loss"] == pytest.approx(1.0986, abs=2e-3)  # ≈ ln 3
    assert found["softmax_shapes"] == {"W": [2, 3], "b": [3]}
    assert found["softmax_checks_passed"] is True
    assert found["two_layer"]["accuracy"] > found["softmax"]["accuracy"] + 0.2
    sweep = found["sweep"]
    assert sweep["learning_rate=1.0"] < sweep["learning_rate=0.1"] < sweep["learning_rate=0.01"]
    assert found["newton"]["newton"] < found["newton"]["gd"]

    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 4  # softmax, softmax vs net, the sweep, Newton vs GD: inline
    widgets = [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widgets  # wait()'s progress bar, as a widget
    assert "IProgress not found" not in text
    summaries = [o for o in outputs if "gradlab-job" in o.get("data", {}).get("text/html", "")]
    assert summaries  # a job's HTML summary
