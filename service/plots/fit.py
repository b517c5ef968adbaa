"""What a trained model does on its data: decision regions in 2-D, a fitted curve in 1-D.

This is the one place the service imports the training engine (``store.build`` and
``engine``), and only for inference: it regenerates the job's dataset from the spec
(seeded, so bit-identical to what the worker trained on; inline data from the datasets
table, by its hash) and
calls ``model.predict`` with the parameters of the job's latest checkpoint. Nothing here
trains or writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from engine import Dataset, Model
from service.errors import NotApplicable
from service.jobs import repository as jobs_repo
from service.plots.render import FittedLine, Format, Regions, line_chart, regions_chart
from store import datasets
from store.build import build
from store.codec import unpack_state
from store.spec import JobSpec
from store.tables import Job

GRID = 300  # decision-region resolution per axis
CURVE_POINTS = 400  # points along a fitted 1-D curve
MAX_DRAWN_POINTS = 5_000  # training points drawn; more are thinned evenly
BATCH_ELEMENTS = 1 << 22  # rows x widest layer per predict call: ~32 MB of float64


@dataclass(frozen=True)
class Source:
    """A job's model, data and latest parameters (after ``iteration`` iterations)."""

    model: Model
    data: Dataset
    params: dict[str, np.ndarray]
    iteration: int


def load(session: Session, job: Job) -> Source:
    """The job's model, regenerated data and checkpointed parameters, or NotApplicable when
    the job's data and model have no fit plot or it has recorded no parameters yet."""
    job_id = job.id
    if "model" not in job.spec:
        raise NotApplicable(
            f"Job {job_id} is an external run without a recipe: there is no model to draw."
        )
    built = build(JobSpec.model_validate(datasets.load(session, job.spec)))
    model, data = built.model, built.data
    n_features = data.X.shape[1]
    if not (n_features == 2 and model.is_classifier) and not (
        n_features == 1 and not model.is_classifier
    ):
        task = "a classifier" if model.is_classifier else "a regression"
        raise NotApplicable(
            f"Job {job_id} trains {task} on {n_features} feature{'s' * (n_features != 1)}; the "
            "fit plot draws decision regions for classifiers on 2 features and a fitted curve "
            "for regressions on 1 feature."
        )
    row = jobs_repo.checkpoint(session, job_id)
    if row is None:
        raise NotApplicable(
            f"Job {job_id} is {job.status} and has recorded no parameters yet; the fit plot "
            "needs them."
        )
    state = unpack_state(row.state)
    return Source(model, data, state["params"], state["iteration"])


def _predict(model: Model, params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """``model.predict`` in batches, so a wide network on a fine grid stays within memory."""
    widest = max((*model.hidden_sizes, model.n_features, 1))
    rows = max(256, BATCH_ELEMENTS // widest)
    with np.errstate(all="ignore"):
        parts = [model.predict(params, X[i : i + rows]) for i in range(0, len(X), rows)]
    return np.concatenate(parts)


def _classes(model: Model, params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    out = _predict(model, params, X)
    return out.argmax(axis=1) if out.ndim == 2 else (out > 0.5).astype(np.int64)


def _span(values: np.ndarray, margin: float) -> tuple[float, float]:
    lo, hi = float(values.min()), float(values.max())
    pad = margin * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _thin(n: int) -> np.ndarray:
    """Evenly spread indices of at most MAX_DRAWN_POINTS of n points."""
    if n <= MAX_DRAWN_POINTS:
        return np.arange(n)
    return np.linspace(0, n - 1, MAX_DRAWN_POINTS).round().astype(np.int64)


def picture(source: Source) -> Regions | FittedLine:
    """Decision regions (2-D classifier) or the fitted curve (1-D regression)."""
    model, params, X, y = source.model, source.params, source.data.X, source.data.y
    keep = _thin(len(X))
    if model.is_classifier:
        gx = np.linspace(*_span(X[:, 0], 0.1), GRID)
        gy = np.linspace(*_span(X[:, 1], 0.1), GRID)
        mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        classes = _classes(model, params, mesh).reshape(GRID, GRID)
        accuracy = float(np.mean(_classes(model, params, X) == y))
        k = int(model.n_classes or 2)
        return Regions(gx, gy, classes, X[keep], y[keep].astype(np.int64), k, accuracy)
    grid = np.linspace(*_span(X[:, 0], 0.05), CURVE_POINTS)
    pred = _predict(model, params, grid[:, None])
    return FittedLine(X[keep, 0], y[keep], grid, pred, _fit_label(model, params))


def _fit_label(model: Model, params: dict[str, Any]) -> str:
    if model.kind == "linear_regression":
        w, b = float(np.ravel(params["W"])[0]), float(np.ravel(params["b"])[0])
        sign = "−" if b < 0 else "+"
        return f"fit: ŷ = {w:.4g}·x {sign} {abs(b):.4g}"
    return f"fit: {model.name}"


def chart(source: Source, title: str, fmt: Format) -> bytes:
    """The fit plot's image: the picture's computation and its drawing, in one call (a
    renderer process's)."""
    picture_ = picture(source)
    if isinstance(picture_, Regions):
        return regions_chart(picture_, title, fmt)
    return line_chart(picture_, title, fmt)
