"""The client's Typer commands: submit (and follow), jobs, show, metrics, cancel, sweep.

Each talks to the server through :class:`~gradlab.client.http.Client` and renders with
:mod:`gradlab.client.render`; humans' output goes to stderr, so that stdout carries what a
script captures (a job id, a CSV). A client error becomes one line on stderr and the exit
code it carries (see :mod:`gradlab.client`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer

from gradlab.client import render
from gradlab.client.http import FAILED, INTERRUPTED, INVALID, APIError, Client, ClientError
from gradlab.client.spec import read_spec
from store.status import TERMINAL, Status


def _model_kind(value: str) -> str:
    """--model's check, against the catalog (imported only when the option is given: the
    engine brings NumPy, which a command that needs none should not pay for)."""
    from engine import catalog

    if value not in catalog.MODELS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(catalog.MODELS)}.")
    return value


DEFAULT_URL = "http://127.0.0.1:8000"

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="GRADLAB_URL", show_envvar=True, help="The gradlab server to talk to."
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="GRADLAB_TOKEN",
        show_envvar=True,
        show_default=False,
        help="Your API token, for a server with GRADLAB_AUTH=required (better in GRADLAB_TOKEN: "
        "an option shows in the process list).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]
JobId = Annotated[str, typer.Argument(metavar="ID", help="The job's id.", show_default=False)]


def _fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    render.console(stderr=True).print(f"[red]gradlab:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _server(url: str, token: str | None, job_id: str | None = None) -> Iterator[Client]:
    """A client for ``url`` sending ``token``; its errors become one message on stderr and
    an exit code (never with the token in it)."""
    try:
        with Client(url, token=token) as api:
            yield api
    except APIError as exc:
        if exc.status == 401:
            why = "the one sent is unknown or revoked" if token else "none was sent"
            _fail(
                f"{url} needs a valid API token, and {why}. Set GRADLAB_TOKEN (or pass "
                "--token); `gradlab users token NAME` issues one.",
                exc.exit_code,
            )
        if exc.status == 404 and job_id is not None:
            _fail(f"no job {job_id} at {url}.", FAILED)
        problems = exc.problems()
        if problems:
            _fail("the server rejected it:\n  " + "\n  ".join(problems), exc.exit_code)
        _fail(exc.message, exc.exit_code)
    except ClientError as exc:
        _fail(str(exc), exc.exit_code)


def _spec(source: str) -> dict[str, Any]:
    """The mapping in a spec file; a file that is not one exits with its problem."""
    try:
        return read_spec(source)
    except ValueError as exc:
        _fail(str(exc), INVALID)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def submit(
    spec: Annotated[
        str,
        typer.Argument(
            metavar="SPEC", help="A job spec: a .json or .yaml/.yml file, or - for JSON on stdin."
        ),
    ],
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Watch it train; exit non-zero unless it succeeds."),
    ] = False,
    name: Annotated[str | None, typer.Option(help="Name the job (overrides the spec).")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retry-safe submission: the same key, the same job.")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Submit a training job and print its id; --follow shows it train."""
    body = _spec(spec)
    if name is not None:
        body["name"] = name
    with _server(url, token) as api:
        job = api.submit(body, idempotency_key)
        typer.echo(job["id"])
        if not follow:
            return
        console = render.console(stderr=True)
        try:
            job, checks = render.follow_job(api, job, console)
        except KeyboardInterrupt:
            console.print(
                f"stopped following; the job goes on (gradlab show {job['id']}, "
                f"gradlab cancel {job['id']})"
            )
            raise typer.Exit(INTERRUPTED) from None
        if job["status"] == "deleted":
            _fail(f"job {job['id']} was deleted while it ran.", FAILED)
    raise typer.Exit(render.print_outcome(console, job, checks))


