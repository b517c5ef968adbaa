"""Every transition of a job, on SQLite and PostgreSQL: each applies only in the state it is
fenced on, and a writer that lost the race changes nothing. And no module but the lifecycle
spells a status."""

from __future__ import annotations

import ast
import time
import typing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from service.jobs import schemas
from store import lifecycle
from store.db import Database
from store.lifecycle import CANCELLED, RELEASED, SUCCEEDED, LostClaim
from store.queue import Claim, Flush, Queue
from store.settings import Settings
from store.status import Outcome, Status
from store.tables import Attempt, Checkpoint, Job, new_id
from tests.conftest import make_settings

SPEC = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 10,
}


def submit(db: Database) -> str:
    with db.write_session() as session:
        job = lifecycle.queued(
            id=new_id(),
            model_kind="linear_regression",
            spec=SPEC,
            iterations=10,
            created_at=lifecycle.utcnow(),
        )
        session.add(job)
        return job.id


def stored(db: Database, job_id: str) -> dict[str, Any]:
    """The job's columns as the database holds them (no ORM, no enum)."""
    with db.engine.connect() as conn:
        return dict(conn.execute(select(Job.__table__).where(Job.id == job_id)).one()._mapping)


def outcomes(db: Database, job_id: str) -> list[tuple[int, str, str | None]]:
    with db.engine.connect() as conn:
        query = (
            select(Attempt.number, Attempt.worker_id, Attempt.outcome)
            .where(Attempt.job_id == job_id)
            .order_by(Attempt.number)
        )
        return [tuple(row) for row in conn.execute(query)]


def claim(db: Database, settings: Settings, worker: str = "w1") -> Claim | None:
    return Queue(db, settings, worker).claim()  # a new Queue looks for expired leases at once


def expire(db: Database, job_id: str) -> None:
    with db.write_session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=0.0))


# --- stored values ------------------------------------------------------------------------


def test_statuses_and_outcomes_are_stored_as_their_plain_values(db, settings):
    job_id = submit(db)
    raw = "SELECT status FROM jobs WHERE id = :id"
    with db.engine.connect() as conn:
        assert conn.execute(text(raw), {"id": job_id}).scalar_one() == "queued"
    held = claim(db, settings)
    assert held is not None
    with db.engine.connect() as conn:
        assert conn.execute(text(raw), {"id": job_id}).scalar_one() == "running"
    Queue(db, settings, "w1").flush(held, Flush(), SUCCEEDED)
    with db.engine.connect() as conn:
        status = conn.execute(text(raw), {"id": job_id}).scalar_one()
        outcome = conn.execute(text("SELECT outcome FROM attempts")).scalar_one()
    assert (type(status), status) == (str, "succeeded")
    assert (type(outcome), outcome) == (str, "succeeded")


# --- claim ----------------------------------------------------------------------------------


def test_a_claim_takes_the_oldest_queued_job_and_records_its_attempt(db, settings):
    first, second = submit(db), submit(db)
    before = time.time()
    held = claim(db, settings, "w1")
    assert held is not None and (held.job_id, held.attempt) == (first, 1)
    job = stored(db, first)
    assert (job["status"], job["worker_id"], job["attempts"]) == (Status.RUNNING, "w1", 1)
    assert job["lease_expires_at"] >= before + settings.lease_seconds
    assert job["started_at"] is not None and job["finished_at"] is None
    assert outcomes(db, first) == [(1, "w1", None)]

    again = claim(db, settings, "w2")
    assert again is not None and again.job_id == second
    assert claim(db, settings, "w3") is None


def test_only_a_queued_job_can_be_claimed(db, settings):
    cancelled, running = submit(db), submit(db)
    with db.write_session() as session:
        assert lifecycle.cancel_queued(session, cancelled)
    held = claim(db, settings)
    assert held is not None and held.job_id == running
    assert claim(db, settings) is None  # the cancelled one is not claimed
    with db.write_engine.begin() as conn:
        for job_id in (cancelled, running):
            assert lifecycle.claim_queued(conn, "bench", 60, job_id=job_id) is None
    assert stored(db, running)["attempts"] == 1


