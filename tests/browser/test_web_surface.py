"""The web surface in Chromium against a real `gradlab serve`: hostile names run nothing in
the dashboard or the plots, and a page on another origin cannot cancel a running job."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from gradlab.procs import Server, free_port, wait_for
from tests.browser.test_dashboard import wait_finished

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "$x^$ <marquee>m</marquee>",
]
SMALL = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 40},
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 30,
}
INJECTED = (
    '() => document.querySelectorAll(\'[onerror], [onload], img[src="x"], marquee, svg[onload],'
    " script:not([src])').length"
)


@pytest.fixture
def server(sqlite_url, tmp_path) -> Iterator[Server]:
    with Server(sqlite_url, workers=1, log=tmp_path / "serve.log") as server:
        yield server


def watch_dialogs(page) -> list[str]:
    dialogs: list[str] = []

    def seen(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", seen)
    return dialogs


def test_hostile_names_and_tags_are_shown_as_text_and_run_nothing(server, tab):
    with server.client() as http:
        ids = []
        for i, payload in enumerate(PAYLOADS):
            spec = {**SMALL, "name": payload, "tags": {"note": payload, f"k{i}": payload}}
            r = http.post("/v1/jobs", json=spec)
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        grid = {"optimizer.learning_rate": [0.1, 0.5]}
        sweep = http.post("/v1/sweeps", json={"name": PAYLOADS[0], "base": SMALL, "grid": grid})
        assert sweep.status_code == 201, sweep.text
        for job_id in [*ids, *(j["id"] for j in sweep.json()["jobs"])]:
            wait_finished(http, job_id)

    page = tab.page
    dialogs = watch_dialogs(page)
    page.goto(f"{server.base}/#/")
    page.locator("#jobs-table tbody tr[data-id]").nth(len(ids) + 1).wait_for()
    listed = page.inner_text("#jobs-table")
    assert all(p in listed for p in PAYLOADS)  # as the characters typed

    for job_id, payload in zip(ids, PAYLOADS, strict=True):
        page.goto(f"{server.base}/#/jobs/{job_id}")
        page.wait_for_selector('#job-status[data-status="succeeded"]')
        page.locator("#params-table").wait_for()
        assert page.inner_text("h1") == payload
        assert payload in page.inner_text("#spec")  # the tags, in the spec's JSON
        page.wait_for_function(
            "() => { const i = document.querySelector('#fit-plot');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        assert page.evaluate(INJECTED) == 0

    page.goto(f"{server.base}/#/compare?ids={','.join(ids)}")
    page.wait_for_selector(f'#compare-chart[data-series="{len(ids)}"]')
    legend = page.inner_text("#compare-chart .u-legend")
    assert all(p in legend for p in PAYLOADS)
    assert page.evaluate(INJECTED) == 0

    page.goto(f"{server.base}/#/compare?sweep={sweep.json()['id']}")
    page.wait_for_selector('#compare-chart[data-series="2"]')
    assert PAYLOADS[0] in page.inner_text("h1")
    assert page.evaluate(INJECTED) == 0

    for path in (f"v1/jobs/{ids[0]}/plots/loss.svg", f"v1/plots/compare.svg?ids={','.join(ids)}"):
        page.goto(f"{server.base}/{path}")  # an SVG opened as a document of its own
        assert page.evaluate("() => document.documentElement.localName") == "svg"
        assert page.evaluate(INJECTED) == 0

    page.wait_for_timeout(300)  # an onerror fires once its image has failed to load
    assert dialogs == []
    tab.assert_no_errors()  # no Content-Security-Policy refusal: the dashboard needs none


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_origin(tmp_path) -> Iterator[int]:
    """A second web server on another port of this machine: the attacker's pages."""
    port = free_port()
    handler = partial(_Quiet, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield port
    httpd.shutdown()
    httpd.server_close()


ATTACKS = """async (url) => {
  await fetch(url, {method: 'POST', mode: 'no-cors'});
  await fetch(url, {method: 'POST', mode: 'no-cors', body: '{}'});
  await fetch(url, {method: 'POST', mode: 'no-cors', credentials: 'include',
                    headers: {'Content-Type': 'text/plain'}, body: 'x'});
  const form = new FormData(); form.append('a', 'b');
  await fetch(url, {method: 'POST', mode: 'no-cors', body: form});
  return 'sent';
}"""


@pytest.mark.parametrize("origin_host", ["127.0.0.1", "localhost"])  # same-site, cross-site
def test_a_page_on_another_origin_cannot_cancel_a_running_job(
    server, tab, other_origin, tmp_path, origin_host
):
    spec = {
        "model": {"kind": "mlp", "hidden_sizes": [100]},
        "data": {"kind": "spiral"},
        "optimizer": {"kind": "gd", "learning_rate": 1.0},
        "iterations": 1_000_000,
    }
    (tmp_path / "attack.html").write_text(
        "<!doctype html><title>another site</title>"
        '<form id="f" method="POST" action="URL"><input name="x" value="1"></form>'
    )
    with server.client() as http:
        job_id = http.post("/v1/jobs", json=spec).json()["id"]
        wait_for(
            lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "running",
            timeout=60,
            what="the job to run",
        )
        url = f"{server.base}/v1/jobs/{job_id}/cancel"
        page = tab.page
        page.goto(f"http://{origin_host}:{other_origin}/attack.html")
        assert page.evaluate(ATTACKS, url) == "sent"
        with page.expect_navigation():  # a plain HTML form, the oldest cross-site POST
            page.evaluate(
                "(url) => { const f = document.getElementById('f'); f.action = url; f.submit(); }",
                url,
            )
        assert "cross_site_refused" in page.content()  # the form's answer, shown in the tab

        assert http.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
        refused = [
            line
            for line in server.log.read_text().splitlines()
            if re.search(r"gradlab\.access: \S+ POST - 403 ", line)
        ]
        assert len(refused) == 5, refused  # every attempt reached the server and was refused

        r = http.post(f"/v1/jobs/{job_id}/cancel")  # the CLI's way: no Origin, no form type
        assert r.status_code == 200 and r.json()["status"] in ("cancelled", "running")
        wait_for(
            lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled",
            timeout=30,
            what="the real cancel to take",
        )
        assert httpx.get(f"{server.base}/readyz").status_code == 200
