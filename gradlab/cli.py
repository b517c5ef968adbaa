"""The ``gradlab`` command: the server's commands (serve, worker, migrate, bench) and the
client's (submit, jobs, show, metrics, cancel, sweep) in one Typer app."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from gradlab import client
from gradlab.client import assignments as assignment_commands
from gradlab.users import app as users_app

app = typer.Typer(
    name="gradlab",
    help="Experiment tracking for learning, and checking, how gradient descent works.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def configure_logging(log_format: str | None = None) -> None:
    """INFO and up to stderr, one line each: how every gradlab process logs. With
    GRADLAB_LOG_FORMAT=json each line is a JSON object: ``time``, ``level``, ``logger``,
    ``message`` and the record's own fields (an access line's ``user``, ``method``,
    ``route``, ``status``, ``ms``; a job transition's ``job_id``, ``owner``, ``from``,
    ``to``, ``attempt``)."""
    if log_format is None:
        from store.settings import Settings

        log_format = Settings().log_format
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=0, help="Worker processes to start (0: API only).")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(help="One line per request on the gradlab.access logger.")
    ] = True,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(help="With GRADLAB_AUTH=off, listen on a non-loopback --host anyway."),
    ] = False,
) -> None:
    """Migrate the database, start the workers and serve the API (Swagger UI at /docs)."""
    from gradlab.serve import refusal
    from gradlab.serve import serve as run
    from store.settings import Settings

    settings = Settings()
    why = refusal(host, settings, allow_unauthenticated)
    if why is not None:
        typer.echo(why, err=True)
        raise typer.Exit(2)
    configure_logging(settings.log_format)
    run(host, port, workers, settings, access_log=access_log)


@app.command(hidden=True)
def api(
    fd: Annotated[int, typer.Option(help="A listening socket's file descriptor.")],
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the API alone on an inherited socket: the API process of `gradlab serve`."""
    from gradlab.serve import serve_api
    from store.settings import Settings

    settings = Settings()
    configure_logging(settings.log_format)
    serve_api(fd, settings, access_log=access_log)


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queue is empty.")] = False,
    worker_id: Annotated[str | None, typer.Option("--id", help="Name in attempt records.")] = None,
) -> None:
    """Run one worker on the configured database until SIGTERM/SIGINT."""
    from store.settings import Settings
    from worker.main import Worker

    settings = Settings()
    configure_logging(settings.log_format)
    if settings.worker_metrics_port is not None:
        from store.telemetry import serve_worker_metrics

        serve_worker_metrics(settings.worker_metrics_port)
    w = Worker(settings, worker_id=worker_id, burst=burst)
    w.install_signal_handlers()
    raise typer.Exit(w.run())


@app.command()
def migrate() -> None:
    """Upgrade the database to the latest schema."""
    import migrations
    from store.settings import Settings

    url = Settings().database_url
    migrations.upgrade(url)
    typer.echo(f"database at {migrations.head_revision()}")


@app.command()
def bench(
    database_url: Annotated[
        str | None,
        typer.Option(help="Run on this database (default: a fresh SQLite file in bench/.work)."),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated sections: engine, tracking, writes, reads, api, auth, tiny, "
            "pickup, memory."
        ),
    ] = None,
    peer: Annotated[
        str | None, typer.Option(help="`mlflow`: the same workloads against MLflow too.")
    ] = None,
    json: Annotated[Path | None, typer.Option(help="Also write the rows as JSON here.")] = None,
) -> None:
    """Run the benchmark suite and print its table (see bench/README.md)."""
    # The benchmarks sit above the command line (they drive it), so this hands over to
    # `python -m bench` in this process's place rather than importing it: its exit code and
    # its Ctrl-C handling (which stops the servers it started) are the command's own.
    args = [
        *(["--database-url", database_url] if database_url else []),
        *(["--only", only] if only else []),
        *(["--peer", peer] if peer else []),
        *(["--json", str(json)] if json else []),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "bench", *args])


app.add_typer(users_app, name="users")

for _command in client.COMMANDS:  # submit, jobs, show, metrics, cancel, sweep
    app.command(rich_help_panel="Client (--url or GRADLAB_URL)")(_command)
for _assignment_command in assignment_commands.COMMANDS:  # assignments, submit-assignment, grades
    app.command(rich_help_panel="Assignments (--url or GRADLAB_URL)")(_assignment_command)
app.add_typer(
    assignment_commands.app, name="assignment", rich_help_panel="Assignments (--url or GRADLAB_URL)"
)


def main() -> None:
    app()
