"""Student jobs through the API and a real in-process worker: the job trains with the
student's sandboxed code, records the reference loss per point and three checks; wrong
gradients get the diagnosis their slip deserves; code that fails ends the job with the
right ``error.type`` and the next job succeeds; and student code fails closed."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.errors import SandboxUnavailable
from service.jobs import service as jobs_service
from store.accounts import Caller, Role
from store.db import Database
from store.sandboxing import bwrap_works
from store.spec import JobSpec
from tests.conftest import make_settings, run_worker
from tests.worker.student_code import SOFTMAX, TWO_LAYER, softmax_with, with_body

pytestmark = pytest.mark.skipif(bwrap_works() is not None, reason=f"no bwrap: {bwrap_works()}")

SPIRAL = {"kind": "spiral", "n_per_class": 100, "n_classes": 3}


def student_spec(code: str, **overrides: Any) -> dict[str, Any]:
    spec = {
        "model": {"kind": "softmax_regression"},
        "data": SPIRAL,
        "optimizer": {"kind": "gd", "learning_rate": 1.0},
        "l2": 1e-3,
        "iterations": 20,
        "student": {"code": code},
    }
    return {**spec, **overrides}


@pytest.fixture
def db_url(sqlite_url: str) -> str:  # the store's paths are tested on both elsewhere
    return sqlite_url


@pytest.fixture
def settings(db_url: str):
    return make_settings(db_url, sandbox_call_seconds=2.0)


@pytest.fixture
def client(settings) -> Any:
    with TestClient(create_app(settings), base_url="http://localhost") as c:
        yield c


def submit_all(client: TestClient, specs: list[dict[str, Any]]) -> list[str]:
    ids = []
    for spec in specs:
        r = client.post("/v1/jobs", json=spec)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def checks_of(client: TestClient, job_id: str) -> dict[tuple[int, str], dict[str, Any]]:
    checks = client.get(f"/v1/jobs/{job_id}/gradient-checks").json()["checks"]
    return {(c["iteration"], c["reference"]): c for c in checks}


def test_correct_student_code_trains_like_the_reference_and_passes(client, settings):
    ids = submit_all(
        client,
        [
            student_spec(SOFTMAX),
            student_spec(TWO_LAYER, model={"kind": "mlp", "hidden_sizes": [20]}, iterations=10),
            {**student_spec(SOFTMAX), "student": None},  # the reference run
        ],
    )
    run_worker(settings)
    jobs = [client.get(f"/v1/jobs/{i}").json() for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3, [j["error"] for j in jobs]
    for job_id, iterations in zip(ids[:2], (20, 10), strict=True):
        checks = checks_of(client, job_id)
        assert set(checks) == {
            (i, ref) for i in (0, iterations - 1) for ref in ("numeric", "solution", "taylor")
        }
        if job_id == ids[1]:  # ReLU kinks may leave the Taylor test without a verdict
            for i in (0, iterations - 1):
                taylor = checks.pop((i, "taylor"))
                assert taylor["passed"] is True or "kinks" in taylor["reason"]
        assert all(c["passed"] for c in checks.values()), [
            (k, c["max_relative_error"], c.get("slope"), c.get("residuals"), c.get("used"))
            for k, c in checks.items()
            if not c["passed"]
        ]
        solution = checks[(0, "solution")]
        assert {t["diagnosis"]["code"] for t in solution["parameters"].values()} == {"correct"}
        assert solution["loss"]["passed"] is True
        points = client.get(f"/v1/jobs/{job_id}/metrics").json()["points"]
        assert len(points) == iterations
        for p in points:
            assert p["reference_loss"] == pytest.approx(p["loss"], rel=1e-12)
    # the student's softmax follows the built-in run step for step
    mine = client.get(f"/v1/jobs/{ids[0]}/metrics?format=columns").json()["columns"]
    reference = client.get(f"/v1/jobs/{ids[2]}/metrics?format=columns").json()["columns"]
    np.testing.assert_allclose(mine["loss"], reference["loss"], rtol=1e-12)
    assert "reference_loss" not in reference and len(mine["reference_loss"]) == 20
    csv = client.get(f"/v1/jobs/{ids[0]}/metrics?format=csv").text.splitlines()
    assert csv[0].endswith(",reference_loss") and len(csv) == 21


SLIPS = {
    "not_averaged": {"average": ""},
    "missing_l2": {"l2": ""},
    "l2_scaled": {"l2": "dW += 2 * l2 * W"},
    "sign_flipped": {"dw": "dW = -np.dot(X.T, dscores)", "l2": "dW -= l2 * W"},
}


def test_wrong_gradients_fail_the_solution_check_with_the_slip_named(client, settings):
    ids = submit_all(
        client, [student_spec(softmax_with(**slip), iterations=1) for slip in SLIPS.values()]
    )
    run_worker(settings)
    for code, job_id in zip(SLIPS, ids, strict=True):
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "succeeded", job["error"]
        assert job["gradient_checks_passed"] is False
        checks = checks_of(client, job_id)
        solution = checks[(0, "solution")]
        assert solution["passed"] is False
        assert solution["parameters"]["W"]["diagnosis"]["code"] == code, solution
        assert checks[(0, "numeric")]["passed"] is False  # their loss disagrees with dW
        if code in ("not_averaged", "sign_flipped"):  # a slip of the l2 term is below h²
            assert checks[(0, "taylor")]["passed"] is False


FAILING = {
    "student_error": (with_body("raise KeyError('W3')"), "KeyError: 'W3'"),
    "bad_return": (
        softmax_with(dw="dW = np.dot(X.T, dscores).T", l2="dW += l2 * W.T"),
        "dW has shape (3, 2) but W has shape (2, 3): transposed?",
    ),
    "time_limit": (with_body("while True:\n    pass"), "GRADLAB_SANDBOX_CALL_SECONDS"),
    "memory_limit": (with_body("big = np.ones(2**30)"), "ran out of memory"),
}


def test_failing_code_fails_its_job_and_the_next_job_succeeds(client, settings):
    specs = [student_spec(code, iterations=3) for code, _ in FAILING.values()]
    ids = submit_all(client, [*specs, student_spec(SOFTMAX, iterations=3)])
    outcomes = run_worker(settings)
    references = {client.get(f"/v1/jobs/{i}").json()["reference"]["job_id"] for i in ids}
    assert len(references) == 1  # one recipe: one shared reference run, trained once
    assert sum(outcomes.values()) == len(ids) + 1
    for kind, job_id in zip(FAILING, ids[:-1], strict=True):
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "failed"
        assert job["error"]["type"] == kind
        assert FAILING[kind][1] in job["error"]["message"]
        assert not any(c["passed"] for c in checks_of(client, job_id).values())
    assert client.get(f"/v1/jobs/{ids[-1]}").json()["status"] == "succeeded"


def test_student_code_is_checked_at_submission_and_never_run_there(client, settings):
    r = client.post("/v1/jobs", json=student_spec("def loss_and_gradients(:\n"))
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-2:] == ["student", "code"]
    assert "not valid Python at line 1" in r.json()["detail"][0]["msg"]
    big = "# " + "x" * settings.max_student_code_bytes
    r = client.post("/v1/jobs", json=student_spec(big))
    assert r.status_code == 422 and "GRADLAB_MAX_STUDENT_CODE_BYTES" in r.text
    r = client.post("/v1/jobs", json=student_spec(SOFTMAX, optimizer={"kind": "sgd"}))
    assert r.status_code == 422 and "full-batch" in r.text
    # top-level code that would hang is compiled, not run: the answer comes at once
    r = client.post("/v1/jobs", json=student_spec("while True:\n    pass\n"))
    assert r.status_code == 201
    assert client.get("/v1/jobs").json()["jobs"][0]["status"] == "queued"
    catalog = client.get("/v1/catalog").json()["models"]["softmax_regression"]
    assert catalog["function"]["signature"] == (
        "loss_and_gradients(params, X, y, l2) -> (loss, grads)"
    )


def test_without_a_sandbox_auth_required_refuses_student_code(db_url):
    """Fail closed: GRADLAB_SANDBOX=subprocess is no sandbox for a course lab — the API
    refuses the submission (503 sandbox_unavailable) and a worker never runs one."""
    closed = make_settings(db_url, auth="required", sandbox="subprocess")
    spec = JobSpec.model_validate(student_spec(SOFTMAX, iterations=2))
    db = Database(db_url, closed)
    try:
        with pytest.raises(SandboxUnavailable) as refused, db.write_session() as session:
            jobs_service.submit(session, spec, closed, Caller("alice", Role.STUDENT))
        assert refused.value.status == 503
        assert "GRADLAB_AUTH=required" in refused.value.message
        # a job queued where it was allowed, claimed by a worker where it is not
        open_ = make_settings(db_url, sandbox="subprocess")
        with db.write_session() as session:
            job = jobs_service.submit(session, spec, open_, Caller("local", Role.ADMIN))[0]
            job_id = job.id
    finally:
        db.dispose()
    run_worker(closed)
    with TestClient(create_app(make_settings(db_url)), base_url="http://localhost") as c:
        job = c.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and job["error"]["type"] == "sandbox_unavailable"


def test_a_worker_starts_its_first_student_jobs_sandbox_as_it_starts(db_url):
    """``gradlab worker`` warms its job process: a sandbox (bwrap, NumPy imported) waits for
    the first student job before any job arrives, so that job does not wait for it."""
    from gradlab.procs import children, start_worker, stop_all, wait_for

    worker = start_worker(db_url)
    try:

        def waiting_sandbox() -> bool:
            for child in children(worker.pid):
                if any(os.path.basename(argv[0]) == "bwrap" for argv in children(child).values()):
                    return True
            return False

        wait_for(waiting_sandbox, timeout=60, interval=0.1, what="a spare sandbox")
    finally:
        stop_all([worker])
