"""Plots against a real server: drawn by a bounded pool of renderer processes, and refused
with 503 and Retry-After once the renderers and their queue are full."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gradlab.procs import Server, wait_for

pytestmark = pytest.mark.slow

BLOBS = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 200, "n_classes": 2},
    "optimizer": {"kind": "gd", "learning_rate": 0.5},
    "iterations": 50,
}
AT_ONCE = 12


def test_plots_beyond_the_renderers_and_their_queue_get_503(sqlite_url, tmp_path):
    log = tmp_path / "serve.log"
    with (
        Server(sqlite_url, workers=1, log=log, plot_renderers=1, plot_queue=1) as server,
        server.client() as http,
    ):
        job_id = http.post("/v1/jobs", json=BLOBS).json()["id"]
        wait_for(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded")
        url = f"{server.base}/v1/jobs/{job_id}/plots/fit.svg"
        first = http.get(url)  # starts the renderer
        assert first.status_code == 200 and first.headers["content-type"] == "image/svg+xml"

        def get(_: int) -> httpx.Response:
            return httpx.get(url, timeout=60)

        with ThreadPoolExecutor(AT_ONCE) as pool:
            answers = list(pool.map(get, range(AT_ONCE)))
        statuses = sorted(r.status_code for r in answers)
        assert set(statuses) == {200, 503}, statuses  # one draws, one waits, the rest refused
        drawn = [r for r in answers if r.status_code == 200]
        assert all(r.content == first.content for r in drawn)  # the same bytes, every time
        for refused in (r for r in answers if r.status_code == 503):
            assert int(refused.headers["retry-after"]) > 0
            body = refused.json()
            assert body["type"] == "plots_busy" and "GRADLAB_PLOT_QUEUE" in body["message"]
        assert http.get(url).status_code == 200  # nothing was left holding a slot
    assert "Traceback" not in log.read_text()
