"""Event streams against a real server: capped per client and in all, and a client that stops
reading is cut off at the send timeout — its socket reset, one log line, no traceback."""

from __future__ import annotations

import socket
import struct
import time
from contextlib import ExitStack

import httpx
import numpy as np
import pytest

from gradlab.procs import Server, wait_for
from tests.conftest import synthetic_job

pytestmark = pytest.mark.slow

TINY = {
    "model": {"kind": "logistic_regression"},
    "data": {"kind": "blobs", "n_samples": 20},
    "optimizer": {"kind": "gd"},
    "iterations": 1,
}
TCP_ESTABLISHED = 1


def finished_job(url: str, points: int) -> str:
    """A succeeded job with ``points`` synthetic points (``tests.conftest.synthetic_job``)."""
    return synthetic_job(url, np.linspace(2.0, 0.1, points).tolist())


def open_stream(stack: ExitStack, http: httpx.Client, job_id: str) -> httpx.Response:
    """An event stream, open (its headers read, its body not)."""
    return stack.enter_context(http.stream("GET", f"/v1/jobs/{job_id}/events"))


def assert_busy(response: httpx.Response, status: int, kind: str) -> None:
    response.read()
    assert response.status_code == status, response.text
    assert int(response.headers["retry-after"]) > 0
    body = response.json()
    assert body["type"] == kind and "GRADLAB_MAX_STREAMS" in body["message"]


def test_streams_are_capped_per_client_and_in_all(sqlite_url, tmp_path):
    log = tmp_path / "serve.log"
    with (
        Server(sqlite_url, workers=0, log=log, max_streams=3, max_streams_per_client=2) as server,
        server.client() as a,
        httpx.Client(
            base_url=server.base,
            timeout=30,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        ) as b,
        ExitStack() as streams,
    ):
        job_id = a.post("/v1/jobs", json=TINY).json()["id"]  # queued: its stream stays open
        first, second = (open_stream(streams, a, job_id) for _ in range(2))
        assert first.status_code == second.status_code == 200
        with a.stream("GET", f"/v1/jobs/{job_id}/events") as third:
            assert_busy(third, 429, "too_many_streams")  # a's cap
        assert open_stream(streams, b, job_id).status_code == 200
        with b.stream("GET", f"/v1/jobs/{job_id}/events") as fourth:
            assert_busy(fourth, 503, "streams_full")  # the total, though b is under its cap
        assert a.get("/v1/jobs?limit=5").status_code == 200  # the rest of the API answers

        first.close()  # a slot comes back when its client leaves

        def reopened() -> bool:
            with b.stream("GET", f"/v1/jobs/{job_id}/events") as again:
                return again.status_code == 200

        wait_for(reopened, timeout=10, interval=0.2, what="the closed stream's slot")
    assert "Traceback" not in log.read_text()


def test_a_client_that_never_reads_is_reset_at_the_send_timeout(sqlite_url, tmp_path):
    job_id = finished_job(sqlite_url, 300_000)  # ~30 MB of events: more than any buffer
    log = tmp_path / "serve.log"
    with (
        Server(sqlite_url, workers=0, log=log, stream_send_timeout_seconds=1) as server,
        server.client() as http,
        socket.create_connection(("127.0.0.1", server.port)) as stalled,
    ):
        host = f"127.0.0.1:{server.port}"  # an allowed name
        stalled.sendall(f"GET /v1/jobs/{job_id}/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        started = time.monotonic()

        def state() -> int:  # tcpi_state, the first byte of struct tcp_info
            return struct.unpack("B", stalled.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1))[0]

        # Never read: the server fills its buffers, waits a second, then resets the socket.
        wait_for(lambda: state() != TCP_ESTABLISHED, timeout=20, interval=0.1, what="a reset")
        assert time.monotonic() - started < 20
        with pytest.raises(ConnectionResetError):
            while stalled.recv(1 << 20):
                pass
        assert http.get("/v1/jobs?limit=5").status_code == 200
    text = log.read_text()
    lines = [line for line in text.splitlines() if "closed the event stream" in line]
    assert len(lines) == 1 and job_id in lines[0] and "read nothing for 1 s" in lines[0]
    assert "Traceback" not in text and "Exception in ASGI" not in text


def test_the_api_answers_while_many_streams_are_open(sqlite_url, tmp_path):
    spec = {**TINY, "iterations": 200_000}  # runs for a while, a flush every 50 ms
    with (
        Server(
            sqlite_url, workers=1, log=tmp_path / "serve.log", max_streams_per_client=100
        ) as server,
        server.client(limits=httpx.Limits(max_connections=100)) as http,
        ExitStack() as streams,
    ):
        job_id = http.post("/v1/jobs", json=spec).json()["id"]
        for _ in range(80):
            assert open_stream(streams, http, job_id).status_code == 200
        started = time.monotonic()
        listed = http.get("/v1/jobs?limit=5")
        assert listed.status_code == 200 and listed.json()["jobs"][0]["id"] == job_id
        assert http.post("/v1/jobs", json=TINY).status_code == 201
        assert time.monotonic() - started < 5  # generous: a bound, not a speed test
