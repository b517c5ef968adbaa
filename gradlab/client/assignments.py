"""The client's assignment commands: ``gradlab assignments``, ``gradlab assignment create
SPEC.yaml``, ``gradlab submit-assignment NAME FILE [--follow]`` and ``gradlab grades NAME
[--csv | --gradescope OUT_DIR]``. Humans' output on stderr; stdout carries what a script
captures (a submission id, the CSV)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from gradlab.client.commands import DEFAULT_URL, AsJson, Token, Url, _fail, _print_json, _server
from gradlab.client.http import FAILED, INVALID
from gradlab.client.spec import read_spec

app = typer.Typer(help="Create assignments (instructors).", no_args_is_help=True)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The assignment's name.")]
FOLLOW_SECONDS = 600.0


def assignments(as_json: AsJson = False, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """The assignments you may see: name, title, what to submit, due date, points."""
    with _server(url, token) as api:
        rows = api.assignments()
    if as_json:
        _print_json(rows)
        return
    for a in rows:
        due = a["due_at"] or "no due date"
        typer.echo(f"{a['name']}\t{a['title']}\t{a['submit']}\t{due}\t{a['max_score']:g} points")


@app.command()
def create(
    spec: Annotated[str, typer.Argument(metavar="SPEC", help="A .json or .yaml assignment.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Create an assignment from a spec file and print its name."""
    try:
        body = read_spec(spec)
    except ValueError as exc:
        _fail(str(exc), INVALID)
    with _server(url, token) as api:
        made = api.create_assignment(body)
    typer.echo(made["name"])


def _answer(source: Path) -> dict[str, Any]:
    """The body a FILE holds: a JSON of gradients (``{"gradients": …, "loss_value": …}``, or
    the gradients alone), or a .py file's source as code."""
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot read {source}: {exc.strerror or exc}.", INVALID)
    if source.suffix == ".py":
        return {"code": text}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{source} is not valid JSON: {exc}.", INVALID)
    if not isinstance(data, dict):
        _fail(f"{source} must hold a JSON object of gradients.", INVALID)
    return data if "gradients" in data else {"gradients": data}


def _report(sub: dict[str, Any]) -> None:
    for check in sub["checks"]:
        if check.get("withheld"):
            typer.echo(f"  {check['name']}: hidden ({check['max_points']:g} points)", err=True)
        else:
            mark = "✓" if check["passed"] else "✗"
            typer.echo(
                f"  {mark} {check['name']} {check['points']:g}/{check['max_points']:g}: "
                f"{check['message']}",
                err=True,
            )
    late = " (late)" if sub["late"] else ""
    typer.echo(f"{sub['status']}: {sub['score']:g} of {sub['max_score']:g}{late}", err=True)
    if sub.get("reason"):
        typer.echo(f"  reason: {sub['reason']}", err=True)


def submit_assignment(
    name: Name,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Gradients as JSON (or .py code).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Wait for the grade and show it.")
    ] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Submit an answer to an assignment and print the submission's id; --follow shows the
    grade (exit 1 unless every check you may see passed)."""
    body = _answer(file)
    with _server(url, token) as api:
        sub = api.submit_assignment(name, body)
        typer.echo(sub["id"])
        if not follow:
            return
        deadline = time.monotonic() + FOLLOW_SECONDS
        while sub["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(1.0)
            sub = api.submission(name, sub["id"])
    _report(sub)
    shown = [c for c in sub["checks"] if not c.get("withheld")]
    ok = sub["status"] == "graded" and all(c["passed"] for c in shown)
    raise typer.Exit(0 if ok else FAILED)


def grades(
    name: Name,
    csv: Annotated[
        bool, typer.Option("--csv", help="Write the gradebook as CSV to stdout.")
    ] = False,
    gradescope: Annotated[
        Path | None,
        typer.Option(help="Write each student's Gradescope results.json under this folder."),
    ] = None,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """An assignment's gradebook (instructors): per student the submission that counts."""
    with _server(url, token) as api:
        if csv:
            typer.echo(api.grades_csv(name), nl=False)
            return
        book = api.grades(name)
        if gradescope is not None:
            for row in book["grades"]:
                folder = gradescope / row["student"]
                folder.mkdir(parents=True, exist_ok=True)
                results = api.gradescope(name, row["student"])
                (folder / "results.json").write_text(json.dumps(results, indent=2))
            typer.echo(f"wrote {len(book['grades'])} results.json under {gradescope}", err=True)
            return
    if as_json:
        _print_json(book)
        return
    for row in book["grades"]:
        score = "-" if row["score"] is None else f"{row['score']:g}"
        late = " late" if row["late"] else ""
        typer.echo(
            f"{row['student']}\t{score}/{row['max_score']:g}\t{row['status']}{late}\t"
            f"{row['attempts']} attempts"
        )


COMMANDS = (assignments, submit_assignment, grades)
"""The commands beside ``gradlab assignment create``, in the order --help lists them."""
