"""What the plots show, read from the database: loss curves, gradient checks, titles.

Everything returned is plain arrays and strings, so the caller can end the transaction
before drawing (drawing is serialised; a connection should not wait on it).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.errors import InvalidSpec, NotApplicable, NotFound, Problem
from service.jobs import repository as jobs_repo
from service.jobs import service as jobs
from service.metrics import repository as metrics_repo
from service.metrics import service as metrics
from service.plots.render import CheckSeries, Curve
from service.sweeps import service as sweeps
from store.accounts import Caller
from store.chunks import Col
from store.status import Status
from store.tables import Job

MAX_COMPARED = 20
TITLE_WIDTH = 100  # characters per title line


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def hyperparameters(spec: Mapping[str, Any]) -> str:
    """The optimizer and its key settings: ``gd lr=1 l2=0.001`` (momentum when used)."""
    opt = spec["optimizer"]
    parts = [opt["kind"], f"lr={_num(opt['learning_rate'])}"]
    if opt.get("momentum"):
        parts.append(f"momentum={_num(opt['momentum'])}")
    if opt["kind"] == "sgd":
        parts.append(f"batch={opt['batch_size']}")
    parts.append(f"l2={_num(spec['l2'])}")
    return " ".join(parts)


def model_name(spec: Mapping[str, Any]) -> str:
    model = spec["model"]
    if model["kind"] == "mlp":
        hidden = "×".join(str(h) for h in model["hidden_sizes"])
        return f"mlp [{hidden}] {model['activation']}"
    return model["kind"]


def recipe(spec: Mapping[str, Any]) -> str:
    """``model (loss) on data, optimizer and hyperparameters``; for an external run without
    a recipe, that it is one."""
    if "model" not in spec:
        return "external run"
    return f"{model_name(spec)} ({spec['loss']}) on {spec['data']['kind']}, " + hyperparameters(
        spec
    )


def title(job: Job, what: str | None = None) -> str:
    """``name — model (loss) on data, optimizer and hyperparameters``, with the job's status
    when it has not succeeded; ``what`` (e.g. "after 200 iterations") on a second line."""
    head = recipe(job.spec)
    if job.name:
        head = f"{job.name} — {head}"
    if job.status != Status.SUCCEEDED:
        head += f" [{job.status}]"
    head = textwrap.fill(head, TITLE_WIDTH)
    return head if what is None else f"{head}\n{what}"


def label(job: Job) -> str:
    """A legend entry: the job's name, else its model and key hyperparameters."""
    if "model" not in job.spec:
        return job.name or f"external run {job.id[-6:]}"
    return job.name or f"{model_name(job.spec)} {hyperparameters(job.spec)}"


def get_job(session: Session, job_id: str, caller: Caller) -> Job:
    """The job, or NotFound when there is none ``caller`` may see."""
    return jobs.get(session, job_id, caller)


def curve(session: Session, job: Job, max_points: int, name: str | None = None) -> Curve:
    """A job's loss (and accuracy) history, downsampled to at most ``max_points`` points
    keeping each bucket's lowest and highest loss."""
    conn = session.connection()
    sp = metrics_repo.span(conn, job.id, 0, None)
    block = metrics.downsample(conn, job.id, sp, max_points)
    accuracy = block[:, Col.ACCURACY]
    return Curve(
        label=name or label(job),
        iterations=block[:, Col.ITERATION].astype(np.int64),
        loss=block[:, Col.LOSS],
        accuracy=accuracy if np.isfinite(accuracy).any() else None,
        total=sp.total,
        loss_name=job.spec.get("loss", "as logged"),
    )


def reference_curves(session: Session, job: Job, max_points: int) -> list[Curve] | None:
    """For a job linked to its recipe's reference run: "yours" and "reference" to overlay
    (the reference is read through the link, whoever owns it); None for any other job."""
    if job.reference_job_id is None:
        return None
    reference = session.get(Job, job.reference_job_id)
    if reference is None:  # deleted by an admin: nothing to overlay
        return None
    return [
        curve(session, job, max_points, "yours"),
        curve(session, reference, max_points, "reference"),
    ]


