"""Long histories are streamed; what arrives equals the same history read in short,
non-streamed pieces — in every format."""

from __future__ import annotations

import csv
import io

import pytest

from bench.context import Context
from service.metrics.router import STREAM_ABOVE

TINY = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 20},
    "optimizer": {"kind": "gd"},
    "iterations": 1,
}
N = STREAM_ABOVE * 2 + 1234


@pytest.fixture
def long_job(db_url, tmp_path, client):
    ctx = Context(db_url, tmp_path)
    claim = ctx.running_job({**TINY, "iterations": N})
    ctx.write_points(claim, N, finish=True)
    ctx.close()
    return claim.job_id


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
