"""The jobs API end to end: submit over HTTP, a worker runs the job, read everything back."""

from __future__ import annotations

import copy
import math

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs.examples import SEEDS
from tests.conftest import make_settings
from tests.service.helpers import LINE, submit


@pytest.mark.parametrize("example", sorted(SEEDS))
def test_every_swagger_example_trains_and_passes_its_gradient_checks(client, drain, example):
    spec = SEEDS[example]["value"]
    created = submit(client, spec)
    assert created["status"] == "queued"
    assert created["spec"]["loss"] == spec["loss"]

    assert drain() == {"succeeded": 1}

    job = client.get(f"/v1/jobs/{created['id']}").json()
    n = spec["iterations"]
    assert job["status"] == "succeeded", job["error"]
    assert job["iterations_done"] == n
    assert job["attempts"] == 1
    assert job["gradient_checks_passed"] is True
    assert job["started_at"] <= job["finished_at"]

    metrics = client.get(f"/v1/jobs/{created['id']}/metrics").json()
    assert metrics["total"] == n
    assert [p["iteration"] for p in metrics["points"]] == list(range(n))
    assert all(math.isfinite(p["loss"]) for p in metrics["points"])
    assert job["summary"]["final_loss"] == metrics["points"][-1]["loss"]
    best = min(metrics["points"], key=lambda p: p["loss"])
    assert job["summary"]["best_loss"] == best["loss"]
    assert job["summary"]["best_iteration"] == best["iteration"]
    assert job["summary"]["final_loss"] < metrics["points"][0]["loss"]

    checks = client.get(f"/v1/jobs/{created['id']}/gradient-checks").json()["checks"]
    assert [c["iteration"] for c in checks] == [0, n - 1]
    for check in checks:
        assert check["passed"] is True
        assert check["reference"] == "numeric"
        assert set(check["parameters"]) == set(job_params(client, created["id"]))
        for tensor in check["parameters"].values():
            assert tensor["max_relative_error"] <= check["rtol"]
            assert 1 <= tensor["checked"] <= tensor["total"]


def job_params(client: TestClient, job_id: str) -> dict:
    body = client.get(f"/v1/jobs/{job_id}/parameters").json()
    assert set(body["parameters"]) == set(body["shapes"])
    return body["parameters"]


def test_the_iso_timestamps_are_utc_with_microseconds(client):
    job = submit(client, LINE)
    stamp = job["created_at"]
    assert stamp.endswith("Z") and len(stamp.split(".")[1]) == len("123456Z")


def test_submission_answers_with_a_location_that_serves_the_job(client):
    r = client.post("/v1/jobs", json=LINE)
    assert r.status_code == 201
    assert client.get(r.headers["location"]).json()["id"] == r.json()["id"]


def test_the_spec_comes_back_with_every_default_filled_in(client):
    spec = submit(client, LINE)["spec"]
    assert spec["loss"] == "mse"
    assert spec["l2"] == 0.0
    assert spec["init"] == {"kind": "random", "scale": 0.01, "seed": 0}
    assert spec["data"]["slope"] == 2.0
    assert spec["optimizer"]["momentum"] == 0.0
    assert spec["gradient_check"]["references"] == ["numeric"]


# --- bad input: a 422 naming the field, nothing stored -------------------------------------


def with_(path: str, value):
    """A copy of LINE with ``path`` (dotted) set to ``value`` (or removed for ...)."""
    spec = copy.deepcopy(LINE)
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(leaf)
    else:
        node[leaf] = value
    return spec


INLINE = {"kind": "inline", "X": [[0.0], [1.0], [2.0]], "y": [0, 1, 1]}
SPIRAL = {"kind": "spiral", "n_per_class": 10}