# --- the claim's writes ---------------------------------------------------------------------


def test_a_write_by_an_attempt_that_no_longer_holds_the_claim_changes_nothing(db, settings):
    job_id = submit(db)
    zombie = claim(db, settings, "zombie")
    assert zombie is not None
    expire(db, job_id)
    owner = claim(db, settings, "owner")  # takes the job over
    assert owner is not None and (owner.job_id, owner.attempt) == (job_id, 2)
    before = stored(db, job_id)

    queue = Queue(db, settings, "zombie")
    with pytest.raises(LostClaim):
        queue.heartbeat(zombie)
    late = Flush(state=b"state", iterations_done=7, final_loss=0.5, best_loss=0.5)
    for finish in (None, SUCCEEDED, CANCELLED, RELEASED, lifecycle.failed(ERROR)):
        with pytest.raises(LostClaim):
            queue.flush(zombie, late, finish)

    assert stored(db, job_id) == before
    assert outcomes(db, job_id) == [(1, "zombie", Outcome.LOST), (2, "owner", None)]
    with db.read_session() as session:
        assert session.get(Checkpoint, job_id) is None
    assert Queue(db, settings, "owner").heartbeat(owner) is False  # the owner still holds it


ERROR = {"type": "diverged", "message": "the loss is nan", "iteration": 3}


@pytest.mark.parametrize(
    "finish",
    [SUCCEEDED, CANCELLED, lifecycle.failed(ERROR)],
    ids=["succeeded", "cancelled", "failed"],
)
def test_a_finish_ends_the_job_and_the_attempt(db, settings, finish):
    job_id = submit(db)
    held = claim(db, settings)
    assert held is not None
    Queue(db, settings, "w1").flush(held, Flush(), finish)
    job = stored(db, job_id)
    assert job["status"] == finish.status and job["status"] in lifecycle.TERMINAL
    assert job["worker_id"] is None and job["lease_expires_at"] is None
    assert job["finished_at"] is not None
    error = (job["error_type"], job["error_message"], job["error_iteration"])
    expected = (None, None, None) if finish.error is None else tuple(ERROR.values())
    assert error == expected
    assert outcomes(db, job_id) == [(1, "w1", finish.outcome)]
    assert claim(db, settings) is None


def test_a_handed_back_job_is_queued_again_with_its_worker_cleared(db, settings):
    job_id = submit(db)
    held = claim(db, settings, "stopping")
    assert held is not None
    Queue(db, settings, "stopping").flush(held, Flush(), RELEASED)
    job = stored(db, job_id)
    assert job["status"] == Status.QUEUED
    assert (job["worker_id"], job["lease_expires_at"], job["finished_at"]) == (None, None, None)
    assert outcomes(db, job_id) == [(1, "stopping", Outcome.RELEASED)]

    again = claim(db, settings, "next")
    assert again is not None and (again.job_id, again.attempt) == (job_id, 2)
    assert stored(db, job_id)["worker_id"] == "next"


# --- a lost worker's job ------------------------------------------------------------------


def test_a_lost_job_asked_to_cancel_is_cancelled_not_claimed(db, settings):
    job_id = submit(db)
    held = claim(db, settings, "lost")
    assert held is not None
    with db.write_session() as session:
        assert lifecycle.request_cancel(session, job_id)
    expire(db, job_id)
    assert claim(db, settings, "next") is None
    job = stored(db, job_id)
    assert (job["status"], job["worker_id"], job["attempts"]) == (Status.CANCELLED, None, 1)
    assert job["finished_at"] is not None and job["error_type"] is None
    assert outcomes(db, job_id) == [(1, "lost", Outcome.LOST)]


