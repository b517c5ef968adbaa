"""The picture of descent: the loss surface as contours, with the parameters' path across it.

A two-parameter problem (one-feature linear or logistic regression: ``w``, ``b``) is drawn
exactly: the axes are ``w`` and ``b`` and the path is every kept iteration's parameters
(every iteration, for any job of up to half a million: ``store.paths``). A larger model is
drawn in the plane through the initial parameters θ₀ spanned by d₁ = θ_T − θ₀ (initial to
final) and d₂, a seeded random direction normalised per layer to the final parameters' norms
(Li et al., "Visualizing the Loss Landscape of Neural Nets", 2018) and made orthogonal to
d₁; each kept point is projected onto that plane (what lies off it is not shown), and the
surface is L(θ₀ + α·d₁ + β·d₂).

Several jobs on the same data and model (gradient descent at three learning rates against
Newton, say) are overlaid on the first one's surface. Reading is done here in the request's
session (:func:`load`); the surface's loss evaluations and the drawing run in a renderer
process (:func:`chart`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from sqlalchemy.orm import Session

from engine import Dataset, Model
from service.errors import InvalidSpec, NotApplicable, Problem
from service.plots import service
from service.plots.render import Format, _note, _palette, _render
from store import datasets, paths
from store.build import build
from store.spec import JobSpec
from store.tables import Job

GRID = 41  # loss evaluations per axis of the surface
WORK = 2_000_000_000  # rows × parameters × grid points above which the grid is coarser
SEED = 0  # of the random direction d₂
_SAME = ("model", "loss", "loss_options", "l2", "data")  # what overlaid jobs must share


@dataclass(frozen=True)
class Path:
    label: str
    iterations: np.ndarray  # (n,)
    params: np.ndarray  # (n, P): flat parameters, the model's tensors in order


@dataclass(frozen=True)
class Landscape:
    """What the renderer needs: the model and data to evaluate the loss on, and the paths."""

    model: Model
    data: Dataset
    l2: float
    paths: list[Path]
    title: str


def _path(session: Session, job: Job) -> Path:
    iterations, params = paths.read(session, job.id)
    if len(iterations) == 0:
        raise NotApplicable(
            f"Job {job.id} is {job.status} and has recorded no parameters yet; the trajectory "
            "plot draws the path the worker keeps every few iterations."
        )
    return Path(job.name or job.id[-8:], iterations, params)


def load(session: Session, job: Job, others: Sequence[Job] = ()) -> Landscape:
    """The job's model, data and path, and the paths of ``others`` to overlay (each on the
    same data and model, or a 422 naming ``compare``)."""
    if "model" not in job.spec:
        raise NotApplicable(
            f"Job {job.id} is an external run without a recipe: there is no model, so no loss "
            "surface to draw its path on."
        )
    for other in others:
        differs = [key for key in _SAME if other.spec.get(key) != job.spec.get(key)]
        if differs:
            raise InvalidSpec(
                [
                    Problem(
                        ("query:compare",),
                        f"job {other.id} differs from job {job.id} in {', '.join(differs)}; "
                        "paths are overlaid only on one surface: the same data and model.",
                    )
                ]
            )
    built = build(JobSpec.model_validate(datasets.load(session, job.spec)))
    drawn = [_path(session, j) for j in (job, *others)]
    what = "parameter path" if not others else f"{len(drawn)} parameter paths"
    return Landscape(built.model, built.data, built.l2, drawn, service.title(job, what))


# --- the surface (in a renderer process) ------------------------------------------------


def _unflat(model: Model, theta: np.ndarray) -> dict[str, np.ndarray]:
    out, at = {}, 0
    for name, shape in model.param_shapes().items():
        size = int(np.prod(shape))
        out[name] = theta[at : at + size].reshape(shape)
        at += size
    return out


def _loss(land: Landscape, y: np.ndarray, theta: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        value = land.model.loss(_unflat(land.model, theta), land.data.X, y, land.l2)
    return float(value) if np.isfinite(value) else np.nan


def _span(values: np.ndarray, floor: float) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = max(0.25 * (hi - lo), floor)
    return lo - pad, hi + pad


def directions(model: Model, theta0: np.ndarray, theta1: np.ndarray) -> np.ndarray:
    """d₁ = θ₁ − θ₀ and d₂ (seeded, per-layer normalised to θ₁, orthogonal to d₁): (2, P)."""
    d1 = theta1 - theta0
    rng = np.random.default_rng(SEED)
    d2 = rng.standard_normal(theta0.size)
    at = 0
    for shape in model.param_shapes().values():
        part = slice(at, at + int(np.prod(shape)))
        target = np.linalg.norm(theta1[part]) or 1.0
        d2[part] *= target / (np.linalg.norm(d2[part]) or 1.0)
        at = part.stop
    if not np.any(d1):  # no movement: a second random direction
        d1 = rng.standard_normal(theta0.size) * (np.linalg.norm(d2) / np.sqrt(theta0.size))
    d2 -= (d2 @ d1) / (d1 @ d1) * d1
    return np.stack([d1, d2])


@dataclass(frozen=True)
class Surface:
    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    loss: np.ndarray  # (ny, nx)
    points: list[np.ndarray]  # per path, (n, 2) in the axes' coordinates
    axes: tuple[str, str]
    exact: bool


def surface(land: Landscape) -> Surface:
    """The loss over the plot's plane and each path's coordinates in it."""
    first = land.paths[0].params
    size = first.shape[1]
    rows = land.data.X.shape[0]
    grid = GRID if rows * size * GRID * GRID <= WORK else 21
    if size == 2:  # w and b themselves
        points = [p.params for p in land.paths]
        allp = np.concatenate(points)
        xs = np.linspace(*_span(allp[:, 0], 0.5), grid)
        ys = np.linspace(*_span(allp[:, 1], 0.5), grid)
        origin, basis = np.zeros(2), np.eye(2)
        names = tuple(land.model.param_shapes())
        axes = (names[0].lower(), names[1])
    else:
        origin = first[0]
        basis = directions(land.model, origin, first[-1])
        norms = np.einsum("ij,ij->i", basis, basis)
        points = [((p.params - origin) @ basis.T) / norms for p in land.paths]
        allp = np.concatenate(points)
        xs = np.linspace(*_span(np.r_[allp[:, 0], 0.0, 1.0], 0.25), grid)
        ys = np.linspace(*_span(np.r_[allp[:, 1], 0.0], 0.5), grid)
        axes = ("α (initial → final)", "β (random, orthogonal)")
    y = land.model.check_targets(land.data.y)  # labels as the model reads them
    loss = np.array(
        [[_loss(land, y, origin + a * basis[0] + b * basis[1]) for a in xs] for b in ys]
    )
    return Surface(xs, ys, loss, points, axes, size == 2)


def chart(land: Landscape, fmt: Format) -> bytes:
    """The trajectory plot's image: the surface's computation and its drawing, in one call."""
    s = surface(land)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        finite = s.loss[np.isfinite(s.loss)]
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            levels = np.unique(np.quantile(finite, np.linspace(0, 1, 25))) if hi > lo else None
            filled = ax.contourf(s.xs, s.ys, s.loss, levels=levels, cmap="viridis", alpha=0.85)
            ax.contour(s.xs, s.ys, s.loss, levels=levels, colors="white", linewidths=0.4)
            fig.colorbar(filled, ax=ax, label="loss")
        colors = _palette(len(land.paths)) if len(land.paths) > 1 else ["#d62728"]
        for path, xy, color in zip(land.paths, s.points, colors, strict=True):
            ax.plot(xy[:, 0], xy[:, 1], "-", color=color, lw=1.4, label=path.label)
            ax.plot(xy[0, 0], xy[0, 1], "o", color=color, ms=6, mec="white")
            ax.plot(xy[-1, 0], xy[-1, 1], "*", color=color, ms=11, mec="white")
        ax.set_xlabel(s.axes[0])
        ax.set_ylabel(s.axes[1])
        ax.set_title(land.title, fontsize=9, loc="left")
        if len(land.paths) > 1:
            ax.legend(fontsize=8, loc="best")
        kept = land.paths[0].iterations
        how = (
            "every iteration"
            if len(kept) < 2 or kept[1] - kept[0] == 1
            else (f"every {int(kept[1] - kept[0])} iterations")
        )
        plane = "exact (w, b)" if s.exact else "plane of initial→final and a random direction"
        _note(fig, f"{plane}; path from {how}; ● start, ★ last")

    return _render(draw, fmt, (7.0, 5.4))