def jobs(
    status: Annotated[Status | None, typer.Option(help="Only jobs in this state.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Only jobs of this model kind (GET /v1/catalog lists them).",
            parser=_model_kind,
            metavar="KIND",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Only jobs with this name.")] = None,
    tag: Annotated[str | None, typer.Option(help="KEY (has the tag) or KEY:VALUE.")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only the jobs of this sweep.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Only this account's jobs (instructors and admins).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 20,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """List jobs, newest first."""
    from rich.markup import escape

    with _server(url, token) as api:
        page = api.jobs(
            status=status, model=model, name=name, tag=tag, sweep_id=sweep, owner=owner, limit=limit
        )
    if as_json:
        _print_json(page)
        return
    console = render.console()
    if not page["jobs"]:
        console.print("no jobs")
        return
    # The id is 32 characters: below 110 columns, model and created make way for the name.
    columns = ["id", "name", "model", "status", "iterations", "loss", "acc", "created (UTC)"]
    if console.width < 110:
        columns = [c for c in columns if c not in ("model", "created (UTC)")]
    table = render.table(box=None, header_style="bold")
    for column in columns:
        right = column in ("iterations", "loss", "acc")
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "name")
    for job in page["jobs"]:
        cells = {
            "id": job["id"],
            "name": escape(job["name"] or ""),
            "model": job["spec"]["model"]["kind"].removesuffix("_regression"),
            "status": render.status(job["status"]),
            "iterations": f"{job['iterations_done']}/{job['spec']['iterations']}",
            "loss": render.num(job["summary"]["final_loss"]),
            "acc": render.pct(job["summary"]["final_accuracy"]),
            "created (UTC)": render.when(job["created_at"]),
        }
        table.add_row(*(cells[c] for c in columns))
    console.print(table)
    if page.get("next_cursor"):
        console.print(f"[dim]more jobs than {limit}: raise --limit to see them[/dim]")


def show(
    job_id: JobId, as_json: AsJson = False, url: Url = DEFAULT_URL, token: Token = None
) -> None:
    """One job: status, spec, summary, error and gradient checks."""
    from rich.markup import escape

    with _server(url, token, job_id) as api:
        job = api.job(job_id)
        checks = api.checks(job_id) if not as_json else []
    if as_json:
        _print_json(job)
        return
    console = render.console()
    console.print(render.headline(job))
    rows = [(k, escape(v)) for k, v in render.describe(job["spec"])]
    if job["tags"]:
        rows.append(("tags", escape(", ".join(f"{k}={v}" for k, v in job["tags"].items()))))
    rows += [
        ("created", render.when(job["created_at"])),
        ("started", render.when(job["started_at"])),
        ("finished", render.when(job["finished_at"])),
        *render.summary_rows(job),
    ]
    if job["cancel_requested"] and job["status"] == "running":
        rows.append(("cancel", "requested; it stops at its next flush"))
    console.print(render.grid(rows))
    if (line := render.error_line(job)) is not None:
        console.print(line)
    if checks:
        failed = sum(1 for c in checks if c.get("passed") is False)
        verdict = "[green]all passed[/green]" if not failed else f"[red]{failed} failed[/red]"
        console.print(f"{len(checks)} gradient checks: {verdict}")
        console.print(render.checks_table(checks))
    else:
        pending = job["status"] in ("queued", "running")
        console.print("no gradient checks yet" if pending else "no gradient checks")


def metrics(
    job_id: JobId,
    csv: Annotated[bool, typer.Option("--csv", help="Write the CSV export to stdout.")] = False,
    start: Annotated[int, typer.Option(min=0, help="First iteration.")] = 0,
    end: Annotated[int | None, typer.Option(min=0, help="Last iteration (inclusive).")] = None,
    max_points: Annotated[
        int | None,
        typer.Option(min=3, help="Downsample (keeps the first, last, lowest and highest)."),
    ] = None,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """A job's recorded points: a short table, all of them with --csv, or --json."""

    with _server(url, token, job_id) as api:
        if csv:
            out = typer.get_binary_stream("stdout")
            for chunk in api.metrics_csv(job_id, start=start, end=end, max_points=max_points):
                out.write(chunk)
            out.flush()
            return
        rows = max_points if (max_points or as_json) else 20
        page = api.metrics(job_id, start=start, end=end, max_points=rows)
    if as_json:
        _print_json(page)
        return
    console = render.console()
    points = page["points"]
    if not points:
        console.print(f"no points recorded for job {job_id} in this range")
        return
    classifier = any(p["accuracy"] is not None for p in points)
    table = render.table()
    for column in ("iteration", "loss", "data_loss", "reg_loss", "grad_norm"):
        table.add_column(column, justify="right")
    if classifier:
        table.add_column("accuracy", justify="right")
    for p in points:
        cells = [str(p["iteration"])] + [
            render.num(p[k], ".6g") for k in ("loss", "data_loss", "reg_loss", "grad_norm")
        ]
        table.add_row(*cells, *([render.pct(p["accuracy"])] if classifier else []))
    console.print(table)
    if page["downsampled"]:
        console.print(
            f"[dim]{len(points)} of {page['total']} points, downsampled (keeping spikes); "
            "--max-points N for more, --csv for all[/dim]"
        )


def cancel(job_id: JobId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Cancel a job and print its new status (a running one stops at its next flush)."""
    with _server(url, token, job_id) as api:
        job = api.cancel(job_id)
    typer.echo(job["status"])
    if job["status"] == "running":
        render.console(stderr=True).print("cancel requested: the job stops at its next flush")


def sweep(
    spec: Annotated[
        str, typer.Argument(metavar="SWEEP", help="A .json or .yaml file: {name, base, grid}.")
    ],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Start a sweep (one job per combination of the grid) and print its id."""
    body = _spec(spec)
    with _server(url, token) as api:
        created = api.sweep(body)
    typer.echo(created["id"])
    table = render.table(title=f"{len(created['jobs'])} jobs")
    table.add_column("id", no_wrap=True)
    table.add_column("overrides")
    table.add_column("status")
    for job in created["jobs"]:
        overrides = ", ".join(f"{k}={v}" for k, v in job["overrides"].items())
        table.add_row(job["id"], overrides, render.status(job["status"]))
    console = render.console(stderr=True)
    console.print(table)
    console.print(f"[dim]gradlab jobs --sweep {created['id']} to see how they do[/dim]")


def check(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE.py", help="Your Python file with the exercise's function."),
    ],
    exercise: Annotated[
        str,
        typer.Option(help="A seed exercise (GET /v1/jobs/examples): spiral_softmax, …"),
    ],
    function: Annotated[
        str, typer.Option(help="The function in FILE.py to check.")
    ] = "loss_and_gradients",
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Watch it train while it is checked.")
    ] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Train a seed exercise with your own loss_and_gradients(params, X, y, l2) and end with
    the verdicts: each gradient against the solution, and what the slip most likely is."""
    try:
        with open(file, encoding="utf-8") as f:
            code = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}", INVALID)
    console = render.console(stderr=True)
    with _server(url, token) as api:
        examples = api.examples()
        if exercise not in examples:
            _fail(f"{exercise!r} is not a seed exercise: one of {', '.join(examples)}.", INVALID)
        spec = {**examples[exercise]["value"], "student": {"code": code, "function": function}}
        job = api.submit(spec)
        typer.echo(job["id"])
        try:
            if follow:
                job, _ = render.follow_job(api, job, console)
            while job["status"] not in TERMINAL:
                time.sleep(0.5)
                job = api.job(job["id"])
        except KeyboardInterrupt:
            console.print(f"stopped waiting; the check goes on (gradlab show {job['id']})")
            raise typer.Exit(INTERRUPTED) from None
        checks = api.checks(job["id"])
        reference = api.reference(job["id"]) if job.get("reference") else None
    lines, passed = render.student_verdicts(job, checks, reference)
    console.print(render.headline(job))
    for line in lines:
        console.print(line, soft_wrap=True)
    raise typer.Exit(0 if passed else FAILED)


COMMANDS = (submit, check, jobs, show, metrics, cancel, sweep)
"""The client's commands, in the order ``gradlab --help`` lists them."""
