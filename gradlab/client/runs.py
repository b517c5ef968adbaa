"""Tracking your own training loop from a notebook: an external run that logs its points.

::

    run = start_run(client, name="my softmax", recipe=spec)  # recipe: optional
    for i in range(200):
        ...  # your own gradient step
        run.log(i, loss=loss, accuracy=acc)
    run.finish()

or ``with start_run(client, ...) as run:`` (a run left by an exception ends ``failed``).
``log`` only buffers: a background thread sends the points in batches (every
``flush_seconds``, or as soon as ``batch_size`` wait), so the loop never waits on the
network. A batch whose answer is lost is sent again until the server has it: the server
stores each iteration exactly once, so a retry never doubles a point. Whatever is still
buffered when the interpreter exits is flushed, and the run finished.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from typing import Any

from gradlab.client.http import APIError, Client, ServerUnreachable

RETRY_SECONDS = (0.1, 0.3, 1.0, 3.0)  # waits between tries of one batch; then every 3 s


class RunError(Exception):
    """The server refused the run's points (a changed point, say): they are not stored."""


class Run:
    """An external run's logger: points buffered in order, sent by a background thread."""

    def __init__(
        self,
        client: Client,
        job: dict[str, Any],
        *,
        batch_size: int = 1000,
        flush_seconds: float = 1.0,
        give_up_after: float = 60.0,
    ) -> None:
        self.client, self.job, self.id = client, job, job["id"]
        self.batch_size, self.flush_seconds, self.give_up_after = (
            batch_size,
            flush_seconds,
            give_up_after,
        )
        self._next = job.get("iterations_done", 0)
        self._buffer: list[dict[str, Any]] = []
        self._sending = 0  # points taken from the buffer, not yet acknowledged
        self._lock = threading.Condition()
        self._closing = False
        self._error: BaseException | None = None
        self.finished: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._loop, name=f"gradlab-run-{self.id}")
        self._thread.daemon = True
        self._thread.start()
        _OPEN.add(self)

    # --- what a loop calls ------------------------------------------------------------

    def log(
        self, iteration: int, *, loss: float, accuracy: float | None = None, **more: float
    ) -> None:
        """Buffer the point of ``iteration`` (0, 1, 2, … in order); ``more`` may give
        ``data_loss``, ``reg_loss`` or ``grad_norm``."""
        if self._error is not None:
            raise RunError(str(self._error)) from self._error
        if self.finished is not None:
            raise RunError(f"run {self.id} is finished; start a new one")
        if iteration != self._next:
            raise ValueError(
                f"run {self.id} logs iterations 0, 1, 2, … in order: expected {self._next}, "
                f"got {iteration}"
            )
        point = {"iteration": int(iteration), "loss": float(loss), **more}
        if accuracy is not None:
            point["accuracy"] = float(accuracy)
        with self._lock:
            self._buffer.append(point)
            self._next += 1
            if len(self._buffer) >= self.batch_size:
                self._lock.notify()

    def flush(self) -> None:
        """Wait until every point logged so far is stored; :class:`RunError` if refused."""
        with self._lock:
            self._lock.notify()
            while (self._buffer or self._sending) and self._error is None:
                self._lock.wait(0.1)
        if self._error is not None:
            raise RunError(str(self._error)) from self._error

    def finish(self, status: str = "succeeded") -> dict[str, Any]:
        """Flush, stop the sender and end the run (``succeeded`` or ``failed``); the job.
        Calling it again returns the same job."""
        if self.finished is not None:
            return self.finished
        try:
            self.flush()
        finally:
            with self._lock:
                self._closing = True
                self._lock.notify()
            self._thread.join()
            _OPEN.discard(self)
        self.finished = self.client.finish(self.id, status)
        return self.finished

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.finish("failed" if kind is not None else "succeeded")

    # --- the sender ---------------------------------------------------------------------

    def _take(self) -> list[dict[str, Any]] | None:
        """The next batch once one is due (full, flushed, or ``flush_seconds`` old); None
        when closing with nothing left."""
        with self._lock:
            if not self._closing and len(self._buffer) < self.batch_size:
                self._lock.wait(self.flush_seconds)
            if not self._buffer:
                return None if self._closing else []
            batch = self._buffer[: self.batch_size]
            del self._buffer[: self.batch_size]
            self._sending = len(batch)
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            if batch:
                try:
                    self._send(batch)
                except BaseException as exc:  # surfaced by log, flush and finish
                    with self._lock:
                        self._error = exc
                with self._lock:
                    self._sending = 0
                    self._lock.notify_all()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        """Send one batch until the server has it: a lost answer is sent again (the server
        stores each iteration once, so a repeat is a no-op)."""
        deadline = time.monotonic() + self.give_up_after
        for attempt in range(1_000_000):
            try:
                self.client.append_metrics(self.id, batch)
                return
            except (ServerUnreachable, APIError) as exc:
                refused = isinstance(exc, APIError) and exc.status < 500
                if refused or time.monotonic() > deadline:
                    raise
                time.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])


_OPEN: weakref.WeakSet[Run] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """Flush and finish every run still open when the interpreter exits."""
    for run in list(_OPEN):
        with contextlib.suppress(Exception):  # at exit there is no one left to tell
            run.finish()


def start_run(
    client: Client,
    *,
    name: str | None = None,
    recipe: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    batch_size: int = 1000,
    flush_seconds: float = 1.0,
) -> Run:
    """Start an external run on the server (running from now) and its logger. ``recipe``
    (model, loss, data, init, optimizer, iterations, as in a job spec) links it to the
    recipe's shared reference run, for comparison."""
    spec: dict[str, Any] = {**(recipe or {}), "runner": "external"}
    if name is not None:
        spec["name"] = name
    if tags:
        spec["tags"] = tags
    job = client.submit(spec)
    return Run(client, job, batch_size=batch_size, flush_seconds=flush_seconds)
