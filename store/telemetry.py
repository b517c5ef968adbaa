"""gradlab's Prometheus metrics: every name, label and bucket in one place, and the registry
a scrape reads.

The API records requests (:class:`RequestMetrics`, fed by :mod:`service.web.accesslog`), the
worker its claims, flushes and attempts (:mod:`store.queue`, :mod:`worker.main`); jobs by
status and the queue's depth are counted from the database when ``/metrics`` is scraped
(:mod:`service.telemetry`).

Across processes: ``gradlab serve`` gives its API and worker processes a private
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen when the library
is imported), where each worker writes its values to files of its own; the API's
``/metrics`` sums them all (:func:`scrape_registry`). The API's own request metrics stay in
its memory (the process that answers the scrape), as plain counts the event loop bumps: a
multiprocess value is a lock and an ``mmap`` write per increment, three per request, where
this is one dict lookup and a bisect. A lone ``gradlab worker`` (compose) serves its own on
GRADLAB_WORKER_METRICS_PORT.

Labels are bounded: a route *template*, a method from a fixed set, a status class (``2xx``),
a model kind, an outcome. Never a user, a job id or a raw path.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import REGISTRY, CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.utils import floatToGoString

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger("gradlab.telemetry")

FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Buckets for requests, claims and flushes (seconds)."""
SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
"""Buckets for pickups and attempts (seconds)."""

CLAIM_DURATION = Histogram(
    "gradlab_claim_duration_seconds",
    "A worker's claim transaction; result is job (it claimed one) or empty.",
    ("result",),
    buckets=FAST,
)
PICKUP = Histogram(
    "gradlab_job_pickup_seconds",
    "From a job's submission to its first claim by a worker.",
    ("model",),
    buckets=SLOW,
)
FLUSH_DURATION = Histogram(
    "gradlab_flush_duration_seconds",
    "A worker's fenced flush transaction (points, checks, checkpoint; the last one ends the "
    "attempt).",
    ("final",),
    buckets=FAST,
)
JOB_DURATION = Histogram(
    "gradlab_job_duration_seconds",
    "One attempt at a job, from its claim to its outcome, by model kind and outcome.",
    ("model", "outcome"),
    buckets=SLOW,
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods that are their own label; any other (a client may send any token) is ``other``."""


class RequestMetrics:
    """``gradlab_http_requests_total`` and ``gradlab_http_request_duration_seconds`` by
    method, route template and status class, kept by the API process that serves them (see
    the module): :meth:`observe` on the event loop, :meth:`collect` at scrape time."""

    LABELS = ("method", "route", "status")

    def __init__(self, buckets: tuple[float, ...] = FAST) -> None:
        self.bounds = buckets
        # (method label, route, status // 100) -> [count per bucket ..., +Inf bucket, sum]
        self.series: dict[tuple[str, str, int], list[float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", route, status // 100)
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0.0] * (len(self.bounds) + 2)
        counts[bisect_left(self.bounds, seconds)] += 1  # le: a value on a bound is in it
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gradlab_http_requests",
            "HTTP requests answered, by method, route template and status class.",
            labels=self.LABELS,
        )
        durations = HistogramMetricFamily(
            "gradlab_http_request_duration_seconds",
            "Time to the end of each HTTP answer (of an event stream: until it closed).",
            labels=self.LABELS,
        )
        edges = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        for (method, route, status), live in list(self.series.items()):
            counts = list(live)  # a snapshot: the event loop goes on counting
            labels = [method, route, f"{status}xx"]
            cumulative, running = [], 0.0
            for edge, n in zip(edges, counts[:-1], strict=True):
                running += n
                cumulative.append((edge, running))
            requests.add_metric(labels, running)
            durations.add_metric(labels, cumulative, counts[-1])
        yield requests
        yield durations


def scrape_registry() -> CollectorRegistry:
    """What a scrape reads: every process's values from the multiprocess directory when there
    is one, else this process's own."""
    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return registry


def since(moment: datetime) -> float:
    """Seconds from ``moment`` (a stored timestamp; SQLite's come back without a zone, in
    UTC) to now."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (datetime.now(UTC) - moment).total_seconds()


def serve_worker_metrics(port: int) -> None:
    """A lone worker's own ``/metrics`` on ``port`` (every address), in a daemon thread. Not
    under ``gradlab serve`` (its workers share a multiprocess directory, which the API's
    ``/metrics`` reads; they would all want the one port)."""
    if os.environ.get(MULTIPROC_ENV):
        log.info("GRADLAB_WORKER_METRICS_PORT ignored: this worker's metrics are the API's")
        return
    start_http_server(port, registry=REGISTRY)
    log.info("worker metrics on :%d/metrics", port)
