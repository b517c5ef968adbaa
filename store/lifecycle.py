"""A job's life: its statuses and every transition between them, each fenced.

queued ──claim──▶ running ──▶ succeeded | failed | cancelled
  │                 │ └──hand back (shutdown) / lease expired──▶ queued / running again
  └──cancel──▶ cancelled                     (terminal jobs may be deleted)
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL: tuple[Status, ...] = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
"""Statuses a job never leaves (it may only be deleted)."""
