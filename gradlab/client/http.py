"""The HTTP side of the client: :class:`Client`, one method per endpoint the commands and
``gradlab.Client`` (the notebook client, :mod:`gradlab.notebook`) use.

Transport failures become :class:`ServerUnreachable`, error answers :class:`APIError`; each
error carries the exit code its command exits with. A job's live events are followed over
SSE (httpx-sse), resuming a dropped stream with ``Last-Event-ID``. httpx is imported inside
the methods, so that importing this module costs nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

STREAM_READ_TIMEOUT = 60.0  # the server pings every 15 s; silence longer than this is a drop
RECONNECT_PATIENCE = 30.0  # seconds of failed reconnects before giving up on a stream
FAILED, INVALID, UNREACHABLE, INTERRUPTED = 1, 2, 3, 130


class ClientError(Exception):
    """Talking to the server went wrong; ``exit_code`` is what the command exits with."""

    exit_code = FAILED


class ServerUnreachable(ClientError):
    exit_code = UNREACHABLE

    def __init__(self, url: str, reason: object) -> None:
        why = re.sub(r"^\[Errno -?\d+\] ", "", str(reason)) or type(reason).__name__
        super().__init__(
            f"cannot reach a gradlab server at {url} ({why}). Start one with `gradlab serve`, "
            "or point --url or GRADLAB_URL at a running server."
        )


class APIError(ClientError):
    """An error answer; ``message``, ``type`` and ``detail`` as the API's error bodies have."""

    def __init__(self, status: int, body: Any, reason: str = "") -> None:
        body = body if isinstance(body, dict) else {}
        self.status = status
        self.message = str(body.get("message") or f"HTTP {status} {reason}".strip())
        self.type = body.get("type")
        self.detail = body.get("detail")
        self.exit_code = INVALID if status in (413, 422) else FAILED
        super().__init__(self.message)

    @property
    def fields(self) -> list[str]:
        """The field paths a 422 names (``optimizer.learning_rate``, ``query:end``)."""
        if not isinstance(self.detail, list):
            return []
        return [_field(problem) for problem in self.detail if _field(problem)]

    def problems(self) -> list[str]:
        """Each problem of a 422 as ``field: message``."""
        if not isinstance(self.detail, list):
            return []
        lines = []
        for problem in self.detail:
            field = _field(problem)
            msg = problem.get("msg", "is not valid")
            lines.append(f"{field}: {msg}" if field else str(msg))
        return lines


def _field(problem: dict[str, Any]) -> str:
    """A 422 problem's field path: the server's ``field``, or its ``loc`` after ``body``."""
    loc = [str(part) for part in problem.get("loc", ())[1:]]
    return str(problem.get("field") or ".".join(loc))


def _raise_for_status(response: httpx.Response) -> None:
    """An :class:`APIError` for an error answer (a streamed one is read in full first)."""
    if response.is_success:
        return
    response.read()
    try:
        body = response.json()
    except ValueError:
        body = None
    raise APIError(response.status_code, body, response.reason_phrase)


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """The query parameters that were given (not None)."""
    return {k: v for k, v in params.items() if v is not None}


