"""Grading code submissions from their jobs fails closed: a grader that crashed, lost its
worker, was cancelled or left a record out is not_gradable with 0 points and the reason; a
student's own failure is graded, the checks it prevented scoring 0 with its message. Then
the same through the store: a job's stored checks settle a linked submission."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from store.assignments import AssignmentSpec, CheckSpec
from store.db import Database
from store.grading import GradeStatus, JobEvidence, as_student_sees, grade_job
from store.submissions import settle_job
from store.tables import Assignment, GradientCheck, Job, Submission
from tests.conftest import make_settings, synthetic_job

CHECKS = [
    CheckSpec(name="start", points=3, kind="solution"),
    CheckSpec(name="self", points=1, kind="numeric", tensor="W"),
    CheckSpec(name="end", points=2, kind="solution", iteration=9, visibility="hidden"),
    CheckSpec(name="taylor", points=1, kind="taylor"),
    CheckSpec(name="final", points=3, kind="final_loss", tolerance=1e-3),
]
DIAG = {"code": "correct", "message": "dW matches."}


def tensor(err: float, code: str = "correct") -> dict:
    return {
        "max_relative_error": err,
        "passed": code == "correct",
        "diagnosis": {"code": code, "message": f"d? {code}."},
    }


def solution(iteration: int, w: str = "correct") -> dict:
    return {
        "iteration": iteration,
        "reference": "solution",
        "passed": w == "correct",
        "rtol": 1e-6,
        "parameters": {"W": tensor(1e-9, w), "b": tensor(1e-9)},
    }


def numeric(iteration: int, err: float = 1e-9) -> dict:
    return {
        "iteration": iteration,
        "reference": "numeric",
        "passed": err <= 1e-6,
        "rtol": 1e-6,
        "parameters": {"W": {"max_relative_error": err}, "b": {"max_relative_error": 1e-9}},
    }


def taylor(iteration: int, slope: float = 2.0) -> dict:
    return {
        "iteration": iteration,
        "reference": "taylor",
        "available": True,
        "passed": slope >= 1.8,
        "slope": slope,
        "min_slope": 1.8,
    }


def ran(checks, final_loss: float, reference_final_loss: float) -> JobEvidence:
    """A succeeded job's evidence, its reference run succeeded too."""
    return JobEvidence(
        "succeeded",
        checks=checks,
        final_loss=final_loss,
        reference_status="succeeded",
        reference_final_loss=reference_final_loss,
    )


FULL = [solution(0), numeric(0), taylor(0), solution(9), numeric(9), taylor(9)]


def test_a_succeeded_job_with_every_record_is_graded_on_each():
    grade = grade_job(
        CHECKS,
        ran(FULL, 0.5, 0.5002),
    )
    assert grade.status is GradeStatus.GRADED and grade.score == grade.max_score == 10
    wrong = [solution(0, "not_averaged"), numeric(0, 0.3), taylor(0, 1.0), *FULL[3:]]
    grade = grade_job(
        CHECKS,
        JobEvidence(
            "succeeded",
            checks=wrong,
            final_loss=0.6,
            reference_status="succeeded",
            reference_final_loss=0.5,
        ),
    )
    assert [r["passed"] for r in grade.results] == [False, False, True, False, False]
    assert grade.score == 2 and "not_averaged" in grade.results[0]["message"]
    assert grade.diagnoses == {"W": "not_averaged", "b": "correct"}


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        ("failed", "internal_error"),
        ("failed", "worker_lost"),
        ("cancelled", None),
        ("failed", "something_new"),
        ("failed", None),
    ],
)
def test_a_grader_failure_is_not_gradable_with_zero_points(status, error_type):
    evidence = JobEvidence(
        status,
        error_type=error_type,
        error_message="boom",
        checks=FULL,
        final_loss=0.5,
        reference_status="succeeded",
        reference_final_loss=0.5,
    )
    grade = grade_job(CHECKS, evidence)
    assert grade.status is GradeStatus.NOT_GRADABLE and grade.score == 0
    assert grade.reason and all(not r["passed"] and r["points"] == 0 for r in grade.results)
    assert all("Not graded" in r["message"] for r in grade.results)


def test_missing_or_unavailable_evidence_is_never_a_pass():
    for checks, why in [
        (FULL[:3], "no solution check at iteration 9"),
        (
            [
                {**taylor(0), "available": False, "passed": None, "reason": "x"},
                *FULL[:2],
                *FULL[3:],
            ],
            "could not run",
        ),
    ]:
        grade = grade_job(
            CHECKS,
            JobEvidence(
                "succeeded",
                checks=checks,
                final_loss=0.5,
                reference_status="succeeded",
                reference_final_loss=0.5,
            ),
        )
        assert grade.status is GradeStatus.NOT_GRADABLE and grade.score == 0
        assert why in grade.reason
    no_reference = grade_job(CHECKS, JobEvidence("succeeded", checks=FULL, final_loss=0.5))
    assert no_reference.status is GradeStatus.NOT_GRADABLE and no_reference.score == 0
    for status in ("failed", "cancelled"):  # a reference run that did not finish is no pass
        ended = JobEvidence("succeeded", checks=FULL, final_loss=0.5, reference_status=status)
        grade = grade_job(CHECKS, ended)
        assert grade.status is GradeStatus.NOT_GRADABLE and f"ended {status}" in grade.reason


