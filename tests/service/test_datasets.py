"""Uploaded datasets (``POST /v1/datasets``): CSV, .npy and .npz round trips, one row per
content, malformed files named by line or array, the size limits while streaming, who sees
what, and jobs and sweeps on ``{"kind": "dataset"}`` and on scikit-learn's bundled data."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.app import create_app
from store import datasets
from store.db import Database
from store.tables import Dataset, DatasetUpload
from tests.conftest import make_settings, run_worker
from tests.service.lab import Lab, make_lab

RNG = np.random.default_rng(3)
X = np.round(RNG.standard_normal((40, 3)), 6)
Y = (X[:, 0] - X[:, 2] > 0).astype(float)
SHA = datasets.content_hash(X, Y)


def csv_bytes(X: np.ndarray, y: np.ndarray, header: str = "a,b,c,label") -> bytes:
    lines = [header] + [
        ",".join(f"{v:.6f}" for v in row) + f",{t:g}" for row, t in zip(X, y, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode()


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def upload(client: TestClient, content: bytes, filename: str = "data.csv", headers=None, **form):
    files = {"file": (filename, content, "application/octet-stream")}
    return client.post("/v1/datasets", files=files, data=form, headers=headers or {})


@pytest.fixture
def lab(db_url: str) -> Lab:
    return make_lab(db_url)


@pytest.fixture
def lab_client(lab: Lab) -> Iterator[TestClient]:
    app = create_app(make_settings(lab.url, auth="required"))
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def counts(url: str) -> tuple[int, int]:
    db = Database(url, make_settings(url))
    try:
        with db.read_session() as s:
            return (
                s.scalar(select(func.count()).select_from(Dataset)),
                s.scalar(select(func.count()).select_from(DatasetUpload)),
            )
    finally:
        db.dispose()


def test_csv_npy_and_npz_round_trip_to_one_row_per_content(client, settings):
    first = upload(client, csv_bytes(X, Y), name="toy")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"] == SHA
    assert (body["rows"], body["features"], body["classes"]) == (40, 3, 2)
    assert body["columns"] == ["a", "b", "c"] and body["target"] == "label"
    assert body["name"] == "toy" and body["owner"] == "local" and body["shared"] is False
    # The same numbers as a .npy table and as a .npz: the same content, the same id, no new row.
    again = upload(client, npy_bytes(np.c_[X, Y]), "t.npy")
    assert again.status_code == 200 and again.json()["id"] == SHA
    assert upload(client, npz_bytes(X=X, y=Y), "t.npz").json()["id"] == SHA
    # A target named in the middle of the CSV.
    moved = "label,a,b,c\n" + "\n".join(
        f"{t:g}," + ",".join(f"{v:.6f}" for v in row) for row, t in zip(X, Y, strict=True)
    )
    assert upload(client, moved.encode(), target="label").json()["id"] == SHA
    assert counts(settings.database_url) == (1, 1)
    assert client.get(f"/v1/datasets/{SHA}").json() == body
    # Past one block of parsed rows (4096), with the byte-order mark a spreadsheet writes.
    x = np.arange(5000.0)[:, None] / 8
    long = upload(client, b"\xef\xbb\xbf" + csv_bytes(x, x[:, 0] * 2, header="x,y"))
    assert long.status_code == 201 and long.json()["columns"] == ["x"]
    assert long.json()["id"] == datasets.content_hash(x, x[:, 0] * 2)
    listed = client.get("/v1/datasets").json()["datasets"]
    assert [d["id"] for d in listed] == [long.json()["id"], SHA]  # newest first


MALFORMED = [
    (b"", "empty"),
    (b"a,b\n", "no rows"),
    (b"a,b,y\n1,2,0\n3,4\n", "line 3 has 2 values but the header has 3"),
    (b"a,b,y\n1,2,0\n3,x,1\n", "line 3, column 'b': 'x' is not a number"),
    (b"a,b,y\n1,2,0\n3,nan,1\n", "line 3, column 'b': nan is not a finite number"),
    (b"a,b,y\n\xff\xfe,1,1\n", "not UTF-8"),
    (npy_bytes(np.array([[1, None]], dtype=object), True), "Python objects"),
    (npy_bytes(np.array([[1.0, np.inf], [1.0, 0.0]])), "inf at [0, 1]"),
    (npy_bytes(np.array(["a", "b"])), "dtype <U1"),
    (npy_bytes(np.ones(3)), "1 dimensions"),
    (npz_bytes(X=X), "no array 'y'"),
    (npz_bytes(X=X, y=Y[:5]), "array y has 5 values but X has 40 rows"),
    (npz_bytes(X=X[:, :0], y=Y), "array X is empty"),
    (b"PK\x03\x04 not a zip", "not one"),
]


def test_a_malformed_file_is_a_422_naming_its_line_or_array(client, settings):
    for content, says in MALFORMED:
        answer = upload(client, content)
        assert answer.status_code == 422, answer.text
        error = answer.json()
        assert error["detail"][0]["field"] == "file"
        assert says in error["detail"][0]["msg"], error
    assert counts(settings.database_url) == (0, 0)


def test_an_unknown_target_column_names_the_target_field(client):
    answer = upload(client, csv_bytes(X, Y), target="nope")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "target"
    assert "'a', 'b', 'c', 'label'" in answer.json()["detail"][0]["msg"]


def test_limits_are_checked_while_streaming(sqlite_url):
    settings = make_settings(sqlite_url, max_body_bytes=4096, max_inline_rows=10)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        # Too many rows: refused at the 11th line of data, by the row limit.
        answer = upload(client, csv_bytes(X[:20], Y[:20]))
        assert answer.status_code == 422
        assert "line 12" in answer.json()["detail"][0]["msg"]
        # A body past GRADLAB_MAX_BODY_BYTES sent chunked (no Content-Length): 413 once it
        # grows past the limit, however much more the client would send.
        sent = []

        def chunks() -> Iterator[bytes]:
            boundary = b"--b\r\nContent-Disposition: form-data; name=file; filename=x.csv\r\n\r\n"
            yield boundary + b"a,y\n"
            for _ in range(1000):
                sent.append(1)
                yield b"1.0,0\n" * 100

        answer = client.post(
            "/v1/datasets",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert answer.status_code == 413
        assert answer.json()["type"] == "body_too_large"
    assert counts(sqlite_url) == (0, 0)


def test_a_students_dataset_is_theirs_and_instructors_and_a_shared_one_everyones(lab, lab_client):
    c = lab_client
    alice = upload(c, csv_bytes(X, Y), headers=lab.headers("alice"))
    assert alice.status_code == 201
    path = f"/v1/datasets/{SHA}"
    assert c.get(path, headers=lab.headers("bob")).status_code == 404
    assert c.get("/v1/datasets", headers=lab.headers("bob")).json()["datasets"] == []
    assert c.delete(path, headers=lab.headers("bob")).status_code == 404
    assert c.get(path, headers=lab.headers("ian")).json()["owner"] == "alice"
    # Bob uploading the same numbers stores nothing new but gives him his own upload.
    bob = upload(c, npz_bytes(X=X, y=Y), headers=lab.headers("bob"))
    assert bob.status_code == 201 and bob.json()["owner"] == "bob"
    assert counts(lab.url) == (1, 2)
    # Only an instructor may share; a shared dataset is everyone's to see and use.
    refused = upload(c, npy_bytes(np.c_[X, 1 - Y]), headers=lab.headers("alice"), shared="true")
    assert refused.status_code == 403
    shared = upload(c, npy_bytes(np.c_[X, 1 - Y]), headers=lab.headers("ian"), shared="true")
    assert shared.status_code == 201 and shared.json()["shared"] is True
    seen = c.get("/v1/datasets", headers=lab.headers("alice")).json()["datasets"]
    assert sorted((d["owner"], d["shared"]) for d in seen) == [("alice", False), ("ian", True)]
    job = {
        "model": {"kind": "logistic_regression"},
        "data": {"kind": "dataset", "id": shared.json()["id"]},
        "optimizer": {"kind": "gd"},
        "iterations": 5,
    }
    assert c.post("/v1/jobs", json=job, headers=lab.headers("bob")).status_code == 201
    theirs = {**job, "data": {"kind": "dataset", "id": SHA}}
    # Carol's... no: a student naming a dataset only another student uploaded gets a 422.
    c.delete(path, headers=lab.headers("bob"))
    answer = c.post("/v1/jobs", json=theirs, headers=lab.headers("bob"))
    assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "data.id"
    assert (
        c.delete(f"/v1/datasets/{shared.json()['id']}", headers=lab.headers("bob")).status_code
        == 403
    )


def test_jobs_and_sweeps_train_on_an_upload_which_cannot_be_deleted_while_used(
    client, settings, drain
):
    dataset_id = upload(client, csv_bytes(X, Y)).json()["id"]
    spec = {
        "model": {"kind": "logistic_regression"},
        "data": {"kind": "dataset", "id": dataset_id},
        "optimizer": {"kind": "gd", "learning_rate": 0.5},
        "iterations": 20,
    }
    job = client.post("/v1/jobs", json=spec).json()
    assert job["spec"]["data"]["kind"] == "dataset" and job["spec"]["data"]["id"] == dataset_id
    assert job["data"]["rows"] == 40
    sweep = client.post(
        "/v1/sweeps", json={"base": spec, "grid": {"optimizer.learning_rate": [1.0]}}
    )
    assert sweep.status_code == 201, sweep.text
    assert drain()["succeeded"] == 2
    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded" and done["summary"]["final_accuracy"] > 0.8
    data = client.get(f"/v1/jobs/{job['id']}/data").json()
    np.testing.assert_array_equal(data["X"], X)
    conflict = client.delete(f"/v1/datasets/{dataset_id}")
    assert conflict.status_code == 409 and "2 job(s)" in conflict.json()["message"]
    for j in client.get("/v1/jobs").json()["jobs"]:
        assert client.delete(f"/v1/jobs/{j['id']}").status_code == 204
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert counts(settings.database_url) == (0, 0)
    missing = client.post("/v1/jobs", json=spec)
    assert missing.status_code == 422 and missing.json()["detail"][0]["field"] == "data.id"


def test_the_bundled_datasets_are_sklearns_and_the_catalog_knows_their_shapes():
    from sklearn import datasets as sk  # the reference: scikit-learn's own loaders

    from engine import catalog
    from engine.datasets import SKLEARN, sklearn

    for name in SKLEARN:
        shape = catalog.data_shape("sklearn", {"name": name})
        ours, theirs = sklearn(name, standardize=False), getattr(sk, f"load_{name}")()
        if name == "diabetes":
            theirs = sk.load_diabetes(scaled=False)
        np.testing.assert_allclose(ours.X, theirs.data)
        np.testing.assert_array_equal(ours.y, theirs.target)
        assert (shape.rows, shape.features) == theirs.data.shape
        scaled = sklearn(name).X
        np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-9)


def test_a_job_trains_on_sklearns_iris(sqlite_url):
    settings = make_settings(sqlite_url)  # one backend: the data never reaches the database
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        _train_on_iris(client, lambda: run_worker(settings))


def _train_on_iris(client: TestClient, drain) -> None:
    spec = {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "sklearn", "name": "iris"},
        "optimizer": {"kind": "gd", "learning_rate": 0.5},
        "iterations": 100,
    }
    job = client.post("/v1/jobs", json=spec).json()
    assert job["data"] | {"href": ""} == {
        "kind": "sklearn",
        "sha256": None,
        "rows": 150,
        "features": 4,
        "classes": 3,
        "href": "",
    }
    assert drain()["succeeded"] == 1
    assert client.get(f"/v1/jobs/{job['id']}").json()["summary"]["final_accuracy"] > 0.9
    wrong = client.post("/v1/jobs", json={**spec, "model": {"kind": "logistic_regression"}})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "data.name"
    real = {**spec, "data": {"kind": "sklearn", "name": "diabetes"}}
    assert client.post("/v1/jobs", json=real).json()["detail"][0]["field"] == "data.name"