BAD = [
    ("unknown model", with_("model.kind", "svm"), "model"),
    ("unknown data kind", with_("data.kind", "moons"), "data"),
    ("unknown optimizer", with_("optimizer.kind", "adam"), "optimizer"),
    ("unknown init", with_("init", {"kind": "xavier"}), "init"),
    ("unknown field", with_("optimizer.lr", 0.1), "optimizer.lr"),
    ("loss misfit", with_("loss", "cross_entropy"), "loss"),
    ("unknown loss", with_("loss", "hinge"), "loss"),
    ("iterations 0", with_("iterations", 0), "iterations"),
    ("iterations over cap", with_("iterations", 2_000_000), "iterations"),
    ("iterations missing", with_("iterations", ...), "iterations"),
    ("learning rate 0", with_("optimizer.learning_rate", 0), "optimizer.learning_rate"),
    ("negative l2", with_("l2", -1e-3), "l2"),
    ("epsilon 0", with_("gradient_check", {"epsilon": 0}), "gradient_check.epsilon"),
    ("momentum 1", with_("optimizer.momentum", 1.0), "optimizer.momentum"),
    (
        "labels misfit (spiral)",
        {**LINE, "model": {"kind": "logistic_regression"}, "data": SPIRAL},
        "data.n_classes",
    ),
    (
        "labels misfit (inline)",
        {**LINE, "model": {"kind": "logistic_regression"}, "data": {**INLINE, "y": [0, 2, 1]}},
        "data.y[1]",
    ),
    (
        "non-integer class label",
        {**LINE, "model": {"kind": "softmax_regression"}, "data": {**INLINE, "y": [0, 1.5, 1]}},
        "data.y[1]",
    ),
    (
        "class labels on a line",
        {**LINE, "model": {"kind": "softmax_regression"}},
        "data.kind",
    ),
    ("X/y mismatch", with_("data", {**INLINE, "y": [0, 1]}), "data.y"),
    ("ragged X", with_("data", {**INLINE, "X": [[0.0], [1.0, 2.0], [2.0]]}), "data.X[1]"),
    ("empty X", with_("data", {"kind": "inline", "X": [], "y": []}), "data.X"),
    ("string in X", with_("data", {**INLINE, "X": [[0.0], ["a"], [2.0]]}), "data.X[1][0]"),
    (
        "newton on an mlp",
        {**LINE, "model": {"kind": "mlp"}, "loss": "mse", "optimizer": {"kind": "newton"}},
        "optimizer.kind",
    ),
    ("newton with mae", {**LINE, "loss": "mae", "optimizer": {"kind": "newton"}}, "optimizer.kind"),
    (
        "given: unknown name",
        with_("init", {"kind": "given", "params": {"W": [[1.0]], "b": [0.0], "V": [1.0]}}),
        "init.params.V",
    ),
    (
        "given: wrong shape",
        with_("init", {"kind": "given", "params": {"W": [[1.0, 2.0]], "b": [0.0]}}),
        "init.params.W",
    ),
    (
        "given: missing tensor",
        with_("init", {"kind": "given", "params": {"W": [[1.0]]}}),
        "init.params",
    ),
    ("tags not strings", with_("tags", {"lab": 3}), "tags.lab"),
    ("a tag named like a kind", with_("tags", {"line": 3}), "tags.line"),
    (
        "bad given value",
        with_("init", {"kind": "given", "params": {"W": [["x"]], "b": [0.0]}}),
        "init.params.W[0][0]",
    ),
    ("x range empty", with_("data.x_max", -2.0), "data.x_max"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_422_naming_the_field_and_stores_nothing(client, case, body, field):
    r = client.post("/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    payload = r.json()
    fields = [d["field"] for d in payload["detail"]]
    assert field in fields, (field, payload)
    problem = next(d for d in payload["detail"] if d["field"] == field)
    assert len(problem["msg"]) > 10
    assert payload["message"].startswith(payload["detail"][0]["field"])
    assert "input" not in problem  # the body is never echoed back
    assert client.get("/v1/jobs").json()["jobs"] == []


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_refused(client, literal):
    body = (
        '{"model": {"kind": "linear_regression"}, "data": {"kind": "inline", '
        f'"X": [[0.0], [{literal}]], "y": [1.0, 2.0]}}, '
        '"optimizer": {"kind": "gd"}, "iterations": 5}'
    )
    r = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["detail"]] == ["data.X[1][0]"]
    assert "finite" in r.json()["detail"][0]["msg"]
    assert client.get("/v1/jobs").json()["jobs"] == []


def test_malformed_json_is_a_422_that_says_so(client):
    r = client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["message"]


def test_inline_data_above_the_limits_is_refused(db_url):
    settings = make_settings(db_url, max_inline_rows=5, max_inline_features=2)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        rows = with_(
            "data", {"kind": "inline", "X": [[float(i)] for i in range(6)], "y": [0.0] * 6}
        )
        r = client.post("/v1/jobs", json=rows)
        assert r.status_code == 422
        assert "GRADLAB_MAX_INLINE_ROWS" in r.json()["detail"][0]["msg"]
        wide = with_("data", {"kind": "inline", "X": [[1.0, 2.0, 3.0]], "y": [0.0]})
        r = client.post("/v1/jobs", json=wide)
        assert r.status_code == 422
        assert "GRADLAB_MAX_INLINE_FEATURES" in r.json()["detail"][0]["msg"]
        generated = with_("data", {"kind": "spiral", "n_per_class": 3})
        assert client.post("/v1/jobs", json=generated).status_code == 422
        assert client.get("/v1/jobs").json()["jobs"] == []


def test_a_body_above_the_byte_limit_gets_413(db_url):
    with TestClient(
        create_app(make_settings(db_url, max_body_bytes=4096)), base_url="http://localhost"
    ) as client:
        big = with_("data", {"kind": "inline", "X": [[0.5]] * 2000, "y": [0.0] * 2000})
        r = client.post("/v1/jobs", json=big)
        assert r.status_code == 413
        assert client.get("/v1/jobs").json()["jobs"] == []


# --- unknown ids, divergence, cancel, delete ----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "/metrics"),
        ("get", "/gradient-checks"),
        ("get", "/parameters"),
        ("post", "/cancel"),
        ("delete", ""),
    ],
)
def test_unknown_job_ids_are_404(client, method, path):
    r = client.request(method.upper(), f"/v1/jobs/0123456789abcdef{path}")
    assert r.status_code == 404
    assert "0123456789abcdef" in r.json()["message"]