@pytest.mark.parametrize("reference_status", ["queued", "running"])
def test_a_final_loss_check_waits_for_the_reference_run(reference_status):
    waiting = JobEvidence(
        "succeeded", checks=FULL, final_loss=0.5, reference_status=reference_status
    )
    assert grade_job(CHECKS, waiting).status is GradeStatus.PENDING
    without = [c for c in CHECKS if c.kind != "final_loss"]  # nothing to wait for
    assert grade_job(without, waiting).status is GradeStatus.GRADED


@pytest.mark.parametrize(
    "error_type", ["time_limit", "student_error", "memory_limit", "bad_return"]
)
def test_a_students_own_failure_is_graded_and_prevents_what_it_prevents(error_type):
    evidence = JobEvidence(
        "failed",
        error_type=error_type,
        error_message="killed at 30 s",
        checks=FULL[:3],
        final_loss=None,
        reference_status="succeeded",
        reference_final_loss=0.5,
    )
    grade = grade_job(CHECKS, evidence)
    assert grade.status is GradeStatus.GRADED
    assert [r["points"] for r in grade.results] == [3, 1, 0, 1, 0]  # a timeout is never a pass
    prevented = [r["message"] for r in grade.results if not r["passed"]]
    assert prevented == [f"Prevented by {error_type}: killed at 30 s"] * 2
    nothing = grade_job(CHECKS, JobEvidence("failed", error_type=error_type, error_message="x"))
    assert nothing.status is GradeStatus.GRADED and nothing.score == 0


def test_a_running_job_is_pending_and_a_student_sees_a_hidden_check_withheld():
    assert grade_job(CHECKS, JobEvidence("running")).status is GradeStatus.PENDING
    grade = grade_job(
        CHECKS,
        ran(FULL, 0.5, 0.5),
    )
    seen = as_student_sees(grade.results, past_due=True)
    assert seen["checks"][2] == {
        "name": "end",
        "visibility": "hidden",
        "max_points": 2.0,
        "withheld": True,
    }
    assert seen["score"] == 8 and seen["withheld_points"] == 2


def test_a_jobs_stored_checks_settle_its_submission(sqlite_url):
    """Through the store: a synthetic job's stored checks, a linked submission, settled; a
    job that lost its worker leaves it not_gradable, and once relinked to a job that
    finished, a settle grades it."""
    spec = AssignmentSpec.model_validate(
        {
            "name": "code-1",
            "title": "t",
            "submit": "code",
            "exercise": {
                "model": {"kind": "logistic_regression"},
                "data": {"kind": "blobs", "n_samples": 20},
                "optimizer": {"kind": "gd"},
                "iterations": 10,
            },
            "checks": [c.model_dump() for c in CHECKS[:4]],
        }
    )
    good = synthetic_job(sqlite_url, [1.0] * 10, owner="local")
    lost = synthetic_job(sqlite_url, [1.0] * 10, owner="local")
    db = Database(sqlite_url, make_settings(sqlite_url))
    now = datetime.now(UTC)
    try:
        with db.write_session() as session:
            session.add(
                Assignment(
                    name="code-1", owner="local", spec=spec.stored(), created_at=now, updated_at=now
                )
            )
            for record in FULL:
                session.add(
                    GradientCheck(
                        job_id=good,
                        iteration=record["iteration"],
                        reference=record["reference"],
                        passed=record["passed"],
                        result=record,
                    )
                )
            session.execute(
                update(Job)
                .where(Job.id == lost)
                .values(status="failed", error_type="worker_lost", error_message="lost 3 times")
            )
            for job_id in (good, lost):
                session.add(
                    Submission(
                        id=job_id,
                        assignment="code-1",
                        owner="local",
                        submitted_at=now,
                        kind="code",
                        answer={"code": "..."},
                        job_id=job_id,
                        status="pending",
                        max_score=7.0,
                    )
                )
        with db.write_session() as session:
            assert settle_job(session, good) == 1 and settle_job(session, lost) == 1
            assert settle_job(session, good) == 0  # settled once
        with db.read_session() as session:
            graded, failed = session.get_one(Submission, good), session.get_one(Submission, lost)
            assert (graded.status, graded.score) == ("graded", 7.0)
            assert (failed.status, failed.score) == ("not_gradable", 0.0)
            assert "worker_lost" in failed.reason
        with db.write_session() as session:  # a regrade gives it a job that finishes
            row = session.get_one(Submission, lost)
            row.job_id, row.status = good, "pending"
        with db.write_session() as session:
            assert settle_job(session, good) == 1
        with db.read_session() as session:
            assert session.get_one(Submission, lost).score == 7.0
    finally:
        db.dispose()
