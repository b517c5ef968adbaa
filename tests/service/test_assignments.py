"""A whole course, in-process, on SQLite and PostgreSQL: an instructor sets a gradients
assignment with a hidden check, 30 students from a roster import each derive the softmax
gradients on their own instance, right or with one of the classic slips, some late, some
over quota; the gradebook (JSON and CSV), the Gradescope files and the insights are exactly
what the mix implies; no student sees another's instance, submission or hidden check; a
regrade after an edit changes exactly the scores it should."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from engine import make_model
from gradlab.cli import app as cli
from service.app import create_app
from store.db import Database
from store.tables import Submission
from tests.conftest import make_settings, run_worker
from tests.service.lab import Lab, make_lab
from tests.worker.student_code import SOFTMAX, softmax_with

M, L2 = 60, 0.1
EXERCISE = {
    "model": {"kind": "softmax_regression"},
    "data": {"kind": "blobs", "n_samples": M, "n_classes": 3, "n_features": 3},
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 20,
    "l2": L2,
    "init": {"kind": "random", "scale": 0.5},
}
CHECKS = [
    {"name": "dW", "points": 4, "kind": "solution", "tensor": "W"},
    {"name": "db", "points": 2, "kind": "solution", "tensor": "b"},
    {"name": "taylor", "points": 2, "kind": "taylor", "visibility": "after_due_date"},
    {"name": "loss", "points": 2, "kind": "loss", "visibility": "hidden"},
]
ASSIGNMENT = {
    "name": "softmax-1",
    "title": "Softmax gradients",
    "description": "Derive **dW** and db. <script>alert(1)</script>",
    "exercise": EXERCISE,
    "submit": "gradients",
    "checks": CHECKS,
    "due_at": "2099-01-01T00:00:00Z",
    "max_submissions": 3,
    "per_student_data": True,
}
STUDENTS = [f"s{i:02d}" for i in range(30)]
SLIPS = [None, "summed", "no_l2", "transposed", "no_loss"]  # student i makes SLIPS[i % 5]
# The points each slip earns (dW 4, db 2, taylor 2, loss 2) and the W diagnosis it gets.
SCORE = {None: 10.0, "summed": 2.0, "no_l2": 4.0, "transposed": 2.0, "no_loss": 8.0}
W_CODE = {
    None: "correct",
    "summed": "not_averaged",
    "no_l2": "missing_l2",
    "transposed": "transposed",
    "no_loss": "correct",
}
DB_PASSES = {None, "no_l2", "transposed", "no_loss"}


def answer(instance: dict[str, Any], slip: str | None) -> dict[str, Any]:
    """A student's answer on their instance: the right gradients from the notes' formulas
    (the engine's, here), or with one slip."""
    X, y = np.array(instance["data"]["X"]), np.array(instance["data"]["y"])
    params = {k: np.array(v) for k, v in instance["params"].items()}
    model = make_model("softmax_regression", n_features=X.shape[1], n_classes=3)
    loss, grads = model.loss_and_grads(params, X, model.check_targets(y), L2)
    W, dW, db = params["W"], grads["W"], grads["b"]
    value = float(loss.loss)
    if slip == "summed":
        dW, db = M * (dW - L2 * W) + L2 * W, M * db
    elif slip == "no_l2":
        dW = dW - L2 * W
    elif slip == "transposed":
        dW, value = dW.T, float(loss.data_loss)  # and the L2 term left out of the loss
    body: dict[str, Any] = {"gradients": {"W": dW.tolist(), "b": db.tolist()}}
    if slip != "no_loss":
        body["loss_value"] = value
    return body


@pytest.fixture
def lab(db_url: str, tmp_path, monkeypatch) -> Lab:
    lab = make_lab(db_url)
    roster = tmp_path / "roster.csv"
    roster.write_text("name,role\n" + "".join(f"{s},student\n" for s in STUDENTS))
    monkeypatch.setenv("GRADLAB_DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, ["users", "import", str(roster)])
    assert result.exit_code == 0, result.output
    for line in result.stdout.strip().splitlines():
        name, token = line.split(",")
        lab.tokens[name] = token
    return lab


@pytest.fixture
def client(lab: Lab) -> Iterator[TestClient]:
    settings = make_settings(lab.url, auth="required")
    with TestClient(create_app(settings), base_url="http://localhost") as c:
        yield c


def test_a_whole_course(client: TestClient, lab: Lab) -> None:
    ian, H = lab.headers("ian"), lab.headers
    url = "/v1/assignments/softmax-1"
    assert client.post("/v1/assignments", json=ASSIGNMENT, headers=H("s00")).status_code == 403
    r = client.post("/v1/assignments", json=ASSIGNMENT, headers=ian)
    assert r.status_code == 201, r.text
    assert client.post("/v1/assignments", json=ASSIGNMENT, headers=ian).status_code == 409
    listed = client.get("/v1/assignments", headers=H("s00")).json()["assignments"]
    assert [a["name"] for a in listed] == ["softmax-1"]

    # Each student's own instance: deterministic, their own, the instructor can see it.
    instances = {s: client.get(url, headers=H(s)).json() for s in STUDENTS}
    mine = instances["s03"]
    assert "exercise" not in mine and mine["description"] == ASSIGNMENT["description"]
    html = mine["description_html"]
    assert "<strong>dW</strong>" in html and "<script>" not in html and "&lt;script&gt;" in html
    assert mine["description_tree"] == [
        ["p", {}, "Derive ", ["strong", {}, "dW"], " and db. <script>alert(1)</script>"]
    ]
    assert mine["checks"][3] == {"name": "loss", "points": 2.0, "visibility": "hidden"}
    assert mine["checks"][2] == {"name": "taylor", "points": 2.0, "visibility": "after_due_date"}
    assert "def loss_and_gradients(params, X, y, l2):" in mine["instance"]["template"]
    assert client.get(url, headers=H("s03")).json()["instance"] == mine["instance"]
    xs = {str(v["instance"]["data"]["X"]) for v in instances.values()}
    ws = {str(v["instance"]["params"]["W"]) for v in instances.values()}
    assert len(xs) == len(ws) == 30
    seen = client.get(url, params={"student": "s03"}, headers=ian).json()
    assert seen["instance"] == mine["instance"] and seen["checks"][3]["kind"] == "loss"
    peek = client.get(url, params={"student": "s04"}, headers=H("s03"))
    nobody = client.get(url, params={"student": "zz"}, headers=H("s03"))
    assert peek.status_code == nobody.status_code == 404
    assert peek.text.replace("s04", "zz") == nobody.text

    # Twenty submit on time; s00 first with a slip, s01 uses up its three submissions.
    def submit(s: str, slip: str | None, inst: dict | None = None) -> Any:
        body = answer((inst or instances[s])["instance"], slip)
        return client.post(f"{url}/submissions", json=body, headers=H(s))

    first = submit("s00", "summed")
    assert first.status_code == 201, first.text
    for _ in range(2):
        assert submit("s01", "summed").status_code == 201
    for i, s in enumerate(STUDENTS[:20]):
        r = submit(s, SLIPS[i % 5])
        assert r.status_code == 201, r.text
        assert r.json()["late"] is False and r.json()["attempt"] == {"s00": 2, "s01": 3}.get(s, 1)
    over = submit("s01", None)
    assert over.status_code == 429 and over.json()["type"] == "too_many_submissions"
    assert int(over.headers["retry-after"]) > 0
    # Another's answer on one's own instance is wrong: the data are not the same.
    copied = client.post(
        f"{url}/submissions", json=answer(mine["instance"], None), headers=H("s05")
    )
    assert copied.json()["score"] < 10
    # A minimum interval: a second submission at once gets 429 with Retry-After, nothing stored.
    patched = client.patch(url, json={"min_interval_seconds": 3600}, headers=ian)
    assert patched.status_code == 200, patched.text
    soon = submit("s02", None)
    assert soon.status_code == 429 and soon.json()["type"] == "too_soon"
    assert 3500 < int(soon.headers["retry-after"]) <= 3600
    client.patch(url, json={"min_interval_seconds": 0}, headers=ian)

    # What a student sees of their own: the hidden check's name and points, no result.
    own = submit("s06", None).json()  # a second, right, submission of a summed slip
    assert [c["name"] for c in own["checks"]] == ["dW", "db", "taylor", "loss"]
    assert own["checks"][3] == {
        "name": "loss",
        "visibility": "hidden",
        "max_points": 2.0,
        "withheld": True,
    }
    assert own["checks"][2]["withheld"] is True and own["score"] == 6.0
    assert own["withheld_points"] == 4.0 and "passed" not in str(own["checks"][3])

    # The due date passes: ten more submit late; the taylor check is revealed, loss never.
    assert (
        client.patch(url, json={"due_at": "2020-01-01T00:00:00Z"}, headers=ian).status_code == 200
    )
    for i, s in enumerate(STUDENTS[20:], start=20):
        r = submit(s, SLIPS[i % 5])
        assert r.status_code == 201 and r.json()["late"] is True
    after = client.get(f"{url}/submissions/{own['id']}", headers=H("s06")).json()
    assert after["checks"][2]["passed"] is True and after["checks"][3].get("withheld") is True
    assert after["score"] == 8.0

    # Isolation: another's submission is a 404 exactly as a missing one; lists hold one's own.
    other = client.get(f"{url}/submissions/{own['id']}", headers=H("s07"))
    missing = client.get(f"{url}/submissions/{'0' * 32}", headers=H("s07"))
    assert other.status_code == missing.status_code == 404
    assert other.text.replace(own["id"], "0" * 32) == missing.text
    s07 = client.get(f"{url}/submissions", headers=H("s07")).json()["submissions"]
    assert {x["student"] for x in s07} == {"s07"}
    assert (
        client.get(f"{url}/submissions", params={"student": "s06"}, headers=H("s07")).status_code
        == 404
    )
    for route in ("grades", "insights", "grades/gradescope?student=s07"):
        assert client.get(f"{url}/{route}", headers=H("s07")).status_code == 403

    # The gradebook: the latest of each; s05's latest is the copied answer.
    slip = {s: SLIPS[i % 5] for i, s in enumerate(STUDENTS)}
    slip["s06"] = None
    want = {s: SCORE[slip[s]] for s in STUDENTS}
    want["s05"] = copied.json()["score"]
    everyone = client.get(f"{url}/grades", headers=ian).json()["grades"]
    # alice and bob, students who never submitted, are in the gradebook as missing.
    assert [(g["student"], g["status"], g["attempts"]) for g in everyone[:2]] == [
        ("alice", "missing", 0),
        ("bob", "missing", 0),
    ]
    book = everyone[2:]
    assert {g["student"]: g["score"] for g in book} == want
    attempts = {g["student"]: g["attempts"] for g in book}
    assert attempts == {s: {"s00": 2, "s01": 3, "s05": 2, "s06": 2}.get(s, 1) for s in STUDENTS}
    assert {g["student"] for g in book if g["late"]} == set(STUDENTS[20:])
    text = client.get(f"{url}/grades", headers={**ian, "Accept": "text/csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert rows[0] == {
        "student": "alice",
        "score": "",
        "max_score": "10.0",
        "submitted_at": "",
        "late": "",
        "attempts": "0",
        "status": "missing",
    }
    rows = rows[2:]
    assert [(r["student"], float(r["score"]), r["late"], int(r["attempts"])) for r in rows] == [
        (g["student"], g["score"], str(g["late"]).lower(), g["attempts"]) for g in book
    ]

    # Gradescope: one results.json per student, hidden tests marked hidden.
    for s in ("s00", "s02", "s03", "s29"):
        gs = client.get(f"{url}/grades/gradescope", params={"student": s}, headers=ian).json()
        assert gs["score"] == want[s] == sum(t["score"] for t in gs["tests"])
        assert [(t["name"], t["max_score"], t["visibility"]) for t in gs["tests"]] == [
            ("dW", 4.0, "visible"),
            ("db", 2.0, "visible"),
            ("taylor", 2.0, "after_due_date"),
            ("loss", 2.0, "hidden"),
        ]
    summed = client.get(f"{url}/grades/gradescope", params={"student": "s01"}, headers=ian)
    assert "m = 60 times too large" in summed.json()["tests"][0]["output"]

    # Insights: over the counted submissions (s05's copied one aside).
    ins = client.get(f"{url}/insights", headers=ian).json()
    counted = {s: slip[s] for s in STUDENTS if s != "s05"}
    n_db = sum(v in DB_PASSES for v in counted.values()) + int(copied.json()["checks"][1]["passed"])
    assert ins["students"] == 30
    assert {c["name"]: c["passed"] for c in ins["checks"]}["db"] == n_db
    codes = {d["code"]: d["count"] for d in ins["diagnoses"]["W"]}
    expect: dict[str, int] = {}
    for v in counted.values():
        expect[W_CODE[v]] = expect.get(W_CODE[v], 0) + 1
    copied_w = copied.json()["checks"][0]
    assert not copied_w["passed"] and sum(codes.values()) == 30
    assert codes == {**expect, **{c: codes[c] for c in codes if c not in expect}}
    summary = {d["summary"] for d in ins["diagnoses"]["W"]}
    assert f"{expect['not_averaged']} of 30: dW not averaged" in summary

    # A regrade after an edit: db is worth 3 now; exactly those who got db right gain 1.
    edited = [dict(c, points=3) if c["name"] == "db" else c for c in CHECKS]
    assert client.patch(url, json={"checks": edited}, headers=ian).status_code == 200
    before = {g["student"]: g["score"] for g in book}
    result = client.post(f"{url}/regrade", headers=ian).json()
    assert result["regraded"] == 30
    again = {
        g["student"]: g["score"] for g in client.get(f"{url}/grades", headers=ian).json()["grades"]
    }
    passed_db = {s for s in STUDENTS if s != "s05" and slip[s] in DB_PASSES}
    if copied.json()["checks"][1]["passed"]:
        passed_db.add("s05")
    assert {s for s in STUDENTS if again[s] == before[s] + 1} == passed_db
    assert {s for s in STUDENTS if again[s] == before[s]} == set(STUDENTS) - passed_db


@pytest.fixture
def small(db_url: str) -> Iterator[tuple[TestClient, Lab]]:
    """A lab without the roster: alice and bob, ian the instructor."""
    lab = make_lab(db_url)
    settings = make_settings(lab.url, auth="required")
    with TestClient(create_app(settings), base_url="http://localhost") as c:
        yield c, lab


def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(small):
    client, lab = small
    ian = lab.headers("ian")

    def refused(change: dict[str, Any]) -> list[str]:
        r = client.post("/v1/assignments", json={**ASSIGNMENT, **change}, headers=ian)
        assert r.status_code == 422, r.text
        return [p["field"] for p in r.json()["detail"]]

    assert refused({"name": "Has Spaces"}) == ["name"]
    assert refused({"due_at": "2099-01-01T00:00:00"}) == ["due_at"]
    assert refused({"checks": [{**CHECKS[0], "kind": "final_loss"}]}) == ["checks[0].kind"]
    assert refused({"checks": [{**CHECKS[0], "tensor": "W9"}]}) == ["checks[0].tensor"]
    assert refused({"checks": [CHECKS[0], CHECKS[0]]}) == ["checks[1].name"]
    assert refused({"checks": [{**CHECKS[0], "iteration": 3}]}) == ["checks[0].iteration"]
    assert refused({"exercise": {**EXERCISE, "loss": "mse"}}) == ["exercise.loss"]
    zeros = {**EXERCISE, "init": {"kind": "zeros"}, "data": {"kind": "inline",
             "X": [[0.0, 1.0, 2.0]] * 3, "y": [0, 1, 2]}}  # fmt: skip
    assert refused({"exercise": zeros}) == ["per_student_data"]
    assert client.get("/v1/assignments", headers=ian).json()["assignments"] == []

    late = {**ASSIGNMENT, "due_at": "2020-01-01T00:00:00Z", "late": "reject", "max_submissions": 1}
    assert client.post("/v1/assignments", json=late, headers=ian).status_code == 201
    url = "/v1/assignments/softmax-1"
    inst = client.get(url, headers=lab.headers("alice")).json()["instance"]
    r = client.post(f"{url}/submissions", json=answer(inst, None), headers=lab.headers("alice"))
    assert r.status_code == 409 and r.json()["type"] == "past_due"
    client.patch(url, json={"late": "accept"}, headers=ian)
    missing = {"gradients": {"W": inst["params"]["W"]}}
    r = client.post(f"{url}/submissions", json=missing, headers=lab.headers("alice"))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "gradients.b"
    r = client.post(f"{url}/submissions", json={"code": "x"}, headers=lab.headers("alice"))
    assert r.status_code == 422
    assert {p["field"] for p in r.json()["detail"]} == {"gradients", "code"}
    ragged = {"gradients": {"W": [[1.0], [1.0, 2.0]], "b": [0.0, 0.0, 0.0]}}
    r = client.post(f"{url}/submissions", json=ragged, headers=lab.headers("alice"))
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "gradients.W"
    listed = client.get(f"{url}/submissions", headers=ian).json()["submissions"]
    assert listed == []  # none of these stored anything, nor counted against max_submissions
    r = client.post(f"{url}/submissions", json=answer(inst, None), headers=lab.headers("alice"))
    assert (
        r.status_code == 201 and r.json()["late"] is True and r.json()["score"] == 8.0
    )  # past due: taylor shown
    assert client.patch(url, json={"name": "other"}, headers=ian).status_code == 422
    assert client.patch(url, json={"title": "x"}, headers=lab.headers("bob")).status_code == 403
    # An unpublished assignment is, to a student, one that does not exist.
    client.patch(url, json={"published": False}, headers=ian)
    hidden = client.get(url, headers=lab.headers("bob"))
    nothing = client.get("/v1/assignments/nothing", headers=lab.headers("bob"))
    assert hidden.status_code == nothing.status_code == 404
    assert client.get("/v1/assignments", headers=lab.headers("bob")).json()["assignments"] == []


def test_code_submissions_run_in_the_sandbox_and_are_graded_from_their_checks(small):
    """Graded by the worker as it ends each job (before anything reads them), on the stored
    checks, the losses it recorded and, for the final loss, the shared reference run's."""
    client, lab = small
    final = {"name": "final", "points": 1, "kind": "final_loss", "tolerance": 1e-9}
    checks = [*CHECKS, final]  # dW 4, db 2, taylor 2 (after due), loss 2 (hidden), final 1
    body = {**ASSIGNMENT, "name": "code-1", "submit": "code", "per_student_data": False,
            "checks": checks}  # fmt: skip
    assert client.post("/v1/assignments", json=body, headers=lab.headers("ian")).status_code == 201
    url = "/v1/assignments/code-1/submissions"
    mine = {"alice": SOFTMAX, "bob": softmax_with(average="")}  # bob sums where the mean goes
    for student, code in mine.items():
        r = client.post(url, json={"code": code}, headers=lab.headers(student))
        assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    r = client.post(url, json={"code": "def loss_and_gradients(:"}, headers=lab.headers("bob"))
    assert r.status_code == 422  # not Python: refused at once, stored nowhere
    run_worker(make_settings(lab.url, auth="required"))
    db = Database(lab.url, make_settings(lab.url))
    try:
        with db.read_session() as session:
            stored = {s.owner: s for s in session.scalars(select(Submission))}
    finally:
        db.dispose()
    assert {o: s.status for o, s in stored.items()} == {"alice": "graded", "bob": "graded"}
    alice = {r["name"]: r["passed"] for r in stored["alice"].results}
    assert alice == {"dW": True, "db": True, "taylor": True, "loss": True, "final": True}
    bob = {r["name"]: r["passed"] for r in stored["bob"].results}
    # bob's gradient is m times his own loss's: the Taylor slope sees that, the loss does not
    assert bob == {"dW": False, "db": False, "taylor": False, "loss": True, "final": False}
    assert "does not match the reference's" in stored["bob"].results[-1]["message"]
    graded = {}
    for student in mine:
        (sub,) = client.get(url, headers=lab.headers(student)).json()["submissions"]
        graded[student] = sub
        assert sub["status"] == "graded", sub
    assert graded["alice"]["score"] == 7.0  # dW, db, final; Taylor shows after the due date
    (staff,) = client.get(url, params={"student": "alice"}, headers=lab.headers("ian")).json()[
        "submissions"
    ]
    assert staff["score"] == staff["max_score"] == 11.0
    dw = next(c for c in graded["bob"]["checks"] if c["name"] == "dW")
    assert graded["bob"]["score"] == 0.0 and dw["passed"] is False  # his loss check is hidden
    assert "too large" in dw["message"], dw  # the not_averaged sentence: m times too large


def test_a_regrade_runs_again_the_code_the_grader_failed_on(db_url: str) -> None:
    """alice's grading job is cancelled (not_gradable); bob's code fails on its own (graded,
    0). A regrade gives alice's code a fresh job of hers, though her quota is full; bob's is
    graded from the job he had. When a finished job is deleted, a regrade runs it again too;
    a server without a sandbox leaves it not_gradable, saying why."""
    lab = make_lab(db_url)
    settings = make_settings(lab.url, auth="required", max_active_jobs_per_user=1)
    checks = [c for c in CHECKS if c["kind"] != "loss"]  # dW 4, db 2, taylor 2 (after due)
    body = {**ASSIGNMENT, "name": "code-1", "submit": "code", "per_student_data": True,
            "checks": checks}  # fmt: skip
    url = "/v1/assignments/code-1"
    ian, alice, bob = lab.headers("ian"), lab.headers("alice"), lab.headers("bob")
    broken = "def loss_and_gradients(params, X, y, l2):\n    raise KeyError('W3')\n"
    with TestClient(create_app(settings), base_url="http://localhost") as client:

        def mine(who: dict[str, str]) -> dict[str, Any]:
            (sub,) = client.get(f"{url}/submissions", headers=who).json()["submissions"]
            return sub

        assert client.post("/v1/assignments", json=body, headers=ian).status_code == 201
        first = client.post(f"{url}/submissions", json={"code": SOFTMAX}, headers=alice).json()
        assert (
            client.post(f"{url}/submissions", json={"code": broken}, headers=bob).status_code == 201
        )
        cancelled = client.post(f"/v1/jobs/{first['job_id']}/cancel", headers=alice)
        assert cancelled.json()["status"] == "cancelled"
        run_worker(settings)  # bob's job, and the recipe's reference run
        for who in (alice, ian):
            (sub,) = client.get(
                f"{url}/submissions", params={"student": "alice"}, headers=who
            ).json()["submissions"]
            assert (sub["status"], sub["score"]) == ("not_gradable", 0.0)
            assert sub["reason"] == "the grading job was cancelled."
        own = mine(bob)
        assert (own["status"], own["score"]) == ("graded", 0.0)
        assert all(c["message"].startswith("Prevented by student_error") for c in own["checks"][:2])
        assert "KeyError" in own["checks"][0]["message"]

        # Where no sandbox runs student code, the regrade cannot run it: still not_gradable.
        plain = make_settings(lab.url, auth="required", sandbox="subprocess")
        with TestClient(create_app(plain), base_url="http://localhost") as other:
            result = other.post(f"{url}/regrade", headers=ian).json()
        assert result["rerun"] == [] and result["regraded"] == 2
        sub = mine(alice)
        assert sub["status"] == "not_gradable" and sub["job_id"] == first["job_id"]
        assert "could not be run again" in sub["reason"] and "bubblewrap" in sub["reason"]

        # alice's quota is full: she may queue nothing; the regrade queues her code all the same.
        job = {**EXERCISE, "data": {**EXERCISE["data"], "seed": 3}}
        assert client.post("/v1/jobs", json=job, headers=alice).status_code == 201
        assert client.post("/v1/jobs", json=job, headers=alice).status_code == 429
        assert client.post(f"{url}/regrade", headers=lab.headers("bob")).status_code == 403
        result = client.post(f"{url}/regrade", headers=ian).json()
        assert result["rerun"] == [first["id"]] and result["changed"] == [first["id"]]
        sub = mine(alice)
        assert sub["status"] == "pending" and sub["reason"] is None
        fresh = sub["job_id"]
        assert fresh not in (None, first["job_id"]) and mine(bob)["job_id"] == own["job_id"]
        rerun = client.get(f"/v1/jobs/{fresh}", headers=alice).json()
        assert rerun["owner"] == "alice" and rerun["status"] == "queued"
        assert client.get(f"/v1/jobs/{fresh}", headers=bob).status_code == 404
        # the same code on her own instance: the job she first had, but for its id
        before = client.get(f"/v1/jobs/{first['job_id']}", headers=alice).json()
        assert rerun["spec"] == before["spec"] and "raise" not in rerun["spec"]["student"]["code"]
        run_worker(settings)
        sub = mine(alice)
        assert (sub["status"], sub["score"], sub["reason"]) == ("graded", 6.0, None)
        staff = client.get(f"{url}/submissions/{first['id']}", headers=ian).json()
        assert staff["score"] == staff["max_score"] == 8.0

        # Graded from its job's evidence now: nothing runs again, nothing changes.
        result = client.post(f"{url}/regrade", headers=ian).json()
        assert result == {"regraded": 2, "changed": [], "rerun": []}

        # A finished job deleted is a grading job gone: a regrade runs the code again.
        assert client.delete(f"/v1/jobs/{fresh}", headers=alice).status_code == 204
        result = client.post(f"{url}/regrade", headers=ian).json()
        assert result["rerun"] == [first["id"]]
        assert mine(alice)["job_id"] not in (None, fresh)
        run_worker(settings)
        assert client.get(f"{url}/submissions/{first['id']}", headers=ian).json()["score"] == 8.0