@dataclass(frozen=True)
class Checks:
    series: list[CheckSeries]
    rtol: float
    verdict: str


def checks(session: Session, job: Job) -> Checks:
    """Per tensor and reference, the max relative error at each checked iteration."""
    rows = [row.result for row in jobs_repo.gradient_checks(session, job.id)]
    rows = [r for r in rows if r.get("available", True) and r.get("parameters")]
    if not rows:
        if not job.spec.get("gradient_check", {"references": []})["references"]:
            why = "gradient checks are turned off for it (gradient_check.references is empty)"
        else:
            why = f"it is {job.status} and no gradient check has been recorded yet"
        raise NotApplicable(f"Job {job.id} has no gradient checks to plot: {why}.")
    points: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in rows:
        for tensor, result in row["parameters"].items():
            error = result["max_relative_error"]
            value = np.nan if error is None else float(error)
            points.setdefault((tensor, row["reference"]), []).append((row["iteration"], value))
    series = [
        CheckSeries(tensor, ref, np.array([i for i, _ in pts]), np.array([e for _, e in pts]))
        for (tensor, ref), pts in points.items()
    ]
    failed = [r for r in rows if r.get("passed") is False]
    if failed:
        where = sorted({r["iteration"] for r in failed})
        shown = ", ".join(str(i) for i in where[:5]) + (", …" if len(where) > 5 else "")
        verdict = f"{len(failed)} of {len(rows)} checks failed (iterations {shown})"
    else:
        verdict = f"all {len(rows)} checks passed"
    return Checks(series, float(rows[-1]["rtol"]), verdict)


# --- compare ----------------------------------------------------------------------------


def parse_ids(text: str) -> list[str]:
    """Comma-separated ids, stripped, without blanks or repeats, in the order given."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def compared_jobs(
    session: Session, ids: str | None, sweep_id: str | None, caller: Caller
) -> tuple[list[Job], str]:
    """The jobs to overlay, in order, and a title: ``ids`` or a sweep's jobs, not both; an
    id ``caller`` may not see is missing, as one that does not exist."""
    if (ids is None) == (sweep_id is None):
        raise InvalidSpec(
            [Problem(("query:ids",), "give either ids (comma-separated job ids) or sweep.")]
        )
    if sweep_id is not None:
        sweep, found = sweeps.get(session, sweep_id, caller)
        if len(found) > MAX_COMPARED:
            raise InvalidSpec(
                [
                    Problem(
                        ("query:sweep",),
                        f"sweep {sweep_id} has {len(found)} jobs; a plot compares at most "
                        f"{MAX_COMPARED}. Pick some of them with ids instead.",
                    )
                ]
            )
        return found, f"sweep {sweep.name or sweep.id}: {len(found)} jobs"
    wanted = parse_ids(ids or "")
    if not wanted:
        raise InvalidSpec([Problem(("query:ids",), "give at least one job id.")])
    if len(wanted) > MAX_COMPARED:
        raise InvalidSpec(
            [
                Problem(
                    ("query:ids",),
                    f"{len(wanted)} ids given; a plot compares at most {MAX_COMPARED} jobs.",
                )
            ]
        )
    by_id = {job.id: job for job in jobs_repo.get_jobs(session, wanted, caller)}
    missing = [i for i in wanted if i not in by_id]
    if missing:
        listed = ", ".join(repr(i) for i in missing)
        raise NotFound(
            f"There is no job {listed}." if len(missing) == 1 else f"There are no jobs {listed}."
        )
    return [by_id[i] for i in wanted], f"{len(wanted)} jobs"


def compare_curves(session: Session, found: Sequence[Job], max_points: int) -> list[Curve]:
    """Each job's curve, labelled; labels that repeat get the end of the job's id."""
    labels = [label(job) for job in found]
    repeated = {text for text in labels if labels.count(text) > 1}
    return [
        curve(session, job, max_points, f"{text} #{job.id[-6:]}" if text in repeated else text)
        for job, text in zip(found, labels, strict=True)
    ]
