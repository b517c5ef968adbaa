"""What a notebook shows: figures (matplotlib's object API, no pyplot, so nothing global is
drawn twice) and HTML tables (every value escaped: names and tags are the user's)."""

from __future__ import annotations

import io
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from gradlab.notebook.job import Job


class JobFigure(Figure):
    """A matplotlib Figure that draws itself inline in Jupyter without pyplot (IPython
    shows anything with ``_repr_png_``)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


def _title(job: Job) -> str:
    return f"{job.name or job.id} ({job.spec['model']['kind']})"


def _log_scale_fits(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool((finite > 0).all()) and finite.max() > 10 * finite.min()


def job_figure(job: Job, metric: str = "loss") -> JobFigure:
    """``metric`` by iteration, and the training accuracy on a second axis when it applies."""
    columns = job.metrics()
    fig = JobFigure(figsize=(7, 3.5))
    ax = fig.subplots()
    ax.plot(columns["iteration"], columns[metric], label=metric, color="C0")
    if metric == "loss" and np.nanmax(np.abs(columns["reg_loss"]), initial=0.0) > 0:
        ax.plot(columns["iteration"], columns["data_loss"], "--", label="data_loss", color="C0")
    if _log_scale_fits(columns[metric]):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    accuracy = columns["accuracy"]
    if not np.isnan(accuracy).all():
        right = ax.twinx()
        right.plot(columns["iteration"], accuracy, color="C1", label="accuracy")
        right.set_ylabel("accuracy", color="C1")
        right.set_ylim(0, 1.02)
    ax.set_title(_title(job))
    ax.legend(loc="upper center")
    fig.tight_layout()
    return fig


def compare(jobs: list[Job], metric: str = "loss", labels: list[str] | None = None) -> JobFigure:
    """Several jobs' ``metric`` on one axis."""
    fig = JobFigure(figsize=(7, 3.5))
    ax = fig.subplots()
    log = True
    for index, job in enumerate(jobs):
        columns = job.metrics()
        label = labels[index] if labels else (job.name or job.id)
        ax.plot(columns["iteration"], columns[metric], label=label)
        log = log and _log_scale_fits(columns[metric])
    if log and jobs:
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    ax.legend()
    fig.tight_layout()
    return fig


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_number(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def job_html(view: dict[str, Any]) -> str:
    """A job's summary: what it is, how far it got, how it ended."""
    summary = view.get("summary") or {}
    spec = view["spec"]
    error = view.get("error")
    rows = [
        ["id", view["id"]],
        ["name", view.get("name")],
        ["owner", view.get("owner")],
        ["status", view["status"]],
        ["model", spec["model"]["kind"]],
        ["optimizer", spec["optimizer"]["kind"]],
        ["iterations", f"{view['iterations_done']} / {spec.get('iterations')}"],
        ["final loss", summary.get("final_loss")],
        ["best loss", summary.get("best_loss")],
        ["final accuracy", summary.get("final_accuracy")],
        ["gradient checks passed", view.get("gradient_checks_passed")],
    ]
    if error:
        rows.append(["error", f"{error.get('type')}: {error.get('message')}"])
    body = "".join(
        f"<tr><th style='text-align:left'>{escape(k)}</th><td>{escape(_number(v))}</td></tr>"
        for k, v in rows
    )
    return f"<div class='gradlab-job'><strong>gradlab job</strong><table>{body}</table></div>"


def jobs_html(views: list[dict[str, Any]]) -> str:
    head = ["id", "name", "status", "model", "iterations", "final loss", "final accuracy"]
    rows = [
        [
            v["id"],
            v.get("name"),
            v["status"],
            v["spec"]["model"]["kind"],
            v["iterations_done"],
            (v.get("summary") or {}).get("final_loss"),
            (v.get("summary") or {}).get("final_accuracy"),
        ]
        for v in views
    ]
    return _table(head, rows)


def sweep_html(view: dict[str, Any], labels: list[str]) -> str:
    head = ["job", "overrides", "status", "final loss", "best loss", "final accuracy"]
    rows = [
        [j["id"], label, j["status"], j["final_loss"], j["best_loss"], j["final_accuracy"]]
        for j, label in zip(view["jobs"], labels, strict=True)
    ]
    title = escape(f"gradlab sweep {view['id']} {view.get('name') or ''}".strip())
    return f"<div class='gradlab-sweep'><strong>{title}</strong>{_table(head, rows)}</div>"
