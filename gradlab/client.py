"""The ``gradlab`` client commands: submit (and follow), jobs, show, metrics, cancel, sweep.

They talk to a gradlab server over HTTP, given by ``--url`` or ``GRADLAB_URL``. :class:`Client`
is the HTTP side (transport failures become :class:`ServerUnreachable`, error answers
:class:`APIError`); the commands below it render with rich, humans' output on stderr so that
stdout carries what a script captures (a job id, a CSV). httpx, rich and yaml are imported
inside functions: ``gradlab serve`` and ``gradlab worker`` import this module to register the
commands and should not pay for them.

Exit codes: 0 done (a followed job succeeded); 1 the job failed or was cancelled, or the
server answered with an error; 2 the input is not valid (a bad spec file, a 422); 3 no server
answered; 130 interrupted.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

if TYPE_CHECKING:
    import httpx
    from rich.console import Console
    from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8000"
STREAM_READ_TIMEOUT = 60.0  # the server pings every 15 s; silence longer than this is a drop
RECONNECT_PATIENCE = 30.0  # seconds of failed reconnects before giving up on a stream
FAILED, INVALID, UNREACHABLE, INTERRUPTED = 1, 2, 3, 130


# --- the HTTP client ---------------------------------------------------------------------


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

    def problems(self) -> list[str]:
        """Each problem of a 422 as ``field: message``."""
        if not isinstance(self.detail, list):
            return []
        lines = []
        for problem in self.detail:
            loc = [str(part) for part in problem.get("loc", ())[1:]]  # after "body"
            field = problem.get("field") or ".".join(loc)
            msg = problem.get("msg", "is not valid")
            lines.append(f"{field}: {msg}" if field else str(msg))
        return lines


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    raise APIError(response.status_code, body, response.reason_phrase)


class Client:
    """A gradlab server's jobs API, one method per endpoint the commands use."""

    def __init__(
        self, url: str, *, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        import httpx

        self.url = (url if "://" in url else f"http://{url}").rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

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

    def jobs(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._request("GET", "/v1/jobs", params=params)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}")

    def checks(self, job_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/v1/jobs/{job_id}/gradient-checks")["checks"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

    def sweep(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/sweeps", json=body)

    def metrics(self, job_id: str, **params: Any) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        return self._request("GET", f"/v1/jobs/{job_id}/metrics", params=params)

    def metrics_csv(self, job_id: str, **params: Any) -> Iterator[bytes]:
        """The CSV export, streamed as it arrives."""
        import httpx

        params = {k: v for k, v in params.items() if v is not None} | {"format": "csv"}
        try:
            with self._http.stream("GET", f"/v1/jobs/{job_id}/metrics", params=params) as r:
                if not r.is_success:
                    r.read()
                    _raise_for_status(r)
                yield from r.iter_bytes()
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.url, exc) from None

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
                    if not source.response.is_success:
                        source.response.read()
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


# --- reading files ---------------------------------------------------------------------------


def _yaml_loader() -> type:
    """PyYAML's safe loader, also reading ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return Loader


def read_spec(source: str) -> dict[str, Any]:
    """A JSON or YAML mapping from a file (YAML when it ends in .yaml/.yml), or JSON on stdin
    for ``-``. Raises ValueError with a sentence naming the file and what is wrong."""
    import yaml

    where = "stdin" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror or exc}.") from None
    try:
        if source != "-" and Path(source).suffix.lower() in (".yaml", ".yml"):
            data = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
        else:
            data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}.") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where} must hold a mapping (a JSON object), not {type(data).__name__}.")
    return data


# --- output ------------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    _console(stderr=True).print(f"[red]gradlab:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _server(url: str, job_id: str | None = None) -> Iterator[Client]:
    """A client for ``url``; its errors become one message on stderr and an exit code."""
    try:
        with Client(url) as api:
            yield api
    except APIError as exc:
        if exc.status == 404 and job_id is not None:
            _fail(f"no job {job_id} at {url}.", FAILED)
        problems = exc.problems()
        if problems:
            _fail("the server rejected it:\n  " + "\n  ".join(problems), exc.exit_code)
        _fail(exc.message, exc.exit_code)
    except ClientError as exc:
        _fail(str(exc), exc.exit_code)


def _table(**kwargs: Any) -> Table:
    from rich import box
    from rich.table import Table

    options: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False, "title_justify": "left"}
    return Table(**(options | kwargs))


def _num(value: float | None, spec: str = ".5g") -> str:
    return "—" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _when(iso: str | None) -> str:
    return "—" if not iso else iso[:19].replace("T", " ")


STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def _status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _verdict(check: dict[str, Any]) -> str:
    """One gradient check in a line, as it arrives."""
    where = f"gradient check @ {check['iteration']} ({check['reference']})"
    if not check.get("available", True):
        return f"[dim]– {where}: not available: {check.get('reason')}[/dim]"
    worst = _num(check.get("max_relative_error"), ".1e")
    if check.get("passed"):
        return f"[green]✓[/green] {where}: passed, max relative error {worst}"
    bad = [
        name
        for name, t in check["parameters"].items()
        if t["max_relative_error"] is None or t["max_relative_error"] > check["rtol"]
    ]
    return f"[red]✗ {where}: FAILED[/red], max relative error {worst} in {', '.join(bad)}"


def _pick(checks: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """At most ``limit`` checks for a table: every failure, then the first and the last."""
    if len(checks) <= limit:
        return checks
    keep = {i for i, c in enumerate(checks) if c.get("passed") is False}
    ends = [*range(len(checks))[: limit // 2], *range(len(checks))[-(limit // 2) :]]
    for i in ends:
        if len(keep) >= limit:
            break
        keep.add(i)
    return [checks[i] for i in sorted(keep)]


def checks_table(checks: list[dict[str, Any]]) -> Table:
    """Gradient checks: iteration, reference, each tensor's max relative error, verdict, kinks.

    Up to four tensors get a column each; deeper nets list theirs in one column."""
    names: list[str] = []
    for check in checks:
        names += [n for n in check["parameters"] if n not in names]
    columns = names if len(names) <= 4 else ["max relative error"]
    shown = _pick(checks)
    title = "Gradient checks: max relative error per tensor"
    if len(shown) < len(checks):
        title += f" ({len(shown)} of {len(checks)}: the first, the last, every failure)"
    table = _table(title=title, show_lines=columns is not names)
    table.add_column("iteration", justify="right")
    table.add_column("reference")
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("result")
    table.add_column("kinks", justify="right")
    for check in shown:
        tensors = check["parameters"]
        errors = {}
        for name, tensor in tensors.items():
            err = tensor["max_relative_error"]
            text = _num(err, ".1e")
            errors[name] = f"[red]{text}[/red]" if err is None or err > check["rtol"] else text
        if columns is names:
            cells = [errors.get(name, "—") for name in names]
        else:
            cells = ["\n".join(f"{name} {text}" for name, text in errors.items())]
        if not check.get("available", True):
            result = f"[dim]n/a: {check.get('reason')}[/dim]"
        else:
            result = "[green]pass[/green]" if check.get("passed") else "[red]FAIL[/red]"
        kinks = sum(t["kinks"]["count"] for t in tensors.values())
        table.add_row(str(check["iteration"]), check["reference"], *cells, result, str(kinks))
    return table


def _summary_lines(job: dict[str, Any]) -> list[tuple[str, str]]:
    s = job["summary"]
    rows = [("final loss", _num(s["final_loss"]))]
    if s["best_loss"] is not None:
        rows.append(("best loss", f"{_num(s['best_loss'])} @ iteration {s['best_iteration']}"))
    if s["final_accuracy"] is not None:
        rows.append(("final accuracy", _pct(s["final_accuracy"])))
    total = job["spec"].get("iterations", "?")
    rows.append(("iterations", f"{job['iterations_done']}/{total}"))
    rows.append(("attempts", str(job["attempts"])))
    return rows


def _grid(rows: list[tuple[str, str]]) -> Table:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _headline(job: dict[str, Any]) -> str:
    from rich.markup import escape

    name = f" [bold]{escape(job['name'])}[/bold]" if job.get("name") else ""
    return f"job {job['id']}{name}: {_status(job['status'])}"


def _error_line(job: dict[str, Any]) -> str | None:
    from rich.markup import escape

    error = job.get("error")
    if not error:
        return None
    at = f", iteration {error['iteration']}" if error.get("iteration") is not None else ""
    return f"[red]error ({error['type']}{at}):[/red] {escape(str(error['message']))}"


def print_outcome(console: Console, job: dict[str, Any], checks: list[dict[str, Any]]) -> int:
    """A finished job's summary, error and gradient checks; the exit code it deserves."""
    console.print(_headline(job))
    console.print(_grid(_summary_lines(job)))
    if (line := _error_line(job)) is not None:
        console.print(line)
    if job["status"] == "cancelled":
        console.print(f"cancelled after {job['iterations_done']} iterations")
    if checks:
        console.print(checks_table(checks))
    return 0 if job["status"] == "succeeded" else FAILED


def _describe(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The spec in a few lines: model, data, optimizer, regularisation, checks."""

    def args(part: dict[str, Any], skip: tuple[str, ...] = ("kind",)) -> str:
        pairs = [f"{k}={v}" for k, v in part.items() if k not in skip]
        return f"{part['kind']} " + " ".join(pairs) if pairs else part["kind"]

    model, data, check = spec["model"], spec["data"], spec.get("gradient_check", {})
    if data["kind"] == "inline":
        rows = len(data.get("X", []))
        cols = len(data["X"][0]) if rows else 0
        data_text = f"inline, {rows} rows × {cols} features"
    else:
        data_text = args(data)
    refs = ", ".join(check.get("references", [])) or "off"
    every = check.get("every", 0)
    return [
        ("model", f"{args(model)}, loss {spec.get('loss')}"),
        ("data", data_text),
        ("optimizer", args(spec["optimizer"])),
        ("l2", str(spec.get("l2", 0))),
        ("init", args(spec["init"], ("kind", "params")) if "init" in spec else "—"),
        ("checks", f"{refs}, every {every}" if every else f"{refs}, first and last iteration"),
    ]


# --- commands ------------------------------------------------------------------------------

Url = Annotated[
    str,
    typer.Option(
        "--url", envvar="GRADLAB_URL", show_envvar=True, help="The gradlab server to talk to."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]
JobId = Annotated[str, typer.Argument(metavar="ID", help="The job's id.", show_default=False)]


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def follow_job(api: Client, job: dict[str, Any], console: Console) -> tuple[dict, list[dict]]:
    """A progress bar fed by the job's event stream, and each gradient check's verdict as it
    arrives; the finished job and its checks."""
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
    )
    label = escape(job.get("name") or job["id"][:12])
    checks: list[dict[str, Any]] = []
    with progress:
        task = progress.add_task(label, total=job["spec"]["iterations"], stats="")
        for kind, data in api.events(job["id"]):
            if kind in ("status", "end"):
                job = data if "spec" in data else job | data  # a deleted job's end has no spec
                retry = f" (attempt {job['attempts']})" if job.get("attempts", 0) > 1 else ""
                progress.update(task, description=f"{label} {_status(job['status'])}{retry}")
            elif kind == "metrics":
                loss, acc = data["columns"]["loss"][-1], data["columns"]["accuracy"][-1]
                stats = f"loss {_num(loss)}" + (f"  acc {_pct(acc)}" if acc is not None else "")
                progress.update(task, completed=data["last"] + 1, stats=stats)
            elif kind == "check":
                checks.append(data)
                progress.console.print(_verdict(data))
    return job, checks


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
) -> None:
    """Submit a training job and print its id; --follow shows it train."""
    try:
        body = read_spec(spec)
    except ValueError as exc:
        _fail(str(exc), INVALID)
    if name is not None:
        body["name"] = name
    with _server(url) as api:
        job = api.submit(body, idempotency_key)
        typer.echo(job["id"])
        if not follow:
            return
        console = _console(stderr=True)
        try:
            job, checks = follow_job(api, job, console)
        except KeyboardInterrupt:
            console.print(
                f"stopped following; the job goes on (gradlab show {job['id']}, "
                f"gradlab cancel {job['id']})"
            )
            raise typer.Exit(INTERRUPTED) from None
        if job["status"] == "deleted":
            _fail(f"job {job['id']} was deleted while it ran.", FAILED)
    raise typer.Exit(print_outcome(console, job, checks))


def jobs(
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None,
        typer.Option(help="Only jobs in this state."),
    ] = None,
    model: Annotated[
        Literal["linear_regression", "logistic_regression", "softmax_regression", "mlp"] | None,
        typer.Option(help="Only jobs of this model kind."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Only jobs with this name.")] = None,
    tag: Annotated[str | None, typer.Option(help="KEY (has the tag) or KEY:VALUE.")] = None,
    sweep: Annotated[str | None, typer.Option(help="Only the jobs of this sweep.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 20,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
) -> None:
    """List jobs, newest first."""
    from rich.markup import escape

    with _server(url) as api:
        page = api.jobs(status=status, model=model, name=name, tag=tag, sweep_id=sweep, limit=limit)
    if as_json:
        _print_json(page)
        return
    console = _console()
    if not page["jobs"]:
        console.print("no jobs")
        return
    # The id is 32 characters: below 110 columns, model and created make way for the name.
    columns = ["id", "name", "model", "status", "iterations", "loss", "acc", "created (UTC)"]
    if console.width < 110:
        columns = [c for c in columns if c not in ("model", "created (UTC)")]
    table = _table(box=None, header_style="bold")
    for column in columns:
        right = column in ("iterations", "loss", "acc")
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "name")
    for job in page["jobs"]:
        cells = {
            "id": job["id"],
            "name": escape(job["name"] or ""),
            "model": job["spec"]["model"]["kind"].removesuffix("_regression"),
            "status": _status(job["status"]),
            "iterations": f"{job['iterations_done']}/{job['spec']['iterations']}",
            "loss": _num(job["summary"]["final_loss"]),
            "acc": _pct(job["summary"]["final_accuracy"]),
            "created (UTC)": _when(job["created_at"]),
        }
        table.add_row(*(cells[c] for c in columns))
    console.print(table)
    if page.get("next_cursor"):
        console.print(f"[dim]more jobs than {limit}: raise --limit to see them[/dim]")


def show(job_id: JobId, as_json: AsJson = False, url: Url = DEFAULT_URL) -> None:
    """One job: status, spec, summary, error and gradient checks."""
    from rich.markup import escape

    with _server(url, job_id) as api:
        job = api.job(job_id)
        checks = api.checks(job_id) if not as_json else []
    if as_json:
        _print_json(job)
        return
    console = _console()
    console.print(_headline(job))
    rows = [(k, escape(v)) for k, v in _describe(job["spec"])]
    if job["tags"]:
        rows.append(("tags", escape(", ".join(f"{k}={v}" for k, v in job["tags"].items()))))
    rows += [
        ("created", _when(job["created_at"])),
        ("started", _when(job["started_at"])),
        ("finished", _when(job["finished_at"])),
        *_summary_lines(job),
    ]
    if job["cancel_requested"] and job["status"] == "running":
        rows.append(("cancel", "requested; it stops at its next flush"))
    console.print(_grid(rows))
    if (line := _error_line(job)) is not None:
        console.print(line)
    if checks:
        failed = sum(1 for c in checks if c.get("passed") is False)
        verdict = "[green]all passed[/green]" if not failed else f"[red]{failed} failed[/red]"
        console.print(f"{len(checks)} gradient checks: {verdict}")
        console.print(checks_table(checks))
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
) -> None:
    """A job's recorded points: a short table, all of them with --csv, or --json."""

    with _server(url, job_id) as api:
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
    console = _console()
    points = page["points"]
    if not points:
        console.print(f"no points recorded for job {job_id} in this range")
        return
    classifier = any(p["accuracy"] is not None for p in points)
    table = _table()
    for column in ("iteration", "loss", "data_loss", "reg_loss", "grad_norm"):
        table.add_column(column, justify="right")
    if classifier:
        table.add_column("accuracy", justify="right")
    for p in points:
        cells = [str(p["iteration"])] + [
            _num(p[k], ".6g") for k in ("loss", "data_loss", "reg_loss", "grad_norm")
        ]
        table.add_row(*cells, *([_pct(p["accuracy"])] if classifier else []))
    console.print(table)
    if page["downsampled"]:
        console.print(
            f"[dim]{len(points)} of {page['total']} points, downsampled (keeping spikes); "
            "--max-points N for more, --csv for all[/dim]"
        )


def cancel(job_id: JobId, url: Url = DEFAULT_URL) -> None:
    """Cancel a job and print its new status (a running one stops at its next flush)."""
    with _server(url, job_id) as api:
        job = api.cancel(job_id)
    typer.echo(job["status"])
    if job["status"] == "running":
        _console(stderr=True).print("cancel requested: the job stops at its next flush")


def sweep(
    spec: Annotated[
        str, typer.Argument(metavar="SWEEP", help="A .json or .yaml file: {name, base, grid}.")
    ],
    url: Url = DEFAULT_URL,
) -> None:
    """Start a sweep (one job per combination of the grid) and print its id."""

    try:
        body = read_spec(spec)
    except ValueError as exc:
        _fail(str(exc), INVALID)
    with _server(url) as api:
        created = api.sweep(body)
    typer.echo(created["id"])
    table = _table(title=f"{len(created['jobs'])} jobs")
    table.add_column("id", no_wrap=True)
    table.add_column("overrides")
    table.add_column("status")
    for job in created["jobs"]:
        overrides = ", ".join(f"{k}={v}" for k, v in job["overrides"].items())
        table.add_row(job["id"], overrides, _status(job["status"]))
    console = _console(stderr=True)
    console.print(table)
    console.print(f"[dim]gradlab jobs --sweep {created['id']} to see how they do[/dim]")


COMMANDS = (submit, jobs, show, metrics, cancel, sweep)
"""The client's commands, in the order ``gradlab --help`` lists them."""