class Client:
    """A gradlab server's jobs API, one method per endpoint."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``token`` goes in every request's ``Authorization: Bearer`` header (never in a URL)."""
        import httpx

        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, headers=headers
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, exc) from None
        _raise_for_status(response)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.url} is not a gradlab server: {path} is not JSON.") from None

    def submit(self, spec: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._request("POST", "/v1/jobs", json=spec, headers=headers)

    def examples(self) -> dict[str, Any]:
        """The seed exercises, by name: ``{name: {"summary", "value": spec}}``."""
        return self._request("GET", "/v1/jobs/examples")

    def jobs(self, **filters: Any) -> dict[str, Any]:
        return self._request("GET", "/v1/jobs", params=_given(filters))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}")

    def checks(self, job_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/v1/jobs/{job_id}/gradient-checks")["checks"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

    def append_metrics(self, job_id: str, points: list[dict[str, Any]]) -> dict[str, Any]:
        """Append points to an external run (each iteration is stored once: safe to retry)."""
        return self._request("POST", f"/v1/jobs/{job_id}/metrics", json={"points": points})

    def finish(self, job_id: str, status: str = "succeeded") -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/finish", json={"status": status})

    def reference(self, job_id: str) -> dict[str, Any]:
        """How a job compares with its recipe's shared reference run."""
        return self._request("GET", f"/v1/jobs/{job_id}/reference")

    def start_run(self, **options: Any) -> Any:
        """An external run's logger (:func:`gradlab.client.runs.start_run`)."""
        from gradlab.client.runs import start_run

        return start_run(self, **options)

    def sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/sweeps", json=body)

    def metrics(self, job_id: str, **params: Any) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/metrics", params=_given(params))

    def parameters(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/parameters")

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/sweeps/{sweep_id}")

    def metrics_binary(self, job_id: str, format: str, **params: Any) -> bytes:
        """The points as ``format`` (``arrow`` or ``parquet``): the whole body."""
        import httpx

        params = _given(params) | {"format": format}
        try:
            response = self._http.get(f"/v1/jobs/{job_id}/metrics", params=params)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, exc) from None
        _raise_for_status(response)
        return response.content

    def metrics_csv(self, job_id: str, **params: Any) -> Iterator[bytes]:
        """The CSV export, streamed as it arrives."""
        import httpx

        params = _given(params) | {"format": "csv"}
        try:
            with self._http.stream("GET", f"/v1/jobs/{job_id}/metrics", params=params) as r:
                _raise_for_status(r)
                yield from r.iter_bytes()
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, exc) from None

    def assignments(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/assignments")["assignments"]

    def create_assignment(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/assignments", json=body)

    def submit_assignment(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", f"/v1/assignments/{name}/submissions", json=body)

    def submission(self, name: str, submission_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/assignments/{name}/submissions/{submission_id}")

    def grades(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/assignments/{name}/grades")

    def grades_csv(self, name: str) -> str:
        import httpx

        try:
            response = self._http.get(
                f"/v1/assignments/{name}/grades", headers={"Accept": "text/csv"}
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, exc) from None
        _raise_for_status(response)
        return response.text

    def gradescope(self, name: str, student: str) -> dict[str, Any]:
        path = f"/v1/assignments/{name}/grades/gradescope"
        return self._request("GET", path, params={"student": student})

    def events(
        self, job_id: str, *, patience: float = RECONNECT_PATIENCE
    ) -> Iterator[tuple[str, Any]]:
        """The job's live events as ``(kind, data)``, through the final ``end``.

        A dropped connection is resumed with ``Last-Event-ID`` (the server sends nothing
        twice and skips nothing); after ``patience`` seconds without an event it gives up.
        """
        import httpx
        from httpx_sse import SSEError, connect_sse

        last_id: str | None = None
        delay, failing_since = 0.5, None
        timeout = httpx.Timeout(self.timeout, read=STREAM_READ_TIMEOUT)
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            reason: object
            try:
                with connect_sse(
                    self._http, "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout
                ) as source:
                    _raise_for_status(source.response)
                    for sse in source.iter_sse():
                        failing_since = None
                        delay = sse.retry / 1000 if sse.retry else delay
                        last_id = sse.id or last_id
                        if sse.event not in ("status", "metrics", "check", "end"):
                            continue
                        yield sse.event, json.loads(sse.data)
                        if sse.event == "end":
                            return
                reason = "the event stream closed before the job ended"
            except httpx.TransportError as exc:
                reason = exc
            except SSEError as exc:
                raise ClientError(
                    f"{self.url} did not answer with an event stream: {exc}"
                ) from None
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > patience:
                raise ServerUnreachable(self.url, reason)
            time.sleep(delay)
