"""A job's recorded points read back: JSON points, columns and CSV that agree, ranges that
cross chunk boundaries, deterministic downsampling. Long histories are streamed; what arrives
equals the same history read in short, non-streamed pieces — in every format."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.metrics.router import STREAM_ABOVE
from tests.conftest import make_settings, run_worker, synthetic_job
from tests.service.helpers import LINE, submit

# --- reading metrics back -------------------------------------------------------------------


@pytest.fixture
def trained(db_url):
    """A finished 250-iteration classifier, flushed in chunks of 7 so ranges cross chunks."""
    settings = make_settings(db_url, flush_iterations=7)
    spec = {
        "model": {"kind": "softmax_regression"},
        "data": {"kind": "spiral", "n_per_class": 20},
        "optimizer": {"kind": "sgd", "learning_rate": 1.0, "batch_size": 8},
        "iterations": 250,
    }
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        job = submit(client, spec)
        run_worker(settings)
        yield client, job["id"]


def test_csv_export_matches_the_json_points(trained):
    client, job_id = trained
    points = client.get(f"/v1/jobs/{job_id}/metrics").json()["points"]
    by_accept = client.get(f"/v1/jobs/{job_id}/metrics", headers={"accept": "text/csv"})
    by_format = client.get(f"/v1/jobs/{job_id}/metrics?format=csv")
    assert by_accept.text == by_format.text
    assert by_accept.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(by_format.text)))
    assert len(rows) == 250
    assert list(rows[0]) == ["iteration", "loss", "data_loss", "reg_loss", "grad_norm", "accuracy"]
    for row, point in zip(rows, points, strict=True):
        assert int(row["iteration"]) == point["iteration"]
        for key in ("loss", "data_loss", "reg_loss", "grad_norm", "accuracy"):
            assert float(row[key]) == point[key]  # the same shortest repr, exactly


def test_columns_hold_the_same_numbers_as_points(trained):
    client, job_id = trained
    points = client.get(f"/v1/jobs/{job_id}/metrics?start=3&end=200").json()["points"]
    body = client.get(f"/v1/jobs/{job_id}/metrics?format=columns&start=3&end=200").json()
    assert body["total"] == len(points) == 198
    columns = body["columns"]
    for key in points[0]:
        assert columns[key] == [p[key] for p in points]


@pytest.mark.parametrize(
    ("start", "end"), [(0, None), (5, 6), (7, 13), (13, 14), (100, 249), (240, 9999)]
)
def test_ranges_cross_chunk_boundaries_without_gaps_or_repeats(trained, start, end):
    client, job_id = trained
    query = f"start={start}" + (f"&end={end}" if end is not None else "")
    body = client.get(f"/v1/jobs/{job_id}/metrics?{query}").json()
    last = min(end if end is not None else 249, 249)
    assert [p["iteration"] for p in body["points"]] == list(range(start, last + 1))
    assert body["total"] == last - start + 1


def test_a_range_past_the_end_is_empty_and_a_reversed_one_is_refused(trained):
    client, job_id = trained
    body = client.get(f"/v1/jobs/{job_id}/metrics?start=500").json()
    assert body["total"] == 0 and body["points"] == []
    assert client.get(f"/v1/jobs/{job_id}/metrics?start=9&end=3").status_code == 422


@pytest.mark.parametrize("max_points", [3, 4, 10, 51, 249, 250, 1000])
@pytest.mark.parametrize(("start", "end"), [(0, None), (17, 180)])
def test_downsampling_keeps_the_ends_and_the_minimum_and_is_a_subset(
    trained, max_points, start, end
):
    client, job_id = trained
    query = f"start={start}" + (f"&end={end}" if end is not None else "")
    full = client.get(f"/v1/jobs/{job_id}/metrics?{query}").json()["points"]
    body = client.get(f"/v1/jobs/{job_id}/metrics?{query}&max_points={max_points}").json()
    small = body["points"]
    assert body["total"] == len(full)
    assert len(small) <= max_points
    assert body["downsampled"] == (len(full) > max_points)
    by_iteration = {p["iteration"]: p for p in full}
    assert all(by_iteration[p["iteration"]] == p for p in small)  # a subset, values intact
    iterations = [p["iteration"] for p in small]
    assert iterations == sorted(set(iterations))
    assert iterations[0] == full[0]["iteration"] and iterations[-1] == full[-1]["iteration"]
    assert min(p["loss"] for p in small) == min(p["loss"] for p in full)
    if max_points >= 4:
        assert max(p["loss"] for p in small) == max(p["loss"] for p in full)
    again = client.get(f"/v1/jobs/{job_id}/metrics?{query}&max_points={max_points}").json()
    assert again == body  # deterministic


def test_max_points_below_three_is_refused(trained):
    client, job_id = trained
    r = client.get(f"/v1/jobs/{job_id}/metrics?max_points=2")
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "query:max_points"


def test_csv_of_a_regression_leaves_accuracy_empty(client, drain):
    job = submit(client, LINE)
    drain()
    points = client.get(f"/v1/jobs/{job['id']}/metrics").json()["points"]
    text = client.get(f"/v1/jobs/{job['id']}/metrics?format=csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == LINE["iterations"]
    for row, point in zip(rows, points, strict=True):
        assert row["accuracy"] == "" and point["accuracy"] is None
        assert int(row["iteration"]) == point["iteration"]
        assert float(row["loss"]) == point["loss"]
        assert float(row["grad_norm"]) == point["grad_norm"]


# --- long histories, streamed ---------------------------------------------------------------


TINY = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 20},
    "optimizer": {"kind": "gd"},
    "iterations": 1,
}
N = STREAM_ABOVE * 2 + 1234


@pytest.fixture
def long_job(db_url, client):
    """A job that finished with N synthetic points (see ``tests.conftest.synthetic_job``)."""
    loss = np.abs(np.random.default_rng(0).standard_normal(N)).cumsum()[::-1] / N
    return synthetic_job(db_url, loss.tolist())


def pieces(client, job_id: str, fmt: str) -> list:
    step = STREAM_ABOVE // 2
    out = []
    for start in range(0, N, step):
        r = client.get(
            f"/v1/jobs/{job_id}/metrics?format={fmt}&start={start}&end={start + step - 1}"
        )
        assert "content-length" in r.headers  # short: sent whole
        out.append(r)
    return out


def test_streamed_points_equal_the_pieces(client, long_job):
    full = client.get(f"/v1/jobs/{long_job}/metrics")
    assert "content-length" not in full.headers  # long: streamed
    body = full.json()
    assert body["total"] == N and not body["downsampled"]
    stitched = [p for r in pieces(client, long_job, "points") for p in r.json()["points"]]
    assert body["points"] == stitched
    assert [p["iteration"] for p in stitched] == list(range(N))


def test_streamed_columns_equal_the_pieces(client, long_job):
    body = client.get(f"/v1/jobs/{long_job}/metrics?format=columns").json()
    parts = [r.json()["columns"] for r in pieces(client, long_job, "columns")]
    for name, values in body["columns"].items():
        assert values == [v for part in parts for v in part[name]], name


def test_streamed_csv_equals_the_pieces_byte_for_byte(client, long_job):
    full = client.get(f"/v1/jobs/{long_job}/metrics?format=csv").text
    parts = [r.text for r in pieces(client, long_job, "csv")]
    header = parts[0].splitlines(keepends=True)[0]
    assert full == header + "".join(p[len(header) :] for p in parts)
    rows = list(csv.DictReader(io.StringIO(full)))
    assert len(rows) == N and rows[-1]["iteration"] == str(N - 1)
