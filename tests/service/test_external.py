"""External runs (a notebook's own loop logging its points) and shared reference runs: each
iteration stored exactly once under retries and concurrent senders, 409 on a changed point,
the link to the recipe's reference run and the first iteration where the two part, one
reference run per distinct recipe (also under concurrent submissions)."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from service.errors import NotFound
from service.jobs import external, schemas
from service.jobs import service as jobs_service
from store import accounts
from store.accounts import Caller, Role
from store.db import Database
from store.spec import JobSpec
from store.tables import LOCAL_USER, Job, MetricChunk, ReferenceRun
from tests.conftest import make_settings

RECIPE = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 12,
}
ALICE = Caller("alice", Role.STUDENT)


def losses(n: int) -> list[float]:
    return [1.0 / (i + 1) + 0.25 for i in range(n)]


def points(first: int, values: list[float]) -> dict[str, Any]:
    return {
        "points": [
            {"iteration": first + i, "loss": v, "accuracy": 0.5} for i, v in enumerate(values)
        ]
    }


def new_run(client: TestClient, **spec: Any) -> dict[str, Any]:
    r = client.post("/v1/jobs", json={"runner": "external", **spec})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "running" and job["runner"] == "external" and job["attempts"] == 0
    return job


def stored_losses(client: TestClient, job_id: str) -> list[float]:
    r = client.get(f"/v1/jobs/{job_id}/metrics", params={"format": "columns"})
    assert r.status_code == 200, r.text
    return r.json()["columns"]["loss"]


def test_appends_are_exactly_once_under_retries(client):
    job = new_run(client, name="my loop")
    assert job["data"] is None and job["reference"] is None
    url = f"/v1/jobs/{job['id']}/metrics"
    series = losses(150)
    first = client.post(url, json=points(0, series[:100]))
    assert first.status_code == 200, first.text
    assert first.json() | {"job_id": 0} == {
        "job_id": 0,
        "first_iteration": 0,
        "stored": 100,
        "unchanged": 0,
        "iterations_done": 100,
    }
    retry = client.post(url, json=points(0, series[:100]))  # a retry: a no-op
    assert (retry.json()["stored"], retry.json()["unchanged"]) == (0, 100)
    overlap = client.post(url, json=points(50, series[50:]))  # half stored, half new
    assert (overlap.json()["stored"], overlap.json()["unchanged"]) == (50, 50)

    assert stored_losses(client, job["id"]) == series
    shown = client.get(f"/v1/jobs/{job['id']}").json()
    assert shown["iterations_done"] == 150
    assert shown["summary"] == {
        "final_loss": series[-1],
        "final_accuracy": 0.5,
        "best_loss": series[-1],
        "best_iteration": 149,
    }
    # The read paths serve them as a worker's: rows, columns, CSV.
    csv = client.get(f"/v1/jobs/{job['id']}/metrics", params={"format": "csv"})
    assert csv.text.count("\n") == 151

    done = client.post(f"/v1/jobs/{job['id']}/finish", json={"status": "succeeded"})
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    assert done.json()["finished_at"] is not None


def test_conflicts_gaps_and_bad_points_store_nothing(db_url):
    settings = make_settings(db_url, max_points_per_batch=50)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        job = new_run(client)
        url = f"/v1/jobs/{job['id']}/metrics"
        series = losses(40)
        assert client.post(url, json=points(0, series[:20])).status_code == 200

        changed = series[10:30]
        changed[5] += 1e-9  # iteration 15, stored already, now different
        r = client.post(url, json=points(10, changed))
        assert r.status_code == 409
        assert r.json()["type"] == "point_conflict" and r.json()["iteration"] == 15
        assert "Iteration 15" in r.json()["message"] and "loss" in r.json()["message"]
        gap = client.post(url, json=points(25, series[25:]))
        assert gap.status_code == 409 and gap.json() | {"message": "", "detail": ""} == {
            "type": "points_gap",
            "iteration": 20,
            "message": "",
            "detail": "",
        }
        bad_accuracy = points(20, series[20:23])
        bad_accuracy["points"][1]["accuracy"] = 1.5
        skipped = points(20, series[20:23])
        skipped["points"][2]["iteration"] = 30
        not_a_number = points(20, series[20:22])
        not_a_number["points"][1]["loss"] = "NaN"
        for body, field in (
            (bad_accuracy, "points[1].accuracy"),
            (skipped, "points[2].iteration"),
            (not_a_number, "points[1].loss"),
            (points(20, losses(51)), "points"),
            ({"points": []}, "points"),
            ({"points": [{"iteration": 20}]}, "points[0].loss"),
        ):
            r = client.post(url, json=body)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["field"] == field
        assert stored_losses(client, job["id"]) == series[:20]  # nothing else was stored

        worker_job = client.post("/v1/jobs", json=RECIPE).json()["id"]
        r = client.post(f"/v1/jobs/{worker_job}/metrics", json=points(0, series[:2]))
        assert r.status_code == 409 and "external" in r.json()["message"]
        assert (
            client.post(f"/v1/jobs/{worker_job}/finish", json={"status": "failed"}).status_code
            == 409
        )
        missing = client.post("/v1/jobs/0123/metrics", json=points(0, series[:2]))
        assert missing.status_code == 404

        assert (
            client.post(f"/v1/jobs/{job['id']}/finish", json={"status": "done"}).status_code == 422
        )
        ended = client.post(f"/v1/jobs/{job['id']}/finish", json={"status": "failed"})
        assert ended.json()["status"] == "failed"
        late = client.post(url, json=points(20, series[20:]))
        assert late.status_code == 409 and "failed" in late.json()["message"]
        again = client.post(f"/v1/jobs/{job['id']}/finish", json={"status": "succeeded"})
        assert again.status_code == 409

        cancelled = new_run(client)  # cancel ends an external run at once: no worker to ask
        r = client.post(f"/v1/jobs/{cancelled['id']}/cancel")
        assert r.json()["status"] == "cancelled"


def test_concurrent_senders_store_each_iteration_once(db_url):
    """Four senders post the same series in overlapping windows at once, each window twice
    (a retry): every iteration is stored once, in one chunk per batch that added points."""
    settings = make_settings(db_url)
    db = Database(db_url, settings)
    try:
        with db.write_session() as session:
            accounts.create_user(session, ALICE.name, Role.STUDENT)
            spec = JobSpec.model_validate({**RECIPE, "runner": "external"})
            job_id = jobs_service.submit(session, spec, settings, ALICE)[0].id
        series = losses(600)
        windows = [(lo, series[lo : lo + 100]) for lo in range(0, 600, 60)]
        start = threading.Barrier(4)

        def send(_: int) -> int:
            start.wait()
            stored = 0
            for lo, values in windows:
                for _retry in range(2):
                    batch = schemas.PointsIn.model_validate(points(lo, values))
                    with db.write_session() as session:
                        stored += external.append(session, job_id, batch, ALICE, settings)["stored"]
            return stored

        with ThreadPoolExecutor(4) as pool:
            stored = sum(pool.map(send, range(4)))
        assert stored == 600
        with db.read_session() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.iterations_done == 600
            rows = session.execute(
                select(MetricChunk.first_iteration, MetricChunk.count)
                .where(MetricChunk.job_id == job_id)
                .order_by(MetricChunk.first_iteration)
            ).all()
        # Contiguous chunks covering 0..599 exactly once.
        assert rows[0][0] == 0 and sum(c for _, c in rows) == 600
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(rows))
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the race is the next test's
def test_a_run_is_linked_to_its_recipes_reference_and_told_where_they_part(client, drain):
    exact = new_run(client, **RECIPE, name="exact")
    ref_id = exact["reference"]["job_id"]
    assert exact["reference"]["href"] == f"/v1/jobs/{exact['id']}/reference"
    waiting = client.get(exact["reference"]["href"]).json()
    assert waiting["status"] == "queued" and waiting["first_divergence"] is None
    reference = client.get(f"/v1/jobs/{ref_id}").json()
    assert reference["owner"] == LOCAL_USER and reference["runner"] == "worker"
    assert reference["reference"] is None
    assert drain()["succeeded"] == 1  # the reference run: a plain worker job
    theirs = stored_losses(client, ref_id)
    assert len(theirs) == RECIPE["iterations"]

    client.post(f"/v1/jobs/{exact['id']}/metrics", json=points(0, theirs))
    view = client.get(f"/v1/jobs/{exact['id']}/reference").json()
    assert view["status"] == "succeeded" and view["compared"] == 12
    assert view["first_divergence"] is None

    perturbed = new_run(client, **RECIPE, name="perturbed", tags={"try": "2"})
    assert perturbed["reference"]["job_id"] == ref_id  # the same recipe: the same run
    mine = list(theirs)
    mine[3] *= 1 + 1e-9  # below 1e-6 relative: not a divergence
    mine[7] *= 1 + 1e-4
    mine[9] *= 2
    client.post(f"/v1/jobs/{perturbed['id']}/metrics", json=points(0, mine))
    view = client.get(f"/v1/jobs/{perturbed['id']}/reference").json()
    assert view["first_divergence"] == {"iteration": 7, "yours": mine[7], "reference": theirs[7]}

    # The loss plot overlays "yours" and "reference" (matplotlib keeps each text in a comment).
    svg = client.get(f"/v1/jobs/{perturbed['id']}/plots/loss.svg").text
    assert "<!-- yours -->" in svg and "<!-- reference -->" in svg
    bare = new_run(client, name="bare")
    r = client.get(f"/v1/jobs/{bare['id']}/reference")
    assert r.status_code == 409 and r.json()["type"] == "not_applicable"


def _count(db: Database, query: Any) -> int:
    with db.read_session() as session:
        return session.scalar(query)


def test_one_reference_run_per_recipe_also_under_concurrent_submissions(db_url):
    settings = make_settings(db_url)
    db = Database(db_url, settings)
    students = [Caller(f"s{i}", Role.STUDENT) for i in range(8)]
    try:
        with db.write_session() as session:
            for s in students:
                accounts.create_user(session, s.name, Role.STUDENT)
        start = threading.Barrier(len(students))

        def submit(caller: Caller, **more: Any) -> Job:
            spec = JobSpec.model_validate({**RECIPE, "runner": "external", **more})
            with db.write_session() as session:
                return jobs_service.submit(session, spec, settings, caller)[0]

        def race(caller: Caller) -> Job:
            start.wait()
            return submit(caller, name=caller.name, tags={"who": caller.name})

        with ThreadPoolExecutor(len(students)) as pool:
            jobs = list(pool.map(race, students))
        refs = {job.reference_job_id for job in jobs}
        assert len(refs) == 1 and None not in refs
        # Later ones, and a worker job of the same recipe (which trains it itself), add none.
        assert submit(students[0]).reference_job_id in refs
        assert submit(students[0], runner="worker").reference_job_id is None
        assert _count(db, select(func.count()).select_from(ReferenceRun)) == 1
        other = submit(students[1], optimizer={"kind": "gd", "learning_rate": 0.2})
        assert other.reference_job_id not in refs
        assert _count(db, select(func.count()).select_from(ReferenceRun)) == 2
        owners = select(func.count()).where(Job.owner == LOCAL_USER, Job.name == "reference")
        assert _count(db, owners) == 2
        # A reference run is the local account's: a student reads it only through the link.
        with db.read_session() as session, pytest.raises(NotFound):
            jobs_service.get(session, refs.pop() or "", students[0])
    finally:
        db.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_without_a_recipe_has_no_data_and_no_surface_to_draw(client):
    """Found by schemathesis: these were 500s."""
    run = new_run(client)
    for path in ("data", "plots/trajectory.png"):
        r = client.get(f"/v1/jobs/{run['id']}/{path}")
        assert r.status_code == 409 and r.json()["type"] == "not_applicable", (path, r.text)
