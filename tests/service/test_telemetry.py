"""GET /metrics in one process (the real serve is tests/e2e/test_telemetry_serve.py), the job
transitions' log records, and the body errors every route with a body answers alike."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from store.telemetry import RequestMetrics
from tests.conftest import make_settings

SPEC = {
    "model": {"kind": "linear_regression"},
    "data": {"kind": "line", "n_samples": 20},
    "optimizer": {"kind": "gd", "learning_rate": 0.1},
    "iterations": 5,
}
BODY_ROUTES = ("/v1/jobs", "/v1/sweeps", "/v1/gradient-checks", "/v1/users")


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def requests_of(found: dict, method: str, route: str, status: str) -> float:
    labels = tuple(sorted({"method": method, "route": route, "status": status}.items()))
    return found.get(("gradlab_http_requests_total", labels), 0.0)


def test_requests_are_counted_by_route_template_method_and_status_class(client):
    before = scrape(client)
    for job_id in ("a1", "b2", "c3"):
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.post("/v1/jobs", json=SPEC).status_code == 201
    assert client.request("BREW", "/v1/jobs").status_code == 405
    after = scrape(client)

    def delta(method: str, route: str, status: str) -> float:
        return requests_of(after, method, route, status) - requests_of(
            before, method, route, status
        )

    assert delta("GET", "/v1/jobs/{job_id}", "4xx") == 3
    assert delta("POST", "/v1/jobs", "2xx") == 1
    assert delta("other", "/v1/jobs", "4xx") == 1  # a made-up method is one label, "other"
    assert not [key for key in after if ("route", "/v1/jobs/a1") in key[1]]


def test_request_histograms_put_a_value_on_a_bound_in_that_bucket():
    metrics = RequestMetrics(buckets=(0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 0.1, 3.0):
        metrics.observe("GET", "/healthz", 200, seconds)
    metrics.observe("PROPFIND", "-", 405, 0.2)
    families = {f.name: f for f in metrics.collect()}
    buckets = {
        s.labels["le"]: s.value
        for s in families["gradlab_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["method"] == "GET"
    }
    assert buckets == {"0.01": 2, "0.1": 4, "+Inf": 5}
    totals = {
        (s.labels["method"], s.labels["status"]): s.value
        for s in families["gradlab_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert totals == {("GET", "2xx"): 5, ("other", "4xx"): 1}


def test_job_gauges_come_from_the_database_and_each_transition_is_logged(client, drain, caplog):
    caplog.set_level(logging.INFO, logger="gradlab.jobs")
    client.app.state.job_gauges.ttl = 0  # no cache: each scrape counts afresh
    ids = [client.post("/v1/jobs", json=SPEC).json()["id"] for _ in range(3)]
    found = scrape(client)
    assert found[("gradlab_jobs", (("status", "queued"),))] == 3
    assert found[("gradlab_queue_depth", ())] == 3
    client.post(f"/v1/jobs/{ids[0]}/cancel")
    drain()
    found = scrape(client)
    assert found[("gradlab_jobs", (("status", "succeeded"),))] == 2
    assert found[("gradlab_jobs", (("status", "cancelled"),))] == 1
    assert found[("gradlab_queue_depth", ())] == 0
    # Each transition once, with its fields (the JSON log's keys).
    moves = [
        (r.job_id, r.owner, getattr(r, "from"), r.to, r.attempt)
        for r in caplog.records
        if r.name == "gradlab.jobs"
    ]
    assert moves == [
        (ids[0], "local", "queued", "cancelled", 0),
        (ids[1], "local", "queued", "running", 1),
        (ids[1], "local", "running", "succeeded", 1),
        (ids[2], "local", "queued", "running", 1),
        (ids[2], "local", "running", "succeeded", 1),
    ]


def test_the_job_counts_are_cached_briefly(client):
    first = scrape(client)[("gradlab_queue_depth", ())]
    client.post("/v1/jobs", json=SPEC)
    assert scrape(client)[("gradlab_queue_depth", ())] == first  # within CACHE_SECONDS
    client.app.state.job_gauges._until = 0.0  # as if the second had passed
    assert scrape(client)[("gradlab_queue_depth", ())] == first + 1


def test_metrics_off_means_no_route_and_nothing_counted(sqlite_url):
    settings = make_settings(sqlite_url, metrics=False)
    with TestClient(create_app(settings), base_url="http://localhost") as off:
        assert off.get("/metrics").status_code == 404
        assert "/metrics" not in off.app.openapi()["paths"]


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_body_that_is_not_utf8_or_not_json_is_a_422_naming_the_body(client, path):
    for body, why in ((b'{"name": "\xff\xfe"}', "not UTF-8"), (b"[0", "not valid JSON")):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, (path, body, r.text)
        error = r.json()
        assert error["type"] == "invalid_request" and why in error["message"]
        assert [d["field"] for d in error["detail"]] == ["body"]
        assert error["detail"][0]["type"] == "json_invalid"


def test_every_route_with_a_body_documents_its_422_and_413(client):
    document = client.app.openapi()
    taking = [
        (method, path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    ]
    assert {path for _, path, _ in taking} >= set(BODY_ROUTES)
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for method, path, op in taking:
        for status in ("422", "413"):
            content = op["responses"][status]["content"]["application/json"]
            assert content["schema"] == error_body, (method, path, status)


def test_a_sweep_whose_inline_base_is_empty_is_a_422_not_a_500(client):
    # Found by schemathesis' coverage phase: the sweep hashed its base's arrays first.
    base = {**SPEC, "data": {"kind": "inline", "X": [], "y": [0.0]}}
    r = client.post("/v1/sweeps", json={"base": base, "grid": {"l2": [0, 0.1]}})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "base.data.X"
    assert client.get("/v1/sweeps").json()["sweeps"] == []