def test_a_diverging_job_fails_as_diverged_and_the_worker_goes_on(client, drain):
    diverging = submit(client, with_("optimizer.learning_rate", 50.0) | {"iterations": 500})
    fine = submit(client, LINE)
    assert drain() == {"failed": 1, "succeeded": 1}

    job = client.get(f"/v1/jobs/{diverging['id']}").json()
    assert job["status"] == "failed"
    error = job["error"]
    assert error["type"] == "diverged"
    assert 0 < error["iteration"] < 500
    assert job["iterations_done"] == error["iteration"]
    assert str(error["iteration"]) in error["message"]
    last = client.get(f"/v1/jobs/{diverging['id']}/metrics").json()["points"][-1]
    assert last["iteration"] == error["iteration"] - 1
    assert repr(last["loss"])[:6] in error["message"] or f"{last['loss']:.6g}" in error["message"]
    assert client.get(f"/v1/jobs/{fine['id']}").json()["status"] == "succeeded"


def test_a_queued_job_is_cancelled_at_once_and_never_runs(client, drain):
    job = submit(client, LINE)
    r = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert drain() == {}
    job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "cancelled" and job["iterations_done"] == 0
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200  # idempotent


def test_a_finished_job_cannot_be_cancelled_but_can_be_deleted_with_its_rows(
    client, drain, settings
):
    job = submit(client, LINE)
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 409  # still queued
    drain()
    assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").status_code == 404

    from sqlalchemy import create_engine, text

    engine = create_engine(
        settings.database_url.replace("postgresql+psycopg", "postgresql+psycopg")
    )
    with engine.connect() as conn:
        for table in ("metric_chunks", "gradient_checks", "checkpoints", "attempts"):
            count = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE job_id = :j"), {"j": job["id"]}
            )
            assert count.scalar_one() == 0, table
    engine.dispose()


