"""Settings, read once from the environment (prefix ``GRADLAB_``).

Every field here is documented in the README's settings table; keep the two in step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """gradlab's settings; each field is the environment variable ``GRADLAB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GRADLAB_", extra="ignore")

    database_url: str = Field(
        "sqlite:///./gradlab.db",
        description="Any SQLAlchemy URL: the embedded SQLite file by default, "
        "postgresql+psycopg://user@host/db to scale out.",
    )
    auth: Literal["off", "required"] = Field(
        "off",
        description="off: one local account, no sign-in; required: every /v1 request, the "
        "event streams, plots, CSV and the dashboard's data need an API token.",
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a worker's claim on a job lasts without a heartbeat."
    )
    max_attempts: int = Field(
        3, ge=1, description="Tries before a job whose workers keep dying fails as worker_lost."
    )
    max_iterations: int = Field(1_000_000, ge=1, description="Largest `iterations` a job may ask.")
    max_inline_rows: int = Field(100_000, ge=1, description="Largest inline dataset, in rows.")
    max_inline_features: int = Field(1_000, ge=1, description="Largest inline dataset, in columns.")
    max_body_bytes: int = Field(
        32 * 1024 * 1024,
        ge=1024,
        description="Request bodies above this get 413: parsing one costs the API about five "
        "times its size (bench/bodies.py), so this and GRADLAB_MAX_LARGE_BODIES bound its memory.",
    )
    large_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="A request body above this is large: it takes one of the API's "
        "GRADLAB_MAX_LARGE_BODIES slots while it is handled.",
    )
    max_large_bodies: int = Field(
        2, ge=1, description="Large bodies handled at once; one more gets 503 with Retry-After."
    )
    max_check_evaluations: int = Field(
        200_000,
        ge=1,
        description="Loss evaluations a job's gradient checks may make in all; more is a 422.",
    )
    max_gradient_check_work: int = Field(
        20_000_000,
        ge=1,
        description="POST /v1/gradient-checks: the largest rows × parameters one call may "
        "compute with (it runs in the API process); more is a 422.",
    )
    max_sweep_jobs: int = Field(256, ge=1, description="Largest grid a sweep may expand to.")
    max_points_per_batch: int = Field(
        10_000,
        ge=1,
        description="POST /v1/jobs/{id}/metrics: the most points one batch may append; more "
        "is a 422 naming `points`.",
    )
    max_active_jobs_per_user: int = Field(
        32,
        ge=1,
        description="A student's queued + running jobs; a submission or sweep past it gets 429.",
    )
    flush_iterations: int = Field(
        1_000, ge=1, description="A worker writes its buffered points after this many iterations"
    )
    flush_seconds: float = Field(0.2, gt=0, description="... or after this many seconds.")
    poll_seconds: float = Field(
        0.05, gt=0, description="How often an idle worker looks for queued jobs (SQLite)."
    )
    listen_poll_seconds: float = Field(
        2.0,
        gt=0,
        description="PostgreSQL: an idle worker waits on LISTEN this long before polling anyway.",
    )
    shutdown_seconds: float = Field(
        10.0, gt=0, description="How long a worker may take to hand its job back on SIGTERM."
    )
    job_memory_mb: int = Field(
        1024,
        ge=64,
        description="Address space a job's process may use; past it the job fails memory_limit.",
    )
    job_timeout_seconds: float = Field(
        600.0, gt=0, description="Wall clock an attempt may take; past it the job fails time_limit."
    )
    sandbox: Literal["auto", "bwrap", "subprocess"] = Field(
        "auto",
        description="Where student code runs: bwrap (bubblewrap), subprocess (a plain process, "
        "same limits; refused with GRADLAB_AUTH=required) or auto (bwrap when it works here).",
    )
    max_student_code_bytes: int = Field(
        64 * 1024, ge=1, description="Largest `student.code` a job may carry; more is a 422."
    )
    sandbox_memory_mb: int = Field(
        512, ge=64, description="Address space of the student's process; past it: memory_limit."
    )
    sandbox_cpu_seconds: int = Field(
        300, ge=1, description="CPU time the student's process may use in all; past it: time_limit."
    )
    sandbox_call_seconds: float = Field(
        10.0, gt=0, description="Wall clock of one call of the student's function: time_limit."
    )
    sandbox_start_seconds: float = Field(
        30.0, gt=0, description="Wall clock to start the sandbox and run the code's top level."
    )
    sandbox_output_bytes: int = Field(
        64 * 1024,
        ge=0,
        description="What the student's code may print or write to a file; the rest is dropped.",
    )
    sandbox_processes: int = Field(
        1, ge=1, description="Processes the student's code may run (no fork bombs)."
    )
    sandbox_open_files: int = Field(
        32, ge=8, description="Files the student's process may hold open at once."
    )
    sandbox_spare: bool = Field(
        True,
        description="After a student job, each job process starts the next job's sandbox "
        "(NumPy imported, waiting) so that job does not wait for it.",
    )
    sqlite_busy_timeout_ms: int = Field(
        30_000, ge=0, description="How long SQLite waits for a lock before giving up."
    )
    max_streams: int = Field(
        512, ge=1, description="Event streams open at once; one more gets 503 with Retry-After."
    )
    max_streams_per_client: int = Field(
        32, ge=1, description="Event streams one client address may hold; one more gets 429."
    )
    stream_send_timeout_seconds: float = Field(
        30.0, gt=0, description="An event stream whose client reads nothing this long is closed."
    )
    plot_renderers: int = Field(
        2, ge=1, description="Processes drawing plots, each one image at a time."
    )
    plot_queue: int = Field(
        16, ge=0, description="Plots waiting for a renderer; one more gets 503 with Retry-After."
    )
    metrics: bool = Field(
        True,
        description="Serve GET /metrics (Prometheus) and count every request for it; off: "
        "no /metrics and nothing recorded on the request path.",
    )
    worker_metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="A lone `gradlab worker` (compose) serves its Prometheus metrics on this "
        "port at /metrics; under `gradlab serve` the API's /metrics has them already.",
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="json: one JSON object per line (requests, job transitions, everything "
        "else) for a log collector; text: one readable line each.",
    )
    allowed_hosts: str = Field(
        "localhost,127.0.0.1,::1",
        description="Comma-separated names the API answers to in the Host header (`*.lab.edu` "
        "for subdomains, `*` for any); any other Host gets 400, which stops DNS rebinding.",
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins (scheme://host[:port]) that get CORS headers and "
        "may send state-changing requests from their pages; none by default.",
    )

    @property
    def allowed_host_names(self) -> tuple[str, ...]:
        """``allowed_hosts`` as a list: lower case, IPv6 without its brackets."""
        return tuple(host_name(h) for h in comma_list(self.allowed_hosts))

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        """``cors_origins`` as a list, as browsers write ``Origin``: lower case, no end slash."""
        return tuple(o.rstrip("/").lower() for o in comma_list(self.cors_origins))


def comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``: how list settings are written in the environment."""
    return [part.strip() for part in text.split(",") if part.strip()]


def host_name(host: str) -> str:
    """A host as the allowed-hosts check compares it: lower case, without a trailing dot, an
    IPv6 address without its brackets (``[::1]`` → ``::1``)."""
    host = host.strip().lower().rstrip(".")
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
