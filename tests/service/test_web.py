"""The web surface in-process: allowed hosts, the cross-site rule, the security headers,
CORS only for listed origins, the access log's line, and hostile names in the plots.
(Against a real `gradlab serve` and in Chromium: tests/e2e/test_web.py, tests/browser.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from service.app import create_app
from service.web.crosssite import refusal, same_origin
from service.web.headers import DASHBOARD_CSP, DATA_CSP
from service.web.hosts import request_host
from tests.conftest import make_settings, run_worker
from tests.service.helpers import LINE, submit

HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "$x^$ & ]]> -->"]


def make_client(url: str, base_url: str = "http://localhost", **settings) -> TestClient:
    return TestClient(create_app(make_settings(url, **settings)), base_url=base_url)


@pytest.fixture
def sqlite_client(sqlite_url) -> Iterator[TestClient]:
    with make_client(sqlite_url) as client:
        yield client


def assert_refused(response, status: int, kind: str, naming: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == kind and naming in body["message"], body
    assert set(body) == {"message", "type", "detail"}


# --- Host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [("localhost:8000", "localhost"), ("[::1]:8000", "::1"), ("[::1]", "::1"),
     ("127.0.0.1", "127.0.0.1"), ("LocalHost.", "localhost"), ("", "")],
)  # fmt: skip
def test_a_host_header_is_read_without_its_port(header, name):
    assert request_host(header) == name


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"])
def test_loopback_names_are_answered_by_default(sqlite_client, host):
    assert sqlite_client.get("/v1/jobs", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "testserver", "::2"])
def test_any_other_host_gets_400_and_nothing_happens(db_url, host):
    with make_client(db_url) as client:
        r = client.post("/v1/jobs", json=LINE, headers={"Host": host})
        assert_refused(r, 400, "host_not_allowed", "GRADLAB_ALLOWED_HOSTS")
        assert client.get("/v1/jobs").json()["jobs"] == []  # nothing was stored


def test_allowed_hosts_take_subdomain_patterns_and_a_wildcard(sqlite_url):
    with make_client(sqlite_url, allowed_hosts="lab.example, *.course.example") as client:
        assert client.get("/healthz", headers={"Host": "lab.example"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "a.course.example:80"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "course.example"}).status_code == 400
        assert client.get("/healthz", headers={"Host": "localhost"}).status_code == 400
    with make_client(sqlite_url, allowed_hosts="*") as client:
        assert client.get("/healthz", headers={"Host": "anything.example"}).status_code == 200


# --- cross-site ---------------------------------------------------------------------------

HOST = "localhost:8000"


@pytest.mark.parametrize(
    ("origin", "fetch_site", "content_type", "refused"),
    [
        (None, None, None, False),  # the CLI, curl, httpx
        (None, None, "application/json", False),
        ("http://localhost:8000", "same-origin", "application/json", False),  # the dashboard
        ("http://localhost:8000", None, None, False),  # an older browser, same origin
        (None, "none", None, False),  # typed into the address bar
        ("http://evil.example", "cross-site", None, True),
        ("http://evil.example", None, None, True),  # no Sec-Fetch-*: Origin alone decides
        ("http://localhost:9000", "same-site", None, True),  # another port is another origin
        ("http://localhost:9000", None, None, True),
        ("https://localhost:8000", None, None, False),  # the scheme is not compared (TLS proxies)
        ("null", "cross-site", None, True),
        ("null", None, None, True),
        (None, "cross-site", None, True),
        (None, "same-site", None, True),
        (None, None, "text/plain;charset=UTF-8", True),  # a no-cors fetch's string body
        (None, None, "application/x-www-form-urlencoded", True),  # a form
        (None, None, "Multipart/Form-Data; boundary=x", True),
        ("http://localhost:8000", "same-origin", "text/plain", True),
        ("http://course.example", "cross-site", "application/json", False),  # listed
    ],
)
def test_the_cross_site_rule(origin, fetch_site, content_type, refused):
    listed = frozenset({"http://course.example"})
    assert (refusal(origin, fetch_site, content_type, HOST, listed) is not None) == refused


def test_same_origin_compares_host_and_port_with_default_ports():
    assert same_origin("http://localhost", "localhost")
    assert same_origin("http://localhost", "localhost:80")
    assert same_origin("https://lab.example", "lab.example:443")
    assert same_origin("http://[::1]:8000", "[::1]:8000")
    assert not same_origin("http://localhost:8001", "localhost:8000")
    assert not same_origin("http://localhost", "localhost:8000")
    assert not same_origin("ftp://localhost:8000", "localhost:8000")
    assert not same_origin("http://localhost:x", "localhost:8000")


def test_a_cross_site_cancel_is_refused_and_the_job_stays_queued(db_url):
    with make_client(db_url) as client:
        job = submit(client, LINE)
        for headers in (
            {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
            {"Origin": "http://localhost:9999", "Sec-Fetch-Site": "same-site"},
            {"Origin": "null"},
            {"Content-Type": "text/plain"},
        ):
            r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=headers)
            assert_refused(r, 403, "cross_site_refused", next(iter(headers)))
            r = client.delete(f"/v1/jobs/{job['id']}", headers=headers)
            assert r.status_code == 403
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
        same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
        r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=same)
        assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text


def test_a_form_post_of_a_spec_stores_nothing(sqlite_client):
    r = sqlite_client.post("/v1/jobs", data={"name": "x"})  # a browser form's encoding
    assert_refused(r, 403, "cross_site_refused", "application/x-www-form-urlencoded")
    r = sqlite_client.post("/v1/sweeps", content=b"{}", headers={"Content-Type": "text/plain"})
    assert_refused(r, 403, "cross_site_refused", "text/plain")
    assert sqlite_client.get("/v1/jobs").json()["jobs"] == []


def test_reads_are_not_refused_whatever_their_origin(sqlite_client):
    headers = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert sqlite_client.get("/v1/jobs", headers=headers).status_code == 200


# --- headers and CORS ---------------------------------------------------------------------


def test_the_dashboard_has_its_own_policy_and_data_answers_run_nothing(sqlite_client):
    for path in ("/", "/ui/app.js", "/ui/style.css"):
        r = sqlite_client.get(path)
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == DASHBOARD_CSP
        assert r.headers["x-content-type-options"] == "nosniff"
    for path in ("/v1/jobs", "/v1/catalog", "/v1/jobs/nope", "/healthz"):
        r = sqlite_client.get(path)
        assert r.headers["content-security-policy"] == DATA_CSP, path
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in sqlite_client.get("/docs").headers["content-security-policy"]
    assert "'unsafe-inline'" not in DASHBOARD_CSP and "script-src 'self'" in DASHBOARD_CSP


def test_the_dashboard_has_no_inline_script_style_or_handler():
    from service.dashboard.router import STATIC

    html = (STATIC / "index.html").read_text()
    assert "<style" not in html and " style=" not in html
    assert all("src=" in tag for tag in html.split("<script")[1:]), "an inline <script>"
    assert " on" not in html.replace("<nav>", "")  # no onclick= and the like
    for script in STATIC.glob("*.js"):
        text = script.read_text()
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, script.name
        assert "eval(" not in text and "new Function" not in text, script.name


def test_no_cors_headers_by_default(sqlite_client):
    origin = {"Origin": "http://course.example"}
    r = sqlite_client.get("/v1/jobs", headers=origin)
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    r = sqlite_client.options("/v1/jobs", headers=preflight)
    assert "access-control-allow-origin" not in r.headers


def test_a_listed_origin_gets_cors_and_may_post(sqlite_url):
    listed = "http://course.example"
    with make_client(sqlite_url, cors_origins=f"{listed}/, http://other.example") as client:
        preflight = {
            "Origin": listed,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        r = client.options("/v1/jobs", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == listed
        headers = {"Origin": listed, "Sec-Fetch-Site": "cross-site"}
        r = client.post("/v1/jobs", json=LINE, headers=headers)
        assert r.status_code == 201 and r.headers["access-control-allow-origin"] == listed
        r = client.get("/v1/jobs", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        r = client.post("/v1/jobs", json=LINE, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403


# --- the access log -----------------------------------------------------------------------


def test_one_access_line_per_request_with_the_route_template(sqlite_url, caplog):
    app = create_app(make_settings(sqlite_url))

    @app.get("/v1/test-whoami")  # how authentication hands the account on
    def whoami(request: Request) -> dict:
        request.state.user_name = "alice"
        return {}

    caplog.set_level(logging.INFO, logger="gradlab.access")
    with TestClient(app, base_url="http://localhost") as client:
        job = submit(client, {**LINE, "name": "secret-name"})
        client.get(f"/v1/jobs/{job['id']}?limit=3", headers={"Authorization": "Bearer tok3n"})
        client.get("/v1/test-whoami")
        client.get("/ui/app.js")
        client.get("/nowhere")
        client.get("/v1/jobs", headers={"Host": "evil.example"})
    lines = [r.getMessage() for r in caplog.records if r.name == "gradlab.access"]
    assert len(lines) == 6, lines
    shapes = [line.rsplit(" ", 1)[0] for line in lines]
    assert shapes == [
        "local POST /v1/jobs 201",  # GRADLAB_AUTH=off: every request is the local account's,
        "local GET /v1/jobs/{job_id} 200",
        "alice GET /v1/test-whoami 200",
        "local GET /ui/{path} 200",
        "local GET - 404",
        "- GET - 400",  # but one refused for its Host, before anyone is asked who they are
    ]
    for line in lines:
        ms = line.rsplit(" ", 1)[1]
        assert ms.endswith("ms") and float(ms[:-2]) >= 0
        assert job["id"] not in line and "tok3n" not in line and "limit" not in line


# --- hostile names in the plots -----------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_plain_escaped_text_in_every_svg(sqlite_url, name):
    settings = make_settings(sqlite_url)
    with TestClient(create_app(settings), base_url="http://localhost") as client:
        job = submit(client, {**LINE, "name": name, "tags": {"t": name}})
        grid = {"optimizer.learning_rate": [0.1]}
        sweep = client.post("/v1/sweeps", json={"name": name, "base": LINE, "grid": grid})
        assert sweep.status_code == 201, sweep.text
        run_worker(settings)
        paths = [
            f"/v1/jobs/{job['id']}/plots/loss.svg",
            f"/v1/jobs/{job['id']}/plots/fit.svg",
            f"/v1/jobs/{job['id']}/plots/gradient-checks.svg",
            f"/v1/plots/compare.svg?ids={job['id']}",
            f"/v1/plots/compare.svg?sweep={sweep.json()['id']}",
        ]
        for path in paths:
            r = client.get(path)
            assert r.status_code == 200, (path, r.text)
            root = ElementTree.fromstring(r.content)  # well-formed: every character escaped
            tags = {el.tag.rpartition("}")[2] for el in root.iter()}
            assert not tags & {"script", "img", "foreignObject", "iframe"}, (path, tags)
            assert b"<script" not in r.content and b"<img" not in r.content
            assert r.headers["content-security-policy"] == DATA_CSP
            png = client.get(path.replace(".svg", ".png"))
            assert png.status_code == 200, (path, png.text)
