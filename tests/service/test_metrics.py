"""Long histories are streamed; what arrives equals the same history read in short,
non-streamed pieces — in every format."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from service.jobs import service as jobs_service
from service.metrics.router import STREAM_ABOVE
from store.chunks import chunk_row
from store.codec import pack_state
from store.db import Database
from store.queue import SUCCEEDED, Flush, Queue
from store.spec import JobSpec
from tests.conftest import make_settings
from worker.runner import records_block

TINY = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 20},
    "optimizer": {"kind": "gd"},
    "iterations": 1,
}
N = STREAM_ABOVE * 2 + 1234


@pytest.fixture
def long_job(db_url, client):
    """A job that finished with N synthetic points, written through the worker's flush path
    (records → blocks → chunks of 1,000 → fenced flushes) without training anything."""
    settings = make_settings(db_url)
    db = Database(db_url, settings)
    try:
        with db.write_session() as session:
            spec = JobSpec.model_validate({**TINY, "iterations": N})
            job_id = jobs_service.submit(session, spec, settings)[0].id
        queue = Queue(db, settings, "test")
        claim = queue.claim()
        assert claim is not None and claim.job_id == job_id
        loss = np.abs(np.random.default_rng(0).standard_normal(N)).cumsum()[::-1] / N
        records = [(i, float(v), float(v), 0.0, 0.5, 0.75) for i, v in enumerate(loss.tolist())]
        params = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
        state = pack_state({"iteration": 0, "params": params, "velocity": {}})
        for first in range(0, N, 1000):
            block = records_block(records[first : first + 1000])
            last = first + len(block) - 1
            flush = Flush(
                chunk=chunk_row(job_id, block),
                state=state,
                iterations_done=last + 1,
                final_loss=float(block[-1, 1]),
                final_accuracy=0.75,
                best_loss=float(block[-1, 1]),
                best_iteration=last,
            )
            queue.flush(claim, flush, SUCCEEDED if last == N - 1 else None)
    finally:
        db.dispose()
    return job_id


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
