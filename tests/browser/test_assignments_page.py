"""The assignment pages in Chromium against a real ``gradlab serve`` (auth required): a
student signs in, reads the description and their instance, finds the editor pre-filled
with the template, submits gradients and sees the feedback and their history, a hidden
check withheld; the instructor sees the gradebook (sortable, filterable, CSV) and the
insights with the histogram. A student's code, graded as a job by the server's worker: its
feedback arrives on the page while it waits, without a reload, and the asking stops then."""

from __future__ import annotations

import json
import os
import re

import pytest
from playwright.sync_api import Page

from gradlab.procs import Server
from store.sandboxing import bwrap_works
from tests.gradlab.test_assignment_cli import ASSIGNMENT, RIGHT
from tests.service.lab import make_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page: Page, base: str, token: str, where: str) -> None:
    page.goto(f"{base}/{where}")
    page.wait_for_url("**/#/sign-in")
    page.fill("#token", token)
    page.click("#sign-in button")


def test_the_student_and_the_instructor_pages(sqlite_url, browser, tmp_path):
    from tests.browser.conftest import Tab

    lab = make_lab(sqlite_url)
    body = {**ASSIGNMENT, "description": "Find **dW**. <img src=x onerror=alert(1)>"}
    with Server(sqlite_url, workers=0, log=tmp_path / "serve.log", auth="required") as server:
        with server.client(headers=lab.headers("ian")) as http:
            assert http.post("/v1/assignments", json=body).status_code == 201
        student = Tab(browser)
        page = student.page
        sign_in(page, server.base, lab.tokens["alice"], "#/assignments")
        page.locator("#assignments-table >> text=line-1").click()
        page.locator("#code").wait_for()
        assert "def loss_and_gradients(params, X, y, l2):" in page.input_value("#code")
        assert page.locator(".markdown strong").inner_text() == "dW"
        assert page.locator(".markdown img").count() == 0  # escaped, shown as text
        page.fill("#gradients", json.dumps({"gradients": {"W": [[-21.0]], "b": [-5.0]}}))
        page.click("#submit")
        row = page.locator('#result-table tr[data-check="dW"]')
        row.wait_for()
        assert row.get_attribute("data-passed") == "false"
        assert "3 times too large" in row.inner_text()
        hidden = page.locator('#result-table tr[data-check="db"]')
        assert hidden.get_attribute("data-passed") == "withheld"
        page.fill("#gradients", json.dumps({"gradients": RIGHT}))
        page.click("#submit")
        page.locator('#result-table tr[data-check="dW"][data-passed="true"]').wait_for()
        page.locator("#history-table tbody tr >> nth=1").wait_for()
        assert page.locator("#history-table tbody tr").count() == 2
        student.assert_no_errors(allowed=("401",))  # /v1/me before signing in
        student.context.close()

        staff = Tab(browser)
        page = staff.page
        sign_in(page, server.base, lab.tokens["ian"], "#/assignments/line-1")
        page.locator('#grades-table tr[data-student="alice"]').wait_for()
        assert "4 / 4" in page.locator('#grades-table tr[data-student="alice"]').inner_text()
        names = page.locator("#grades-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.student)"
        )
        assert names == ["alice", "bob"]
        page.locator("#grades-table th >> text=student").click()  # sorted descending
        names = page.locator("#grades-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.student)"
        )
        assert names == ["bob", "alice"]
        page.fill("#grades-filter", "ali")
        assert page.locator("#grades-table tbody tr").count() == 1
        assert "1 of 1" in page.locator("#insights-table").inner_text()
        assert page.locator("#histogram .row").count() == 1
        with page.expect_download() as download:
            page.locator("text=Download CSV").click()
        csv = download.value.path().read_text()
        assert csv.startswith("student,score,max_score") and "alice,4.0,4.0" in csv
        staff.assert_no_errors(allowed=("401",))
        staff.context.close()


# The line exercise's mean squared error and its gradients, as a student writes them.
LINE_CODE = """
import numpy as np


def loss_and_gradients(params, X, y, l2):
    W, b = params["W"], params["b"]
    r = X @ W + b - y.reshape(-1, 1)
    loss = np.mean(r ** 2) + 0.5 * l2 * np.sum(W * W)
    dW = 2 * X.T @ r / X.shape[0] + l2 * W
    db = 2 * np.mean(r, axis=0)
    return loss, {"W": dW, "b": db}
"""


@pytest.mark.skipif(
    bwrap_works() is not None and not os.environ.get("CI"), reason=f"no bwrap: {bwrap_works()}"
)
def test_a_code_submissions_feedback_arrives_live(sqlite_url, browser, tmp_path):
    from tests.browser.conftest import Tab

    lab = make_lab(sqlite_url)
    body = {**ASSIGNMENT, "name": "line-code", "submit": "code"}
    with Server(sqlite_url, workers=1, log=tmp_path / "serve.log", auth="required") as server:
        with server.client(headers=lab.headers("ian")) as http:
            assert http.post("/v1/assignments", json=body).status_code == 201
        student = Tab(browser)
        page = student.page
        asked: list[str] = []  # the submission's own URL, each time the page asks for it
        page.on(
            "request",
            lambda r: asked.append(r.url) if re.search(r"/submissions/[0-9a-f]+$", r.url) else None,
        )
        sign_in(page, server.base, lab.tokens["alice"], "#/assignments/line-code")
        page.locator("#code").wait_for()
        assert page.locator("#gradients").count() == 0  # code only
        assert "null" not in page.locator("#view").inner_text()  # no box, and no word for it
        page.evaluate("window.notReloaded = true")
        page.fill("#code", LINE_CODE)
        page.click("#submit")
        page.locator('#feedback[data-status="pending"] #grading').wait_for()
        # The job runs on the server's worker; the page asks until the grade is there.
        page.locator('#feedback[data-status="graded"]').wait_for()
        assert page.evaluate("window.notReloaded") is True
        assert page.locator("#feedback h2").text_content() == "graded: 3 of 4"
        row = page.locator('#result-table tr[data-check="dW"]')
        assert row.get_attribute("data-passed") == "true" and "3 / 3" in row.inner_text()
        assert (
            page.locator('#result-table tr[data-check="db"]').get_attribute("data-passed")
            == "withheld"
        )
        page.locator('#history-table tbody tr[data-status="graded"]').wait_for()
        assert page.locator("#grading").count() == 0
        assert asked, "the page never asked for the pending submission"
        settled = len(asked)
        page.wait_for_timeout(2500)  # over two FEEDBACK_MS: no more asking once graded
        assert len(asked) == settled
        student.assert_no_errors(allowed=("401",))
        student.context.close()
