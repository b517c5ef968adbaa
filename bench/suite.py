"""``python -m bench`` / ``gradlab bench``: every figure in one run, as one table."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.context import Context
from bench.report import Row, print_table
from bench.sections import SECTIONS

WORK = Path(__file__).resolve().parent / ".work"


def run(
    url: str | None, only: list[str] | None, peer: str | None, json_path: Path | None
) -> list[Row]:
    WORK.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    url = url or f"sqlite:///{tmp / 'bench.db'}"
    ctx = Context(url, tmp)
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        for name, section in SECTIONS.items():
            if only and name not in only:
                continue
            t = time.perf_counter()
            print(f"… {name}", file=sys.stderr, flush=True)
            rows += section(ctx)
            print(f"  {name}: {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
        if peer == "mlflow":
            from bench import peer_mlflow

            rows += peer_mlflow.compare(ctx, WORK)
    finally:
        ctx.close()
    title = (
        f"gradlab bench — {ctx.engine_name}, {time.perf_counter() - started:.0f} s "
        f"(medians; min–max over repeats; ratio = median / target)"
    )
    print_table(rows, title)
    if json_path is not None:
        json_path.write_text(json.dumps([r.as_dict() for r in rows], indent=1))
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gradlab bench", description=__doc__)
    parser.add_argument("--database-url", help="default: a fresh SQLite file under bench/.work")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--peer", choices=["mlflow"], help="also run the workloads against MLflow")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    unknown = set(only or ()) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    rows = run(args.database_url, only, args.peer, args.json)
    return 0 if all(r.ok is not False for r in rows if r.binding) else 1
