"""A job's points as Arrow and Parquet, equal to the JSON columns in every reading (whole,
by range, downsampled, streamed), and a server without pyarrow saying so; and the CSV
writer, byte for byte the row-by-row writer it replaced."""

from __future__ import annotations

import io
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

import migrations as migrate
from service.app import create_app
from service.metrics.csvref import csv_lines_by_row
from service.metrics.router import STREAM_ABOVE
from service.metrics.service import CSV_HEADER, _csv_lines
from tests.conftest import make_settings, run_worker, synthetic_job
from tests.service.helpers import LINE, submit

SOFTMAX = {
    "model": {"kind": "softmax_regression"},
    "data": {"kind": "spiral", "n_per_class": 20},
    "optimizer": {"kind": "gd", "learning_rate": 1.0},
    "iterations": 120,
}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """A classifier (flushed in chunks of 7) and a regression, both finished, on SQLite:
    the formats share the block reader with CSV and JSON, which run on both databases."""
    url = f"sqlite:///{tmp_path_factory.mktemp('columnar') / 'gradlab.db'}"
    migrate.upgrade(url)
    settings = make_settings(url, flush_iterations=7)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        ids = [submit(client, SOFTMAX)["id"], submit(client, LINE)["id"]]
        run_worker(settings)
        yield client, ids


def arrow(body: bytes) -> pa.Table:
    return pa.ipc.open_stream(body).read_all()


def as_json_columns(table: pa.Table) -> dict[str, list]:
    return {name: table.column(name).to_pylist() for name in table.column_names}


@pytest.mark.parametrize("query", ["", "start=3&end=100", "max_points=10", "start=999"])
def test_arrow_and_parquet_hold_the_json_columns(jobs, query):
    client, ids = jobs
    for job_id in ids:
        url = f"/v1/jobs/{job_id}/metrics?{query}"
        body = client.get(f"{url}&format=columns").json()
        r = client.get(f"{url}&format=arrow")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
        assert r.headers["content-disposition"].endswith(f'{job_id}.arrows"')
        table = arrow(r.content)
        assert as_json_columns(table) == body["columns"]  # None where JSON has null
        assert table.schema.field("iteration").type == pa.int64()
        meta = table.schema.metadata
        assert meta[b"job_id"] == job_id.encode()
        assert int(meta[b"total"]) == body["total"]
        assert meta[b"downsampled"] == str(body["downsampled"]).lower().encode()
        p = client.get(f"{url}&format=parquet")
        assert p.headers["content-type"] == "application/vnd.apache.parquet"
        assert pq.read_table(io.BytesIO(p.content)).equals(table)


def test_accept_headers_choose_arrow_and_parquet(jobs):
    client, (job_id, _) = jobs
    url = f"/v1/jobs/{job_id}/metrics"
    by_format = client.get(f"{url}?format=arrow").content
    by_accept = client.get(url, headers={"accept": "application/vnd.apache.arrow.stream"})
    assert by_accept.content == by_format
    by_accept = client.get(url, headers={"accept": "application/vnd.apache.parquet"})
    assert by_accept.headers["content-type"] == "application/vnd.apache.parquet"


def test_a_regression_has_null_accuracy(jobs):
    client, (_, line) = jobs
    table = arrow(client.get(f"/v1/jobs/{line}/metrics?format=arrow").content)
    assert table.num_rows == LINE["iterations"]
    assert table.column("accuracy").null_count == table.num_rows
    assert table.column("loss").null_count == 0


def test_without_pyarrow_the_server_answers_406_and_says_how(jobs, monkeypatch):
    client, (job_id, _) = jobs
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    for fmt in ("arrow", "parquet"):
        r = client.get(f"/v1/jobs/{job_id}/metrics?format={fmt}")
        assert r.status_code == 406
        assert r.json()["type"] == "not_acceptable"
        assert "pip install 'gradlab[arrow]'" in r.json()["message"]
    assert client.get(f"/v1/jobs/{job_id}/metrics?format=columns").status_code == 200


def test_a_long_history_streams_as_arrow_equal_to_the_columns(sqlite_url):
    n = STREAM_ABOVE + 4321
    loss = np.linspace(2.0, 0.1, n)
    job_id = synthetic_job(sqlite_url, loss.tolist())
    with TestClient(create_app(make_settings(sqlite_url)), base_url="http://localhost") as c:
        r = c.get(f"/v1/jobs/{job_id}/metrics?format=arrow")
        assert "content-length" not in r.headers  # streamed
        reader = pa.ipc.open_stream(r.content)
        batches = list(reader)
        assert len(batches) > 1  # a batch per block, not one built whole
        table = pa.Table.from_batches(batches)
        assert table.column("iteration").to_pylist() == list(range(n))
        np.testing.assert_array_equal(table.column("loss").to_numpy(), loss)
        parquet = pq.read_table(
            io.BytesIO(c.get(f"/v1/jobs/{job_id}/metrics?format=parquet").content)
        )
        assert parquet.equals(table)
        csv = c.get(f"/v1/jobs/{job_id}/metrics?format=csv").content
        block = np.column_stack(
            [np.arange(n), loss, loss, np.zeros(n), np.full(n, 0.5), np.full(n, 0.75)]
        )
        assert csv == CSV_HEADER + csv_lines_by_row(block)


# --- CSV, byte for byte -------------------------------------------------------------------


def test_csv_of_real_jobs_is_byte_identical_to_the_row_writer(jobs):
    client, ids = jobs
    for job_id in ids:
        points = client.get(f"/v1/jobs/{job_id}/metrics").json()["points"]
        rows = [[np.nan if v is None else v for v in p.values()] for p in points]
        expected = CSV_HEADER + csv_lines_by_row(np.array(rows, dtype=float))
        assert client.get(f"/v1/jobs/{job_id}/metrics?format=csv").content == expected


@pytest.mark.parametrize("first", [0, 7, 95, 999_990, 10**9 - 3, 2**31 - 60])
@pytest.mark.parametrize("case", ["classifier", "regression", "some accuracy", "nan loss"])
def test_csv_lines_equal_the_row_writer_at_every_digit_count(first, case):
    rng = np.random.default_rng(first)
    n = 50
    block = np.column_stack(
        [np.arange(first, first + n), rng.random((n, 5)) * 10.0 ** rng.integers(-8, 8, (n, 5))]
    )
    block[::4, 1] = 1.0  # integral floats print as 1.0
    block[::5, 3] = 0.0
    if case == "regression":
        block[:, 5] = np.nan
    elif case == "some accuracy":
        block[::2, 5] = np.nan
    elif case == "nan loss":
        block[1::3, 1] = np.nan
    for size in (1, 2, n):
        assert _csv_lines(block[:size]) == csv_lines_by_row(block[:size])
