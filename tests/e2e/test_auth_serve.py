"""Course-lab mode as a user runs it: a real ``gradlab serve`` with GRADLAB_AUTH=required, an
account made with ``gradlab users add``, and the client CLI reading GRADLAB_TOKEN."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradlab.procs import ROOT, Server, wait_for

pytestmark = pytest.mark.slow

SPEC = (
    '{"name": "cli-line", "model": {"kind": "linear_regression"}, '
    '"data": {"kind": "line", "n_samples": 20}, "optimizer": {"kind": "gd"}, "iterations": 20}'
)


def gradlab(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradlab", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_with_gradlab_token_against_a_real_server(db_url, tmp_path):
    with Server(db_url, workers=1, log=tmp_path / "serve.log", auth="required") as server:
        env = {**server.env, "GRADLAB_URL": server.base}
        made = gradlab("users", "add", "ann", "--role", "student", env=env)
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        other = gradlab("users", "add", "ben", env=env).stdout.strip().splitlines()[-1]

        refused = gradlab("jobs", env=env)
        assert refused.returncode == 1 and "GRADLAB_TOKEN" in refused.stderr

        as_ann = {**env, "GRADLAB_TOKEN": token}
        submitted = gradlab("submit", "-", env=as_ann, stdin=SPEC)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.strip()
        wait_for(
            lambda: "succeeded" in gradlab("show", job_id, "--json", env=as_ann).stdout,
            timeout=60,
            interval=0.5,
            what="the job to succeed",
        )
        listed = gradlab("jobs", "--json", env=as_ann)
        assert job_id in listed.stdout and '"owner": "ann"' in listed.stdout

        as_ben = {**env, "GRADLAB_TOKEN": other}
        hidden = gradlab("show", job_id, env=as_ben)
        assert hidden.returncode == 1 and "no job" in hidden.stderr
        assert job_id not in gradlab("jobs", "--json", env=as_ben).stdout

        revoked = gradlab("users", "revoke", "ann", env=env)
        assert revoked.returncode == 0
        after = wait_for(
            lambda: (r := gradlab("jobs", env=as_ann)).returncode != 0 and r,
            timeout=10,
            interval=0.2,
            what="the revoked token to be refused",
        )
        assert "unknown or revoked" in after.stderr
    log = (tmp_path / "serve.log").read_text()
    assert token not in log and other not in log
    for result in (refused, submitted, hidden, after):
        assert token not in result.stderr and other not in result.stderr