def test_parameters_are_409_before_anything_is_recorded(client):
    job = submit(client, LINE)
    r = client.get(f"/v1/jobs/{job['id']}/parameters")
    assert r.status_code == 409


# --- listing ----------------------------------------------------------------------------------


def test_list_filters_and_paginates_newest_first(client, drain):
    ids = []
    for i in range(5):
        tags = {"lab": "2", "group": "a" if i % 2 else "b"}
        ids.append(submit(client, {**LINE, "name": f"run-{i % 2}", "tags": tags})["id"])
    softmax = {**LINE, "model": {"kind": "softmax_regression"}, "data": SPIRAL}
    ids.append(submit(client, {**softmax, "name": "soft"})["id"])
    client.post(f"/v1/jobs/{ids[0]}/cancel")

    everything = client.get("/v1/jobs").json()
    assert [j["id"] for j in everything["jobs"]] == ids[::-1]
    assert everything["next_cursor"] is None

    def listed(query: str) -> list[str]:
        return [j["id"] for j in client.get(f"/v1/jobs?{query}").json()["jobs"]]

    assert listed("status=cancelled") == [ids[0]]
    assert listed("model=softmax_regression") == [ids[5]]
    assert listed("name=run-1") == [ids[3], ids[1]]
    assert listed("tag=group:a") == [ids[3], ids[1]]
    assert listed("tag=lab") == ids[4::-1]
    assert listed("tag=missing") == []

    seen, cursor = [], None
    while True:
        page = client.get(
            "/v1/jobs", params={"limit": 2, **({"cursor": cursor} if cursor else {})}
        ).json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert client.get("/v1/jobs?limit=501").status_code == 422
    assert client.get("/v1/jobs?status=sleeping").status_code == 422


# --- idempotency ------------------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_returns_the_same_job(client):
    first = client.post("/v1/jobs", json=LINE, headers={"Idempotency-Key": "abc-1"})
    again = client.post("/v1/jobs", json=LINE, headers={"Idempotency-Key": "abc-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    other = client.post("/v1/jobs", json=LINE, headers={"Idempotency-Key": "abc-2"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert len(client.get("/v1/jobs").json()["jobs"]) == 2


def test_reusing_a_key_for_a_different_spec_is_refused(client):
    client.post("/v1/jobs", json=LINE, headers={"Idempotency-Key": "k"})
    r = client.post("/v1/jobs", json={**LINE, "iterations": 41}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "header:Idempotency-Key"
    assert len(client.get("/v1/jobs").json()["jobs"]) == 1


def test_a_jobs_view_is_what_its_schema_validates_it_to(client, drain, settings):
    """``schemas.Job.view`` reads a row by the schema's own fields without validating it:
    the same JSON that validating the row against ``schemas.Job`` gives."""
    from service.jobs import repository, schemas
    from store.accounts import LOCAL
    from store.db import Database

    job_id = submit(client, {**LINE, "iterations": 3})["id"]
    failing = {**LINE, "optimizer": {"kind": "gd", "learning_rate": 1e6}, "iterations": 50}
    failed_id = submit(client, failing)["id"]
    drain()
    db = Database(settings.database_url, settings)
    try:
        with db.read_session() as session:
            for row in (
                repository.get_job(session, job_id, LOCAL),
                repository.get_job(session, failed_id, LOCAL),
            ):
                expected = schemas.Job.model_validate(row).model_dump(mode="json")
                assert schemas.Job.view(row) == expected
        assert client.get(f"/v1/jobs/{failed_id}").json()["error"]["type"] == "diverged"
    finally:
        db.dispose()
