"""Large request bodies against a real `gradlab serve`: beyond GRADLAB_MAX_LARGE_BODIES at
once, one more gets 503 ``bodies_busy`` with ``Retry-After`` and the JSON error body, whether
it declares its length or arrives chunked; small bodies pass meanwhile."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from gradlab.procs import Server, wait_for
from tests.service.helpers import LINE

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
ROWS = range(400)
BIG = {**LINE, "data": {"kind": "inline", "X": [[i / 7] for i in ROWS], "y": [i / 3 for i in ROWS]}}


def test_large_bodies_beyond_the_slots_wait_outside_with_503(sqlite_url, tmp_path):
    body = json.dumps(BIG).encode()
    assert len(body) > 4096
    release, sent, results = threading.Event(), threading.Event(), {}

    def slow():  # declares its length, so it takes the slot on arrival; holds it until released
        yield body[:3000]
        sent.set()
        release.wait(30)
        yield body[3000:]

    settings = {"max_large_bodies": 1, "large_body_bytes": 2048}
    server = Server(sqlite_url, workers=0, log=tmp_path / "serve.log", **settings)
    with server, server.client() as http:

        def hold() -> None:
            with server.client() as other:
                headers = {**JSON, "Content-Length": str(len(body))}
                results["held"] = other.post("/v1/jobs", content=slow(), headers=headers)

        holder = threading.Thread(target=hold)
        holder.start()
        assert sent.wait(30)  # its headers are out before any other request
        try:
            created_while_waiting = []

            def busy() -> list[httpx.Response]:
                r = http.post("/v1/jobs", content=body, headers=JSON)
                if r.status_code == 201:  # the holder had not taken its slot yet
                    created_while_waiting.append(r)
                return [r] if r.status_code == 503 else []

            [r] = wait_for(busy, timeout=30, interval=0.05, what="the slot to be held")
            assert r.headers["Retry-After"] == "1"
            error = r.json()
            assert error["type"] == "bodies_busy"
            assert "GRADLAB_MAX_LARGE_BODIES" in error["message"]
            chunked = http.post("/v1/jobs", content=iter([body]), headers=JSON)
            assert chunked.status_code == 503, chunked.text
            assert chunked.json()["type"] == "bodies_busy"
            assert chunked.headers["Retry-After"] == "1"
            small = http.post("/v1/jobs", json=LINE)
            assert small.status_code == 201  # a small body takes no slot
        finally:
            release.set()
            holder.join(30)
        assert results["held"].status_code == 201, results["held"].text
        after = http.post("/v1/jobs", content=body, headers=JSON)
        assert after.status_code == 201  # the slot was given back
        jobs = http.get("/v1/jobs").json()["jobs"]
        assert len(jobs) == 3 + len(created_while_waiting)  # nothing of the 503s stored
