"""No value a user sends gets a 5xx: every integer and string of every route's parameters and
JSON bodies (found in the app's OpenAPI document, so later routes are covered too), at and
beyond its extremes, gets a documented status; a value outside its schema, or with a NUL (no
text can hold one on PostgreSQL), a 422 naming it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from tests.conftest import make_settings
from tests.service.extremes import INTS, STRINGS, Target, Walker, conforms, values_for
from tests.service.helpers import LINE, submit

UNKNOWN = "0123456789abcdef"
STREAMS = ("/events",)  # a known job's stream would stay open: use an unknown id there
SQL_PARAMS = {"job_id", "sweep_id", "tag", "name", "cursor", "start", "end", "ids", "sweep"}
SQL_PARAMS |= {"submission_id", "dataset_id", "student"}


class Prober:
    """Sends one target's value with everything else at a working default."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.doc = client.get("/openapi.json").json()
        self.job_id = submit(client, LINE)["id"]  # queued, never run: GETs read a real row
        jobs_examples = self.doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
        self.job_body = next(iter(jobs_examples["application/json"]["examples"].values()))["value"]

    def targets(self) -> list[Target]:
        seen, out = set(), []
        for t in Walker(self.doc).targets():
            if (t.method, t.path, t.where, t.name) not in seen:
                seen.add((t.method, t.path, t.where, t.name))
                out.append(t)
        return out

    def send(self, target: Target, value: Any) -> Any:
        defaults = {"job_id": self.job_id, "fmt": "png"}
        defaults |= {k: UNKNOWN for k in ("sweep_id", "name", "submission_id", "dataset_id")}
        if target.method != "get" or target.path.endswith(STREAMS):
            defaults["job_id"] = UNKNOWN  # never cancel or delete the shared job
        path_values = dict(defaults)
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        body: Any = None
        if target.where == "path":
            path_values[target.name] = value
        elif target.where == "query":
            params[target.name] = value
        elif target.where == "header":
            headers[target.name] = value
        else:
            body = target.body_with(value)
        if body is None and target.method == "post" and target.path == "/v1/jobs":
            body = self.job_body
        url = target.path.format(**{k: quote(str(v), safe="") for k, v in path_values.items()})
        return self.client.request(
            target.method.upper(), url, params=params, headers=headers, json=body
        )

    def check(self, target: Target, value: Any) -> None:
        r = self.send(target, value)
        what = f"{target.method.upper()} {target.path} {target.where} {target.name}={value!r:.80}"
        assert r.status_code < 500, (what, r.text[:500])
        assert str(r.status_code) in target.responses, (what, r.status_code, r.text[:300])
        invalid = not conforms(value, target.schema) or (isinstance(value, str) and "\x00" in value)
        if invalid:
            assert r.status_code == 422, (what, r.text[:300])
            body = r.json()
            assert set(body) == {"message", "type", "detail"}
            assert any(_names(d["field"], target) for d in body["detail"]), (what, body)


def _names(field: str, target: Target) -> bool:
    """Whether a 422's ``field`` names the target (or, for a body, a part or a parent of it)."""
    if target.where in ("path", "query", "header"):
        return field.lower() == f"{target.where}:{target.name}".lower()
    name = target.name
    return any(
        a == b or a.startswith((f"{b}.", f"{b}[")) for a, b in ((field, name), (name, field))
    )


@pytest.fixture
def prober(db_url: str) -> Iterator[Prober]:
    app = create_app(make_settings(db_url, max_iterations=1000, max_inline_rows=500))
    with TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as client:
        yield Prober(client)


def test_the_walk_finds_every_parameter_and_the_spec_fields(sqlite_url):
    with TestClient(create_app(make_settings(sqlite_url)), base_url="http://localhost") as client:
        names = {(t.where, t.name) for t in Prober(client).targets()}
    assert {("path", "job_id"), ("query", "tag"), ("query", "start"), ("query", "limit")} <= names
    assert {("header", "idempotency-key"), ("header", "last-event-id")} <= names
    assert {("body", "optimizer.batch_size"), ("body", "gradient_check.every")} <= names
    assert {("body", "base.optimizer.batch_size"), ("key", "tags"), ("key", "grid")} <= names
    assert {("body", "model.hidden_sizes[0]"), ("body", "data.n_per_class")} <= names


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_field_at_and_beyond_its_extremes_gets_a_documented_status(prober):
    targets = prober.targets()
    assert len(targets) > 60
    for target in targets:
        for value in values_for(target):
            prober.check(target, value)


def test_values_that_reach_sql_get_a_documented_status_on_both_databases(prober):
    # On PostgreSQL a NUL, a quote or an out-of-range integer fails in the driver, not SQLite.
    targets = [
        t
        for t in prober.targets()
        if (t.where != "body" and t.name in SQL_PARAMS) or t.name in ("name", "tags.k", "tags")
    ]
    assert len(targets) >= 20
    for target in targets:
        for value in values_for(target):
            prober.check(target, value)


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from('\x00"\\')
)
_INT = st.integers() | st.sampled_from(INTS) | st.integers(-(2**70), 2**70)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_random_values_near_the_extremes_never_get_a_server_error(prober):
    targets = prober.targets()

    @given(data=st.data())
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    def probe(data: st.DataObject) -> None:
        target = data.draw(st.sampled_from(targets))
        values = values_for(target)
        if target.where == "header":
            value = data.draw(st.sampled_from(values))
        elif target.where in ("path", "query"):
            value = data.draw(_INT.map(str) | _TEXT | st.sampled_from(values))
            if target.where == "path" and ("/" in value or not value.strip(".")):
                value = "x"
        elif isinstance(values[0], int) and all(isinstance(v, int) for v in values):
            value = data.draw(_INT)
        elif all(isinstance(v, str) for v in values):
            value = data.draw(_TEXT | st.sampled_from(STRINGS))
        else:
            value = data.draw(_INT | _TEXT)
        prober.check(target, value)

    probe()
