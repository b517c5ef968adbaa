"""The client's output with rich: consoles, tables, numbers, a job's summary, its gradient
checks, and the progress bar that follows a job as it trains.

rich is imported inside the functions, so that importing this module costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradlab.client.http import FAILED

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from gradlab.client.http import Client

STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def table(**kwargs: Any) -> Table:
    from rich import box
    from rich.table import Table

    options: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False, "title_justify": "left"}
    return Table(**(options | kwargs))


def grid(rows: list[tuple[str, str]]) -> Table:
    """``key  value`` lines, the keys in bold."""
    from rich.table import Table

    out = Table.grid(padding=(0, 2))
    out.add_column(style="bold")
    out.add_column()
    for key, value in rows:
        out.add_row(key, value)
    return out


def num(value: float | None, spec: str = ".5g") -> str:
    return "—" if value is None else format(value, spec)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def when(iso: str | None) -> str:
    return "—" if not iso else iso[:19].replace("T", " ")


def status(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


# --- a job -------------------------------------------------------------------------------------


def headline(job: dict[str, Any]) -> str:
    from rich.markup import escape

    name = f" [bold]{escape(job['name'])}[/bold]" if job.get("name") else ""
    return f"job {job['id']}{name}: {status(job['status'])}"


def summary_rows(job: dict[str, Any]) -> list[tuple[str, str]]:
    s = job["summary"]
    rows = [("final loss", num(s["final_loss"]))]
    if s["best_loss"] is not None:
        rows.append(("best loss", f"{num(s['best_loss'])} @ iteration {s['best_iteration']}"))
    if s["final_accuracy"] is not None:
        rows.append(("final accuracy", pct(s["final_accuracy"])))
    total = job["spec"].get("iterations", "?")
    rows.append(("iterations", f"{job['iterations_done']}/{total}"))
    rows.append(("attempts", str(job["attempts"])))
    return rows


def error_line(job: dict[str, Any]) -> str | None:
    from rich.markup import escape

    error = job.get("error")
    if not error:
        return None
    at = f", iteration {error['iteration']}" if error.get("iteration") is not None else ""
    return f"[red]error ({error['type']}{at}):[/red] {escape(str(error['message']))}"


def describe(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """The spec in a few lines: model, data, optimizer, regularisation, checks."""

    def args(part: dict[str, Any], skip: tuple[str, ...] = ("kind",)) -> str:
        pairs = [f"{k}={v}" for k, v in part.items() if k not in skip]
        return f"{part['kind']} " + " ".join(pairs) if pairs else part["kind"]

    model, data, check = spec["model"], spec["data"], spec.get("gradient_check", {})
    if data["kind"] == "inline" and "sha256" in data:  # a stored job's: the reference
        data_text = f"inline, {data['rows']} rows × {data['features']} features"
        data_text += f", sha256 {data['sha256'][:12]}…"
    elif data["kind"] == "inline":  # a spec file's own arrays
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


def print_outcome(console: Console, job: dict[str, Any], checks: list[dict[str, Any]]) -> int:
    """A finished job's summary, error and gradient checks; the exit code it deserves."""
    console.print(headline(job))
    console.print(grid(summary_rows(job)))
    if (line := error_line(job)) is not None:
        console.print(line)
    if job["status"] == "cancelled":
        console.print(f"cancelled after {job['iterations_done']} iterations")
    if checks:
        console.print(checks_table(checks))
    return 0 if job["status"] == "succeeded" else FAILED


def student_verdicts(
    job: dict[str, Any], checks: list[dict[str, Any]], reference: dict[str, Any] | None = None
) -> tuple[list[str], bool]:
    """A student job's verdicts: per tensor, the latest check against the solution and its
    diagnosis, whether the code is self-consistent, and where its loss leaves the reference
    run's (``reference``: ``GET /v1/jobs/{id}/reference``); ``(lines, passed)``."""
    from rich.markup import escape

    lines, passed = [], job["status"] == "succeeded"
    if (line := error_line(job)) is not None:
        lines.append(line)
    latest: dict[str, dict[str, Any]] = {}
    for check in checks:  # in iteration order: the last of each reference wins
        latest[check["reference"]] = check
    solution = latest.get("solution")
    if solution is None:
        lines.append("[dim]no check against the solution was recorded[/dim]")
        passed = False
    else:
        at = f"iteration {solution['iteration']}"
        for name, tensor in solution["parameters"].items():
            diagnosis = tensor.get("diagnosis") or {}
            if tensor.get("passed"):
                lines.append(f"[green]✓[/green] d{escape(name)}: matches the solution ({at})")
            else:
                passed = False
                why = escape(str(diagnosis.get("message") or "it differs from the solution"))
                lines.append(f"[red]✗ d{escape(name)}:[/red] {why} ({at})")
    for kind, what in (("numeric", "central differences of your own loss"),
                            ("taylor", "the Taylor test of your own loss")):  # fmt: skip
        last = latest.get(kind)
        if last is not None and last.get("available", True):
            mark = "[green]✓[/green]" if last.get("passed") else "[red]✗[/red]"
            agree = "agrees" if last.get("passed") else "does not agree"
            lines.append(f"{mark} your gradient {agree} with {what}")
    if reference is not None:
        divergence = reference.get("first_divergence")
        if divergence is not None:
            lines.append(
                f"your loss leaves the reference run's at iteration {divergence['iteration']}"
            )
        elif reference.get("compared"):
            lines.append(
                f"your loss follows the reference run's on all {reference['compared']} "
                f"iterations compared (reference run {reference.get('status')})"
            )
    return lines, passed


# --- gradient checks ---------------------------------------------------------------------------


def _verdict(check: dict[str, Any]) -> str:
    """One gradient check in a line, as it arrives."""
    where = f"gradient check @ {check['iteration']} ({check['reference']})"
    if not check.get("available", True):
        return f"[dim]– {where}: not available: {check.get('reason')}[/dim]"
    worst = num(check.get("max_relative_error"), ".1e")
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
    out = table(title=title, show_lines=columns is not names)
    out.add_column("iteration", justify="right")
    out.add_column("reference")
    for name in columns:
        out.add_column(name, justify="right")
    out.add_column("result")
    out.add_column("kinks", justify="right")
    for check in shown:
        tensors = check["parameters"]
        errors = {}
        for name, tensor in tensors.items():
            err = tensor["max_relative_error"]
            text = num(err, ".1e")
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
        out.add_row(str(check["iteration"]), check["reference"], *cells, result, str(kinks))
    return out


# --- following a job ---------------------------------------------------------------------------


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
                progress.update(task, description=f"{label} {status(job['status'])}{retry}")
            elif kind == "metrics":
                loss, acc = data["columns"]["loss"][-1], data["columns"]["accuracy"][-1]
                stats = f"loss {num(loss)}" + (f"  acc {pct(acc)}" if acc is not None else "")
                progress.update(task, completed=data["last"] + 1, stats=stats)
            elif kind == "check":
                checks.append(data)
                progress.console.print(_verdict(data))
    return job, checks
