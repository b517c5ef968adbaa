"""The benchmark table: one row per figure, its target, the median and the spread."""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any


@dataclass
class Row:
    """One figure. ``ratio`` compares it with its target or with a baseline run in the same
    process (a ratio above 1 is better for throughputs, below 1 for times and sizes)."""

    section: str
    figure: str
    target: str
    median: float
    unit: str
    lo: float | None = None
    hi: float | None = None
    ratio: float | None = None
    ok: bool | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)
    binding: bool = True  # False: the target is shown (in parentheses) but not required

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(samples: Sequence[float]) -> tuple[float, float, float]:
    """``(median, min, max)``."""
    return statistics.median(samples), min(samples), max(samples)


def _bounded(
    section: str,
    figure: str,
    samples: Sequence[float],
    limit: float,
    unit: str,
    note: str,
    most: bool,
) -> Row:
    med, lo, hi = summarise(samples)
    ok = med <= limit if most else med >= limit
    target = f"{'≤' if most else '≥'} {_num(limit)} {unit}".strip()
    return Row(section, figure, target, med, unit, lo, hi, med / limit, ok, note, list(samples))


def at_most(
    section: str, figure: str, samples: Sequence[float], limit: float, unit: str, note: str = ""
) -> Row:
    """A figure that must stay at or below ``limit`` (times, ratios, sizes)."""
    return _bounded(section, figure, samples, limit, unit, note, most=True)


def at_least(
    section: str, figure: str, samples: Sequence[float], limit: float, unit: str, note: str = ""
) -> Row:
    """A figure that must reach ``limit`` (throughputs)."""
    return _bounded(section, figure, samples, limit, unit, note, most=False)


def info(section: str, figure: str, samples: Sequence[float], unit: str, note: str = "") -> Row:
    """A figure reported without a target."""
    med, lo, hi = summarise(samples)
    return Row(section, figure, "", med, unit, lo, hi, None, None, note, list(samples))


def ratio(section: str, figure: str, samples: Sequence[float], note: str = "") -> Row:
    """A ratio of two figures measured side by side (the median of the paired ratios)."""
    med, lo, hi = summarise(samples)
    return Row(section, figure, "", med, "×", lo, hi, med, None, note, list(samples))


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.3g}"
    return f"{value:.3g}"


def print_table(rows: Sequence[Row], title: str, out: IO[str] = sys.stdout) -> None:
    header = ("figure", "target", "median", "min–max", "ratio", "")
    body = []
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            body.append((f"[{section}]", "", "", "", "", ""))
        spread = "" if row.lo is None else f"{_num(row.lo)}–{_num(row.hi or row.lo)}"
        verdict = "" if row.ok is None else ("ok" if row.ok else "MISS")
        if verdict and not row.binding:
            verdict = f"({verdict.lower()})"
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        body.append(
            (
                row.figure,
                row.target,
                f"{_num(row.median)} {row.unit}".strip(),
                spread,
                ratio,
                verdict,
            )
        )
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = " | ".join(f"{{:<{w}}}" for w in widths)
    print(title, file=out)
    print(line.format(*header).rstrip(), file=out)
    print("-+-".join("-" * w for w in widths), file=out)
    for r in body:
        print(line.format(*r).rstrip(), file=out)
    for row in rows:
        if row.note:
            print(f"  · {row.figure}: {row.note}", file=out)
