"""Inputs that once got a 500 or an off-format answer from a real server, each by name: every
one is now a 4xx with the JSON error body naming what is wrong, and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from store.spec import MAX_COUNT
from tests.conftest import make_settings
from tests.service.helpers import LINE, submit

JSON = {"content-type": "application/json"}
LIMIT = 16 * 1024


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    app = create_app(make_settings(db_url, max_body_bytes=LIMIT))
    with TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as c:
        yield c


def assert_error(r, status: int, field: str | None = None, kind: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"message", "type", "detail"}
    if field is not None:
        assert [d["field"] for d in body["detail"]][:1] == [field], body
    if kind is not None:
        assert body["type"] == kind
    return body


def assert_nothing_stored(client: TestClient) -> None:
    assert client.get("/v1/jobs").json()["jobs"] == []


SGD = {**LINE, "optimizer": {"kind": "sgd", "learning_rate": 0.1}}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**SGD, "optimizer": {"kind": "sgd", "batch_size": 2**64}}, "optimizer.batch_size"),
        ({**LINE, "gradient_check": {"max_coordinates": 2**64}}, "gradient_check.max_coordinates"),
        ({**LINE, "gradient_check": {"every": 2**64}}, "gradient_check.every"),
        ({**LINE, "iterations": 10**300}, "iterations"),
        ({**LINE, "data": {"kind": "line", "n_samples": -(2**63) - 1}}, "data.n_samples"),
    ],
)
def test_integers_past_64_bits_in_a_spec_are_a_422_naming_the_field(client, spec, field):
    assert_error(client.post("/v1/jobs", json=spec), 422, field)
    assert_nothing_stored(client)


def test_a_batch_above_the_row_limit_is_refused_by_its_setting(db_url):
    with TestClient(
        create_app(make_settings(db_url, max_inline_rows=100)), base_url="http://localhost"
    ) as client:
        spec = {**SGD, "optimizer": {"kind": "sgd", "batch_size": 101}}
        body = assert_error(client.post("/v1/jobs", json=spec), 422, "optimizer.batch_size")
        assert "GRADLAB_MAX_INLINE_ROWS" in body["message"]
        spec = {**SGD, "optimizer": {"kind": "sgd", "batch_size": 100}}
        assert client.post("/v1/jobs", json=spec).status_code == 201


@pytest.mark.parametrize("value", [2**64, 2**63, -(2**63) - 1])
def test_integers_past_64_bits_in_a_sweep_grid_are_a_422_naming_the_entry(client, value):
    grid = {"optimizer.batch_size": [8, value]}
    r = client.post("/v1/sweeps", json={"base": SGD, "grid": grid})
    assert_error(r, 422, "grid.optimizer.batch_size[1]")
    r = client.post("/v1/sweeps", json={"base": SGD, "grid": {"l2": [0, value]}})
    assert_error(r, 422, "grid.l2[1]")
    assert_nothing_stored(client)


def test_a_grid_value_that_fits_64_bits_but_not_its_field_names_the_entry(client):
    grid = {"l2": [0.0, 0.1], "optimizer.batch_size": [8, MAX_COUNT + 1]}
    body = assert_error(
        client.post("/v1/sweeps", json={"base": SGD, "grid": grid}),
        422,
        "grid.optimizer.batch_size",
    )
    assert "optimizer.batch_size" in body["detail"][0]["msg"]
    assert_nothing_stored(client)


@pytest.mark.parametrize("tag", ["k\x00:v", "k:v\x00", 'k"ey', "k\\ey", "k\x1fey", "", ":v"])
def test_a_tag_filter_no_tag_can_match_is_a_422_naming_tag(client, tag):
    submit(client, {**LINE, "tags": {"k": "v"}})
    assert_error(client.get("/v1/jobs", params={"tag": tag}), 422, "query:tag")


def test_a_tag_key_that_breaks_a_json_path_is_refused_at_submission(client):
    for key in ['a"b', "a\\b", "a\x00", "tab\there"]:
        r = client.post("/v1/jobs", json={**LINE, "tags": {key: "v"}})
        assert_error(r, 422)
        assert r.json()["detail"][0]["field"].startswith("tags")
    assert_nothing_stored(client)


def test_tag_filters_with_every_allowed_character_still_find_their_jobs(client):
    keys = ["a.b", "a[0]", "$.x", "it's", "ключ", "🙂"]
    ids = {key: submit(client, {**LINE, "tags": {key: "v:1"}})["id"] for key in keys}
    for key, job_id in ids.items():
        listed = client.get("/v1/jobs", params={"tag": f"{key}:v:1"}).json()["jobs"]
        assert [j["id"] for j in listed] == [job_id], key


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=9223372036854775808", "query:start"),
        ("start=1e20", "query:start"),
        ("end=18446744073709551616", "query:end"),
        ("start=" + "9" * 300, "query:start"),
    ],
)
def test_metrics_ranges_past_the_bounds_are_a_422(client, query, field):
    job = submit(client, LINE)
    assert_error(client.get(f"/v1/jobs/{job['id']}/metrics?{query}"), 422, field)


@pytest.mark.parametrize(
    "path",
    ["/v1/jobs/a%00b", "/v1/jobs/a%00b/metrics", "/v1/sweeps/a%00b", "/v1/jobs?name=a%00"],
)
def test_a_nul_in_an_id_or_a_filter_is_a_422(client, path):
    body = assert_error(client.get(path), 422)
    assert "NUL" in body["message"]


def test_a_nul_in_a_name_is_refused(client):
    assert_error(client.post("/v1/jobs", json={**LINE, "name": "a\x00b"}), 422, "name")
    r = client.post("/v1/sweeps", json={"name": "\x00", "base": LINE, "grid": {"l2": [0]}})
    assert_error(r, 422, "name")
    assert_nothing_stored(client)


@pytest.mark.parametrize("route", ["/v1/jobs", "/v1/sweeps"])
def test_a_body_over_the_limit_is_a_json_413_with_or_without_content_length(client, route):
    big = json.dumps({**LINE, "name": "x" * LIMIT}).encode()
    r = client.post(route, content=big, headers=JSON)  # with Content-Length
    body = assert_error(r, 413, kind="body_too_large")
    assert "GRADLAB_MAX_BODY_BYTES" in body["message"]

    def chunks() -> Iterator[bytes]:
        yield from (big[i : i + 4096] for i in range(0, len(big), 4096))

    r = client.post(route, content=chunks(), headers=JSON)  # chunked
    assert "content-length" not in r.request.headers
    assert_error(r, 413, kind="body_too_large")
    assert_nothing_stored(client)


@pytest.mark.parametrize("route", ["/v1/jobs", "/v1/sweeps"])
@pytest.mark.parametrize(
    "raw",
    [b'{"name": "\xff"}', b"\xc3\x28", b"[" * 2000, b'{"iterations": ' + b"1" * 4400 + b"}"],
    ids=["not-utf8", "bad-sequence", "too-deep", "4400-digit-integer"],
)
def test_a_body_json_cannot_read_is_the_422_of_malformed_json(client, route, raw):
    body = assert_error(client.post(route, content=raw, headers=JSON), 422, "body")
    assert body["detail"][0]["type"] == "json_invalid"
    assert body["message"].startswith("body: is not valid JSON")
    assert_nothing_stored(client)


def test_a_body_that_is_not_json_names_the_body_not_an_offset(client):
    body = assert_error(client.post("/v1/jobs", content=b"nope", headers=JSON), 422, "body")
    assert body["detail"][0]["loc"] == ["body"]
