"""The scrape's text: every process's recorded metrics (:func:`store.telemetry.scrape_registry`),
the API's requests, and the jobs' gauges, counted from the database at most once per
:data:`CACHE_SECONDS` (a scrape every second from two Prometheus servers costs one grouped
query)."""

from __future__ import annotations

import threading
import time

from prometheus_client import CollectorRegistry, generate_latest

from service.telemetry import repository
from store.db import Database
from store.status import Status
from store.telemetry import RequestMetrics, scrape_registry

CACHE_SECONDS = 1.0


class JobGauges:
    """``gradlab_jobs{status}`` and ``gradlab_queue_depth`` as exposition text, cached."""

    def __init__(self, db: Database, ttl: float = CACHE_SECONDS) -> None:
        self.db, self.ttl = db, ttl
        self._text = b""
        self._until = 0.0
        self._lock = threading.Lock()

    def text(self) -> bytes:
        with self._lock:
            now = time.monotonic()
            if now >= self._until:
                self._text = self._render()
                self._until = now + self.ttl
            return self._text

    def _render(self) -> bytes:
        with self.db.read_session() as session:
            counts = repository.jobs_by_status(session)
        lines = [
            "# HELP gradlab_jobs Jobs in the database by status.",
            "# TYPE gradlab_jobs gauge",
            *(f'gradlab_jobs{{status="{s.value}"}} {counts.get(s.value, 0)}' for s in Status),
            "# HELP gradlab_queue_depth Jobs queued and waiting for a worker.",
            "# TYPE gradlab_queue_depth gauge",
            f"gradlab_queue_depth {counts.get(Status.QUEUED.value, 0)}",
        ]
        return ("\n".join(lines) + "\n").encode()


def scrape(requests: RequestMetrics, gauges: JobGauges) -> bytes:
    """The whole exposition: the workers' (and this process's library) metrics, this API's
    requests, then the jobs' gauges."""
    own = CollectorRegistry(auto_describe=False)
    own.register(requests)
    return generate_latest(scrape_registry()) + generate_latest(own) + gauges.text()
