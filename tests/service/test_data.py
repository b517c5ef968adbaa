"""Data is not the spec: a job's JSON, the list and a sweep carry a summary of inline data and
a link to its arrays, which are stored once by content hash (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from store import datasets
from store.db import Database
from store.tables import Dataset
from tests.service.helpers import LINE, submit

RNG = np.random.default_rng(7)
X = RNG.standard_normal((120, 2)) * 1e3  # full-precision float64 values
Y = (X[:, 0] + X[:, 1] > 0).astype(float)
INLINE = {"kind": "inline", "X": X.tolist(), "y": Y.tolist()}
SOFTMAX = {
    "model": {"kind": "softmax_regression"},
    "data": INLINE,
    "optimizer": {"kind": "gd", "learning_rate": 1e-4},
    "iterations": 30,
}
SHA = datasets.content_hash(X, Y)


def dataset_rows(settings) -> int:
    db = Database(settings.database_url, settings)
    try:
        with db.read_session() as session:
            return session.scalar(select(func.count()).select_from(Dataset))
    finally:
        db.dispose()


def assert_no_arrays(value) -> None:
    """No list of numbers longer than a spec's own (references, hidden sizes) anywhere."""
    if isinstance(value, dict):
        assert "X" not in value and "y" not in value, value.keys()
        for inner in value.values():
            assert_no_arrays(inner)
    elif isinstance(value, list):
        assert len(value) < 10 or not all(isinstance(v, float | int) for v in value)
        for inner in value:
            assert_no_arrays(inner)


def test_a_jobs_json_has_the_datas_summary_and_a_link_not_its_arrays(client):
    job = submit(client, SOFTMAX)
    assert_no_arrays(job)
    summary = {"kind": "inline", "sha256": SHA, "rows": 120, "features": 2, "classes": 2}
    assert job["spec"]["data"] == summary
    assert job["data"] == {**summary, "href": f"/v1/jobs/{job['id']}/data"}
    for shown in (client.get(f"/v1/jobs/{job['id']}").json(), client.get("/v1/jobs").json()):
        assert_no_arrays(shown)
    assert client.get(f"/v1/jobs/{job['id']}").json() == job
    assert client.get("/v1/jobs").json()["jobs"][0]["data"] == job["data"]


def test_data_returns_the_posted_arrays_exactly(client):
    job = submit(client, SOFTMAX)
    r = client.get(job["data"]["href"])
    assert r.status_code == 200, r.text
    got = r.json()
    assert set(got) == {"X", "y"}
    np.testing.assert_array_equal(np.array(got["X"]), X)  # bit for bit, not approximately
    np.testing.assert_array_equal(np.array(got["y"]), Y)
    assert client.get("/v1/jobs/nope/data").status_code == 404


def test_generated_data_has_a_summary_and_data_says_it_is_not_stored(client):
    job = submit(client, {**LINE, "data": {"kind": "line", "n_samples": 50}})
    assert job["data"] == {
        "kind": "line",
        "sha256": None,
        "rows": 50,
        "features": 1,
        "classes": None,
        "href": f"/v1/jobs/{job['id']}/data",
    }
    r = client.get(job["data"]["href"])
    assert r.status_code == 409
    assert r.json()["type"] == "not_applicable"
    assert "generated line dataset" in r.json()["message"]


def test_the_same_data_in_two_jobs_is_stored_once(client, settings):
    a = submit(client, SOFTMAX)
    # the same numbers written otherwise (ints for whole labels) are the same content
    b = submit(client, {**SOFTMAX, "data": {**INLINE, "y": [int(v) for v in Y]}, "l2": 0.1})
    assert a["data"]["sha256"] == b["data"]["sha256"] == SHA
    assert dataset_rows(settings) == 1
    other = {**INLINE, "y": (1 - Y).tolist()}
    c = submit(client, {**SOFTMAX, "data": other})
    assert c["data"]["sha256"] != SHA
    assert dataset_rows(settings) == 2


def test_a_256_job_sweep_over_inline_data_stores_one_dataset(client, settings):
    body = {
        "name": "big",
        "base": SOFTMAX,
        "grid": {"l2": [i / 1000 for i in range(256)]},
    }
    r = client.post("/v1/sweeps", json=body)
    assert r.status_code == 201, r.text
    sweep = r.json()
    assert len(sweep["jobs"]) == 256
    assert_no_arrays({k: v for k, v in sweep.items() if k != "grid"})  # the grid is 256 long
    assert sweep["base"]["data"]["sha256"] == SHA
    assert sweep["data"]["href"] == f"/v1/jobs/{sweep['jobs'][0]['id']}/data"
    assert dataset_rows(settings) == 1
    listed = client.get("/v1/jobs", params={"sweep_id": sweep["id"], "limit": 500}).json()["jobs"]
    assert {j["data"]["sha256"] for j in listed} == {SHA}
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["base"] == sweep["base"]


def test_a_sweep_whose_grid_changes_the_data_stores_each_dataset(client, settings):
    ys = [Y.tolist(), (1 - Y).tolist(), Y.tolist()]
    r = client.post("/v1/sweeps", json={"base": SOFTMAX, "grid": {"data.y": ys}})
    assert r.status_code == 201, r.text
    jobs = [client.get(f"/v1/jobs/{j['id']}").json() for j in r.json()["jobs"]]
    hashes = [j["data"]["sha256"] for j in jobs]
    assert hashes[0] == hashes[2] == SHA != hashes[1]
    assert dataset_rows(settings) == 2
    flipped = client.get(jobs[1]["data"]["href"]).json()
    np.testing.assert_array_equal(np.array(flipped["y"]), 1 - Y)


def test_an_idempotency_key_holds_to_the_datas_content(client, settings):
    key = {"Idempotency-Key": "data-key"}
    first = client.post("/v1/jobs", json=SOFTMAX, headers=key)
    assert first.status_code == 201
    same = {**SOFTMAX, "data": {**INLINE, "y": [int(v) for v in Y]}}  # same numbers
    again = client.post("/v1/jobs", json=same, headers=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = {**SOFTMAX, "data": {**INLINE, "y": (1 - Y).tolist()}}
    r = client.post("/v1/jobs", json=changed, headers=key)
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "idempotency_key_reused"
    assert len(client.get("/v1/jobs").json()["jobs"]) == 1


def test_a_job_trains_from_its_stored_data_and_draws_its_fit(client, drain):
    job = submit(client, {**SOFTMAX, "iterations": 200, "optimizer": {"kind": "gd"}})
    assert drain()["succeeded"] == 1
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done["error"]
    assert done["iterations_done"] == 200
    assert done["summary"]["final_accuracy"] > 0.9  # the classes are split by a line
    assert done["gradient_checks_passed"] is True
    assert client.get(f"/v1/jobs/{job['id']}/plots/fit.png").status_code == 200


@pytest.mark.parametrize("bad", ["X", "y"])
def test_bad_inline_arrays_still_name_the_element(client, settings, bad):
    data = {"kind": "inline", "X": [[0.0, 1.0], [1.0, "a"]], "y": [0, 1]}
    if bad == "y":
        data = {"kind": "inline", "X": [[0.0, 1.0], [1.0, 2.0]], "y": [0, None]}
    r = client.post("/v1/jobs", json={**SOFTMAX, "data": data})
    assert r.status_code == 422
    field = r.json()["detail"][0]["field"]
    assert field == ("data.X[1][1]" if bad == "X" else "data.y[1]")
    assert dataset_rows(settings) == 0