def test_a_job_that_lost_max_attempts_workers_fails_with_worker_lost(db_url):
    settings = make_settings(db_url, max_attempts=2)
    db = Database(db_url, settings)
    try:
        job_id = submit(db)
        for worker in ("first", "second"):
            assert claim(db, settings, worker) is not None
            expire(db, job_id)
        assert claim(db, settings, "third") is None
        job = stored(db, job_id)
        assert (job["status"], job["error_type"]) == (Status.FAILED, "worker_lost")
        assert "GRADLAB_MAX_ATTEMPTS is 2" in job["error_message"]
        assert job["worker_id"] is None and job["finished_at"] is not None
        lost = Outcome.LOST
        assert outcomes(db, job_id) == [(1, "first", lost), (2, "second", lost)]
    finally:
        db.dispose()


# --- the API's transitions ------------------------------------------------------------------


def test_cancel_applies_to_a_queued_job_only(db, settings):
    running, queued = submit(db), submit(db)
    assert claim(db, settings) is not None  # the older one
    with db.write_session() as session:
        assert not lifecycle.cancel_queued(session, running)
        assert lifecycle.cancel_queued(session, queued)
    job = stored(db, running)
    assert (job["status"], job["cancel_requested"]) == (Status.RUNNING, False)
    job = stored(db, queued)
    assert (job["status"], job["cancel_requested"]) == (Status.CANCELLED, True)
    assert job["finished_at"] is not None


def test_request_cancel_applies_to_a_running_job_only(db, settings):
    running, queued = submit(db), submit(db)
    held = claim(db, settings)
    assert held is not None and held.job_id == running
    with db.write_session() as session:
        assert not lifecycle.request_cancel(session, queued)
        assert lifecycle.request_cancel(session, running)
    assert stored(db, queued)["cancel_requested"] is False
    job = stored(db, running)
    assert (job["status"], job["cancel_requested"]) == (Status.RUNNING, True)
    assert Queue(db, settings, "w1").heartbeat(held) is True  # the worker learns of it


def test_only_a_terminal_job_can_be_deleted(db, settings):
    running, queued = submit(db), submit(db)
    assert claim(db, settings) is not None  # the older one
    with db.write_session() as session:
        assert lifecycle.delete_terminal(session, running) is False
        assert lifecycle.delete_terminal(session, queued) is False
        assert lifecycle.cancel_queued(session, queued)
    with db.write_session() as session:
        assert lifecycle.delete_terminal(session, queued) is True
    assert stored(db, running)["status"] == Status.RUNNING
    with db.read_session() as session:
        assert session.get(Job, queued) is None
    assert outcomes(db, running) == [(1, "w1", None)]


def test_through_the_api_cancelling_a_running_job_only_asks_and_deleting_it_is_refused(
    client, db, settings
):
    r = client.post("/v1/jobs", json=SPEC)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    held = claim(db, settings)
    assert held is not None and held.job_id == job_id
    r = client.post(f"/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["cancel_requested"]) == ("running", True)
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 409
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"

    assert Queue(db, settings, "w1").flush(held, Flush(), CANCELLED) is True  # as the worker does
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200  # still idempotent
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204


# --- one home for the statuses --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("engine", "store", "service", "worker", "gradlab", "bench")
EXEMPT = {
    "store/status.py": "their home",
    # The client speaks the API's JSON over HTTP: its statuses are the server's answers.
    "gradlab/client/": "the HTTP client",
}


def bare_statuses(path: Path) -> list[tuple[int, str]]:
    """Each string literal in the module that spells a status, but for docstrings."""
    values = {status.value for status in Status}
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in values and id(node) not in docstrings
    )


def test_no_module_outside_the_lifecycle_spells_a_status():
    found = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if any(part.startswith(".") for part in path.relative_to(ROOT).parts):
                continue  # bench/.work, a peer's virtualenv
            if any(name.startswith(prefix) for prefix in EXEMPT):
                continue
            found += [f"{name}:{line}: {value!r}" for line, value in bare_statuses(path)]
    assert not found, "use store.lifecycle.Status (or TERMINAL) instead:\n" + "\n".join(found)


def test_the_scan_finds_a_bare_status(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""queued"""\n\nif job.status == "running":\n    x = {"failed": 1}\n')
    assert bare_statuses(module) == [(3, "running"), (4, "failed")]


def test_the_api_lists_the_lifecycles_statuses():
    assert typing.get_args(schemas.Status) == tuple(status.value for status in Status)
