"""``gradlab users``: accounts made directly in the configured database (GRADLAB_DATABASE_URL),
for whoever runs the server — the first admin, a class's roster. Tokens go to stdout, the
new token alone on the last line, so a script can capture it; nothing else is printed there."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

app = typer.Typer(
    help="Accounts and API tokens, written directly to the configured database.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The account's name.")]


@contextmanager
def _session() -> Iterator[Session]:
    """A write session on the configured database, migrated to head first; an account
    error becomes one line on stderr and exit code 2."""
    import migrations
    from store import accounts
    from store.db import Database
    from store.settings import Settings

    settings = Settings()
    migrations.upgrade(settings.database_url)
    db = Database(settings.database_url, settings)
    try:
        with db.write_session() as session:
            yield session
    except accounts.AccountError as exc:
        typer.echo(f"gradlab: {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@app.command()
def add(
    name: Name,
    role: Annotated[str, typer.Option(help="student, instructor or admin.")] = "student",
) -> None:
    """Create an account and print its API token (the last line of stdout, alone)."""
    from store import accounts

    with _session() as session:
        _, token = accounts.create_user(session, name, accounts.parse_role(role))
    typer.echo(f"created {role} {name}; its token (shown once):", err=True)
    typer.echo(token)


@app.command("import")
def import_roster(
    roster: Annotated[
        Path, typer.Argument(metavar="ROSTER.csv", help="Columns name and (optional) role.")
    ],
) -> None:
    """Create an account per row of a CSV roster; print ``name,token`` lines. All or none:
    a bad row creates nobody."""
    from store import accounts

    with roster.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if rows and "name" not in rows[0]:
        typer.echo("gradlab: the roster needs a `name` column (and may have `role`).", err=True)
        raise typer.Exit(2)
    made: list[tuple[str, str]] = []
    with _session() as session:
        for row in rows:
            role = accounts.parse_role(row.get("role") or "student")
            name = (row["name"] or "").strip()
            made.append((name, accounts.create_user(session, name, role)[1]))
    for name, token in made:
        typer.echo(f"{name},{token}")


@app.command("list")
def list_users() -> None:
    """Every account: name, role, live tokens, created."""
    from store import accounts

    with _session() as session:
        rows = accounts.list_users(session)
        lines = [f"{u.name}\t{u.role}\t{n} tokens\t{u.created_at:%Y-%m-%d %H:%M}" for u, n in rows]
    typer.echo("\n".join(lines))


@app.command()
def token(name: Name) -> None:
    """Issue a new token for an account (its other tokens keep working)."""
    from store import accounts

    with _session() as session:
        new = accounts.issue_token(session, name)
    typer.echo(new)


@app.command()
def revoke(name: Name) -> None:
    """Revoke every token of an account at once (servers stop taking them within a second)."""
    from store import accounts

    with _session() as session:
        count = accounts.revoke(session, name)
    typer.echo(f"revoked {count} tokens of {name}")
