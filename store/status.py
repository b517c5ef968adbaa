"""The statuses a job goes through and how an attempt at it ends: the vocabulary of the
lifecycle (``store.lifecycle`` owns the transitions). Import-light, for the command line."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a job is in its life (``jobs.status``)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL: tuple[Status, ...] = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
"""Statuses a job never leaves (it may only be deleted)."""

ACTIVE: tuple[Status, ...] = (Status.QUEUED, Status.RUNNING)
"""Statuses of a job not yet finished: what a quota counts, what a grade waits for."""


class Outcome(StrEnum):
    """How one attempt at a job ended (``attempts.outcome``)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RELEASED = "released"  # handed back on shutdown, for another worker to resume
    LOST = "lost"  # its worker died or stalled past its lease
