"""The outside fuzzer, as its users run it: the ``schemathesis run`` command line, every phase
(examples, coverage, fuzzing, stateful), against a real ``gradlab serve`` with a worker. No
server errors, and every status, content type and body as the OpenAPI document says.

Seeded and bounded (a few examples per operation; small limits on the server, so that the
jobs it submits train quickly), so that it stays well inside a minute on a quiet machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradlab.procs import Server

pytestmark = pytest.mark.slow

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
)
# Methods a route does not take are not what these checks are about (`unsupported_method`
# is not among them): the coverage phase skips them.
CONFIG = """\
[phases.coverage]
unexpected-methods = []
"""


def schemathesis() -> list[str]:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return [str(found)]
    which = shutil.which("schemathesis")
    if which is None:
        pytest.fail("the schemathesis command is not installed (it is in gradlab[test])")
    return [which]


def test_schemathesis_run_finds_nothing_against_a_real_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradlab.db'}"
    limits = {"max_iterations": 200, "max_inline_rows": 100, "max_sweep_jobs": 4}
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    with Server(url, workers=1, log=tmp_path / "serve.log", **limits) as server:
        run = subprocess.run(
            [
                *schemathesis(),
                "--config-file",
                str(config),
                "--no-color",
                "run",
                f"{server.base}/openapi.json",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--checks",
                ",".join(CHECKS),
                "--max-examples",
                "3",
                "--seed",
                "1",
                "--workers",
                "2",
                "--request-timeout",
                "60",
                "--generation-database",
                "none",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            cwd=tmp_path,  # its caches go there, not into the checkout
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in run.stdout, run.stdout[-3000:]
