"""The isolation contract, as a matrix: every route of the app's OpenAPI document × every
kind of caller — the resource's owner, another student, an instructor, an admin, no token, a
bad token, a revoked token — with GRADLAB_AUTH=required, on SQLite and on PostgreSQL.

The routes come from the app itself, so a route added later has no row in :data:`EXPECTED`
and fails here until someone says who may call it. No body another student gets holds any
of the owner's ids or names, and another's resource is answered exactly as one that does not
exist."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from store.accounts import Role
from store.db import Database
from store.tables import ApiToken, Job, Sweep, User
from tests.conftest import make_settings, run_worker
from tests.service.lab import Lab, make_lab

CALLERS = ("owner", "other", "instructor", "admin", "none", "bad", "revoked")
AS = {"owner": "alice", "other": "bob", "instructor": "ian", "admin": "ada"}
SPEC = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 5,
}
GRADIENTS = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "inline", "X": [[0.0], [1.0], [2.0]], "y": [1.0, 3.0, 5.0]},
    "params": {"W": [[0.5]], "b": [0.0]},
    "gradients": {"W": [[-7.0]], "b": [-5.0]},
}
SWEEP = {"name": "alice-sweep", "base": SPEC, "grid": {"optimizer.learning_rate": [0.1, 0.2]}}

# Status by caller (owner, other student, instructor, admin) for each route, the owner's
# resource in its path. No, bad and revoked tokens get 401 on every /v1 route.
SEEN_BY_STAFF = (200, 404, 200, 200)
EXPECTED: dict[tuple[str, str], tuple[int, int, int, int]] = {
    ("GET", "/healthz"): (200, 200, 200, 200),
    ("GET", "/readyz"): (200, 200, 200, 200),
    ("GET", "/v1/me"): (200, 200, 200, 200),
    ("POST", "/v1/users"): (403, 403, 201, 201),
    ("GET", "/v1/users"): (403, 403, 200, 200),
    ("POST", "/v1/users/{name}/revoke"): (403, 403, 200, 200),
    ("POST", "/v1/jobs"): (201, 201, 201, 201),
    ("GET", "/v1/jobs"): (200, 200, 200, 200),
    ("GET", "/v1/jobs/examples"): (200, 200, 200, 200),
    ("GET", "/v1/jobs/{job_id}"): SEEN_BY_STAFF,
    ("POST", "/v1/jobs/{job_id}/cancel"): SEEN_BY_STAFF,
    ("DELETE", "/v1/jobs/{job_id}"): (204, 404, 204, 204),
    ("GET", "/v1/jobs/{job_id}/gradient-checks"): SEEN_BY_STAFF,
    # The world's job trains on generated data, which is not stored: 409 for who may see it.
    ("GET", "/v1/jobs/{job_id}/data"): (409, 404, 409, 409),
    ("POST", "/v1/gradient-checks"): (200, 200, 200, 200),
    ("GET", "/v1/jobs/{job_id}/parameters"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/metrics"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/events"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/plots/loss.{fmt}"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/plots/fit.{fmt}"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/plots/gradient-checks.{fmt}"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/plots/trajectory.{fmt}"): SEEN_BY_STAFF,
    ("GET", "/v1/plots/compare.{fmt}"): SEEN_BY_STAFF,
    ("GET", "/v1/catalog"): (200, 200, 200, 200),
    ("POST", "/v1/sweeps"): (201, 201, 201, 201),
    ("GET", "/v1/sweeps"): (200, 200, 200, 200),
    ("GET", "/v1/sweeps/{sweep_id}"): SEEN_BY_STAFF,
    # On a fresh external run of alice's (with a recipe, so with a reference run).
    ("POST", "/v1/jobs/{job_id}/metrics"): SEEN_BY_STAFF,
    ("POST", "/v1/jobs/{job_id}/finish"): SEEN_BY_STAFF,
    ("GET", "/v1/jobs/{job_id}/reference"): SEEN_BY_STAFF,
    # The Prometheus scrape: an operator's, an admin's token (no per-user data in it).
    ("GET", "/metrics"): (403, 403, 403, 200),
    # ian's assignment; alice's submission to it. Everyone sees the assignment (a student
    # their own instance); only staff create, edit, regrade and read the gradebook.
    ("POST", "/v1/assignments"): (403, 403, 201, 201),
    ("GET", "/v1/assignments"): (200, 200, 200, 200),
    ("GET", "/v1/assignments/{name}"): (200, 200, 200, 200),
    ("PATCH", "/v1/assignments/{name}"): (403, 403, 200, 200),
    ("POST", "/v1/assignments/{name}/regrade"): (403, 403, 200, 200),
    ("POST", "/v1/assignments/{name}/submissions"): (201, 201, 201, 201),
    ("GET", "/v1/assignments/{name}/submissions"): (200, 200, 200, 200),
    ("GET", "/v1/assignments/{name}/submissions/{submission_id}"): SEEN_BY_STAFF,
    ("GET", "/v1/assignments/{name}/grades"): (403, 403, 200, 200),
    ("GET", "/v1/assignments/{name}/grades/gradescope"): (403, 403, 200, 200),
    ("GET", "/v1/assignments/{name}/insights"): (403, 403, 200, 200),
    ("POST", "/v1/datasets"): (201, 201, 201, 201),
    ("GET", "/v1/datasets"): (200, 200, 200, 200),
    ("GET", "/v1/datasets/{dataset_id}"): SEEN_BY_STAFF,
    ("DELETE", "/v1/datasets/{dataset_id}"): (204, 404, 204, 204),
}
EXTERNAL_ROUTES = {"/v1/jobs/{job_id}/metrics", "/v1/jobs/{job_id}/finish"}
ASSIGNMENT = {
    "name": "hw1",
    "title": "Linear regression gradients",
    "exercise": {**SPEC, "data": GRADIENTS["data"], "init": {"kind": "given",
                 "params": GRADIENTS["params"]}},
    "submit": "gradients",
    "checks": [{"name": "dW", "points": 1, "kind": "solution"},
               {"name": "secret", "points": 1, "kind": "loss", "visibility": "hidden"}],
}  # fmt: skip
ANSWER = {"gradients": GRADIENTS["gradients"], "loss_value": 1.0}
OPEN = {"/healthz", "/readyz"}  # the only routes a request without a token may call


def dataset_file() -> dict[str, Any]:
    """A CSV upload of fresh random numbers (each upload its own content)."""
    rows = "\n".join(f"{uuid.uuid4().int % 1000},{i % 2}" for i in range(4))
    return {"file": ("d.csv", f"x,y\n{rows}\n".encode(), "text/csv")}


def routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the app's OpenAPI document."""
    paths = app.openapi()["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


class World:
    """alice's resources, made fresh for the routes that change them."""

    def __init__(self, lab: Lab, client: TestClient) -> None:
        self.lab, self.client = lab, client
        self.marker = f"alice-secret-{uuid.uuid4().hex[:8]}"
        self.job = self.finished_job()
        self.queued = self.submit()
        self.external = self.submit(runner="external")
        sweep = client.post("/v1/sweeps", json=SWEEP, headers=lab.headers("alice"))
        assert sweep.status_code == 201, sweep.text
        self.sweep = sweep.json()["id"]
        made = client.post("/v1/assignments", json=ASSIGNMENT, headers=lab.headers("ian"))
        assert made.status_code == 201, made.text
        sub = client.post("/v1/assignments/hw1/submissions", json=ANSWER,
                          headers=lab.headers("alice"))  # fmt: skip
        assert sub.status_code == 201, sub.text
        self.submission = sub.json()["id"]
        self.dataset = self.upload()
        self.secrets = {
            self.marker,
            self.job,
            self.queued,
            self.sweep,
            self.external,
            self.submission,
            self.dataset,
        }
        self.secrets |= {j["id"] for j in sweep.json()["jobs"]}

    def upload(self) -> str:
        """A dataset of alice's, of numbers no one else uploads."""
        r = self.client.post(
            "/v1/datasets", files=dataset_file(), headers=self.lab.headers("alice")
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def finished_job(self) -> str:
        """A job of alice's trained by a worker: points, checks and parameters."""
        job_id = self.submit()
        run_worker(make_settings(self.lab.url))
        return job_id

    def submit(self, **more: str) -> str:
        body = {**SPEC, "name": self.marker, **more}
        r = self.client.post("/v1/jobs", json=body, headers=self.lab.headers("alice"))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def request(self, method: str, path: str, fresh: bool) -> dict[str, Any]:
        """The request for a route, on alice's resources (new ones when ``fresh``)."""
        job, dataset = self.job, self.dataset
        if fresh and method == "DELETE" and "{dataset_id}" in path:
            dataset = self.upload()
            self.secrets.add(dataset)
        elif fresh and method == "DELETE":  # a cancelled job: finished, so it may be deleted
            job = self.submit()
            cancel = self.client.post(f"/v1/jobs/{job}/cancel", headers=self.lab.headers("alice"))
            assert cancel.json()["status"] == "cancelled"
            self.secrets.add(job)
        elif fresh and path.endswith("/cancel"):
            job = self.queued = self.submit()
            self.secrets.add(job)
        elif path in EXTERNAL_ROUTES or path.endswith("/reference"):
            job = self.submit(runner="external") if fresh else self.external
            self.secrets.add(job)
        params: dict[str, Any] = {}
        body: Any = None
        files = dataset_file() if (method, path) == ("POST", "/v1/datasets") else None
        name = ""
        if path == "/v1/users/{name}/revoke":
            name = f"s{uuid.uuid4().hex[:10]}"
            self.lab.add(name, Role.STUDENT)
        if path == "/v1/users":
            body = {"name": f"n{uuid.uuid4().hex[:10]}", "role": "student"}
        elif path == "/v1/jobs" and method == "POST":
            body = SPEC
        elif path == "/v1/sweeps" and method == "POST":
            body = SWEEP
        elif path == "/v1/gradient-checks":
            body = GRADIENTS
        elif path == "/v1/jobs/{job_id}/metrics":
            body = {"points": [{"iteration": 0, "loss": 1.0}]}
        elif path == "/v1/jobs/{job_id}/finish":
            body = {"status": "succeeded"}
        elif path == "/v1/plots/compare.{fmt}":
            params["ids"] = job
        elif path == "/v1/assignments" and method == "POST":
            body = {**ASSIGNMENT, "name": f"a{uuid.uuid4().hex[:10]}"}
        elif path.endswith("/submissions") and method == "POST":
            body = ANSWER
        elif method == "PATCH":
            body = {"title": "Renamed"}
        elif path.endswith("/gradescope"):
            params["student"] = "alice"
        if path.startswith("/v1/assignments/{name}"):
            name = "hw1"
        url = path.format(job_id=job, sweep_id=self.sweep, dataset_id=dataset, fmt="png",
                          name=name, submission_id=self.submission)  # fmt: skip
        return {"method": method, "url": url, "params": params, "json": body, "files": files}


def call(client: TestClient, lab: Lab, caller: str, request: dict[str, Any]) -> Any:
    headers = {
        "owner": lambda: lab.headers("alice"),
        "other": lambda: lab.headers("bob"),
        "instructor": lambda: lab.headers("ian"),
        "admin": lambda: lab.headers("ada"),
        "none": lambda: {},
        "bad": lambda: {"Authorization": "Bearer glab_" + "x" * 43},
        "revoked": lambda: {"Authorization": f"Bearer {lab.tokens['alice-revoked']}"},
    }[caller]()
    return client.request(**request, headers=headers)


def counts(url: str) -> tuple[int, ...]:
    db = Database(url, make_settings(url))
    try:
        with db.read_session() as session:
            return tuple(
                session.scalar(select(func.count()).select_from(t))
                for t in (Job, Sweep, User, ApiToken)
            )
    finally:
        db.dispose()


@pytest.fixture
def lab(db_url: str) -> Lab:
    return make_lab(db_url)


@pytest.fixture
def client(lab: Lab) -> Iterator[TestClient]:
    with TestClient(
        create_app(make_settings(lab.url, auth="required")), base_url="http://localhost"
    ) as c:
        yield c


def test_every_route_has_a_row_in_the_matrix(client):
    assert set(routes(client.app)) == set(EXPECTED), "say who may call each route in EXPECTED"


def test_every_route_by_every_caller(client, lab):
    world = World(lab, client)
    failures = []
    for (method, path), caller in itertools.product(routes(client.app), CALLERS):
        mutating = method in ("POST", "DELETE")
        request = world.request(method, path, fresh=mutating)
        before = counts(lab.url) if caller in ("none", "bad", "revoked") else None
        r = call(client, lab, caller, request)
        if caller in AS:
            want = EXPECTED[(method, path)][list(AS).index(caller)]
        else:
            want = 200 if path in OPEN else 401
        if r.status_code != want:
            failures.append(f"{method} {path} as {caller}: {r.status_code}, not {want}: {r.text}")
            continue
        if want == 401:
            assert r.headers["www-authenticate"].startswith("Bearer"), (method, path)
            assert r.json()["type"] == "unauthorized"
            assert counts(lab.url) == before, f"{method} {path} as {caller} changed something"
        if caller == "other":
            asked = request["url"] + str(request["params"])  # a 404 may name what was asked
            leaked = [s for s in world.secrets if s in r.text and s not in asked]
            assert not leaked, f"{method} {path} showed bob alice's {leaked}"
        if caller == "other" and want == 404:
            # Exactly the answer for an id that does not exist.
            fake = uuid.uuid4().hex
            if "{submission_id}" in path:
                real_id = request["url"].split("/")[5]
            elif "{job_id}" in path or "{sweep_id}" in path or "{dataset_id}" in path:
                real_id = request["url"].split("/")[3]
            else:
                real_id = request["params"]["ids"]
            nobody = {**request, "url": request["url"].replace(real_id, fake)}
            nobody["params"] = {k: v.replace(real_id, fake) for k, v in request["params"].items()}
            none_r = call(client, lab, "other", nobody)
            assert none_r.status_code == 404
            assert r.text.replace(real_id, fake) == none_r.text, (method, path)
    assert not failures, "\n".join(failures)
    # What the other student did not touch is still there, as it was.
    job = client.get(f"/v1/jobs/{world.job}", headers=lab.headers("alice"))
    assert job.status_code == 200 and job.json()["owner"] == "alice"


def test_a_students_lists_hold_only_their_own_and_staff_filter_by_owner(client, lab):
    world = World(lab, client)
    bob_job = client.post("/v1/jobs", json=SPEC, headers=lab.headers("bob")).json()["id"]
    as_bob = client.get("/v1/jobs", headers=lab.headers("bob")).json()["jobs"]
    assert [j["id"] for j in as_bob] == [bob_job] and as_bob[0]["owner"] == "bob"
    mine = client.get("/v1/jobs", headers=lab.headers("alice")).json()["jobs"]
    assert {j["owner"] for j in mine} == {"alice"} and world.job in {j["id"] for j in mine}
    # A student's owner filter narrows their own list; it never widens it.
    peek = client.get("/v1/jobs", params={"owner": "alice"}, headers=lab.headers("bob"))
    assert peek.json()["jobs"] == []
    for staff in ("ian", "ada"):
        everyone = client.get("/v1/jobs", headers=lab.headers(staff)).json()["jobs"]
        assert {"alice", "bob"} <= {j["owner"] for j in everyone}
        only = client.get("/v1/jobs", params={"owner": "bob"}, headers=lab.headers(staff))
        assert [j["id"] for j in only.json()["jobs"]] == [bob_job]
        sweeps = client.get("/v1/sweeps", params={"owner": "alice"}, headers=lab.headers(staff))
        assert [s["id"] for s in sweeps.json()["sweeps"]] == [world.sweep]
    assert client.get("/v1/sweeps", headers=lab.headers("bob")).json()["sweeps"] == []
    # A compare plot with one of alice's jobs among bob's is a 404 naming only that id.
    r = client.get(
        "/v1/plots/compare.svg",
        params={"ids": f"{bob_job},{world.job}"},
        headers=lab.headers("bob"),
    )
    assert r.status_code == 404 and world.marker not in r.text
    by_sweep = client.get(
        "/v1/plots/compare.svg", params={"sweep": world.sweep}, headers=lab.headers("bob")
    )
    assert by_sweep.status_code == 404
    assert (
        client.get("/v1/jobs", params={"sweep_id": world.sweep}, headers=lab.headers("bob")).json()[
            "jobs"
        ]
        == []
    )


def test_an_idempotency_key_is_its_owners_own(client, lab):
    key = {"Idempotency-Key": "shared-key"}
    a = client.post("/v1/jobs", json=SPEC, headers={**lab.headers("alice"), **key})
    b = client.post("/v1/jobs", json=SPEC, headers={**lab.headers("bob"), **key})
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"] and b.json()["owner"] == "bob"
    again = client.post("/v1/jobs", json=SPEC, headers={**lab.headers("bob"), **key})
    assert again.status_code == 200 and again.json()["id"] == b.json()["id"]
