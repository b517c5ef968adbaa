"""Drawing the plots: plain arrays in, PNG or SVG bytes out.

Matplotlib's object-oriented API on the Agg canvas (a ``Figure`` per image, never pyplot,
whose global figure manager is not thread-safe). The library's shared state (rcParams, the
font cache, mathtext) is still process-wide, so every image is drawn and saved under one
lock. Output is deterministic: a fixed SVG id salt and no timestamp in the metadata, so the
same data gives the same bytes.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter, MaxNLocator, NullLocator

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # matplotlib ≥ 3.9

Format = Literal["png", "svg"]
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}

DPI = 100
_LOCK = threading.Lock()
_RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "gradlab",
    "svg.fonttype": "path",
    "font.size": 10,
    "text.parse_math": False,  # a job named `$x^$` is text, not mathtext that fails to parse
}
_METADATA: dict[str, dict[str, Any]] = {"png": {"Software": None}, "svg": {"Date": None}}
LOSS_COLOR, ACCURACY_COLOR = "#1f77b4", "#ff7f0e"
ERROR_FLOOR = 1e-16  # relative errors below this (exact zeros too) are drawn at it


@dataclass(frozen=True)
class Curve:
    """One job's loss history, as drawn. iterations, loss: (p,); accuracy: (p,) or None
    (regression); ``total`` is the number of points recorded (p ≤ total when downsampled)."""

    label: str
    iterations: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray | None
    total: int
    loss_name: str


@dataclass(frozen=True)
class Regions:
    """Decision regions of a 2-D classifier: ``classes[i, j]`` is the class predicted at
    ``(gx[j], gy[i])``; ``X: (m, 2)`` and ``y: (m,)`` are the training points and labels."""

    gx: np.ndarray
    gy: np.ndarray
    classes: np.ndarray
    X: np.ndarray
    y: np.ndarray
    n_classes: int
    accuracy: float


@dataclass(frozen=True)
class FittedLine:
    """A 1-D regression: the points ``(x, y)`` and the prediction ``pred`` along ``grid``."""

    x: np.ndarray
    y: np.ndarray
    grid: np.ndarray
    pred: np.ndarray
    label: str


@dataclass(frozen=True)
class CheckSeries:
    """One parameter tensor's max relative error against one reference, per checked
    iteration; NaN where the error was not finite."""

    tensor: str
    reference: str
    iterations: np.ndarray
    errors: np.ndarray


def _render(draw: Callable[[Figure], None], fmt: Format, size: tuple[float, float]) -> bytes:
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=size, dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, metadata=_METADATA[fmt])
    return buffer.getvalue()


def _finite(values: np.ndarray) -> np.ndarray:
    """Values with ±inf as NaN, which matplotlib draws as a gap."""
    return np.where(np.isfinite(values), values, np.nan)


def _note(fig: Figure, text: str) -> None:
    """A grey footnote under the axes (a supxlabel, so the layout makes room for it)."""
    fig.supxlabel(text, x=0.01, ha="left", fontsize=8, color="0.4")


class _PlainLog(LogFormatter):
    """Log-axis labels as plain numbers (0.3, 1, 20, 1e-06) on the ticks matplotlib's
    LogFormatter would label, rather than 3×10⁻¹: easier to read off a loss."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _log_loss_axis(ax: Any) -> None:
    ax.set_yscale("log", nonpositive="mask")
    ax.yaxis.set_major_formatter(_PlainLog())
    ax.yaxis.set_minor_formatter(_PlainLog(labelOnlyBase=False))
    ax.grid(True, which="minor", alpha=0.12)


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def _iteration_axis(ax: Any) -> None:
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)


def _palette(n: int) -> list[Any]:
    """n distinct colours: tab10, tab20, then evenly spaced hues."""
    if n <= 20:
        listed = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
        return [listed(i) for i in range(n)]  # an int picks the i-th listed colour
    return [matplotlib.colormaps["hsv"](i / n) for i in range(n)]


# --- loss -------------------------------------------------------------------------------


def loss_chart(curve: Curve, title: str, log: bool, fmt: Format) -> bytes:
    """Loss against iteration, with training accuracy on a second axis for classifiers."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        _iteration_axis(ax)
        ax.set_ylabel(f"loss ({curve.loss_name})")
        ax.set_title(title, fontsize=10)
        if not len(curve.iterations):
            _empty(ax, "no points recorded yet")
            return
        handles = ax.plot(curve.iterations, _finite(curve.loss), color=LOSS_COLOR, lw=1.2)
        handles[0].set_label("loss")
        if log:
            _log_loss_axis(ax)
        if curve.accuracy is not None:
            acc_ax = ax.twinx()
            handles += acc_ax.plot(
                curve.iterations, curve.accuracy, color=ACCURACY_COLOR, lw=1.2,
                label="training accuracy",
            )  # fmt: skip
            acc_ax.set_ylim(0, 1.02)
            acc_ax.set_ylabel("training accuracy", color=ACCURACY_COLOR)
            ax.legend(handles=handles, loc="center right", fontsize=8)
        if len(curve.iterations) < curve.total:
            _note(
                fig,
                f"{len(curve.iterations)} of {curve.total} points drawn: each bucket's lowest "
                "and highest loss, so spikes stay visible",
            )

    return _render(draw, fmt, (7.5, 4.5))


def compare_chart(curves: Sequence[Curve], title: str, log: bool, fmt: Format) -> bytes:
    """Several jobs' loss curves on one axis, with a legend of their labels."""
    outside = len(curves) > 4

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        _iteration_axis(ax)
        losses = sorted({c.loss_name for c in curves})
        ax.set_ylabel(f"loss ({', '.join(losses)})")
        ax.set_title(title, fontsize=10)
        downsampled = False
        for curve, color in zip(curves, _palette(len(curves)), strict=True):
            label = curve.label if len(curve.iterations) else f"{curve.label} (no points yet)"
            ax.plot(curve.iterations, _finite(curve.loss), color=color, lw=1.2, label=label)
            downsampled |= len(curve.iterations) < curve.total
        if log and any(len(c.iterations) for c in curves):
            _log_loss_axis(ax)
        if outside:
            fig.legend(loc="outside right upper", fontsize=8)
        else:
            ax.legend(loc="best", fontsize=8)
        if downsampled:
            _note(fig, "long runs downsampled to each bucket's lowest and highest loss")

    return _render(draw, fmt, (10.5 if outside else 7.5, 4.8))


# --- fit --------------------------------------------------------------------------------


def regions_chart(regions: Regions, title: str, fmt: Format) -> bytes:
    """Decision regions of a 2-D classifier with the training points coloured by label."""
    k = regions.n_classes
    cmap = ListedColormap(_palette(k))
    norm = BoundaryNorm(np.arange(k + 1) - 0.5, k)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.contourf(
            regions.gx, regions.gy, regions.classes, levels=np.arange(k + 1) - 0.5,
            cmap=cmap, norm=norm, alpha=0.35,
        )  # fmt: skip
        ax.scatter(
            regions.X[:, 0], regions.X[:, 1], c=regions.y, cmap=cmap, norm=norm, s=16,
            edgecolors="black", linewidths=0.4,
        )  # fmt: skip
        ax.set_xlim(regions.gx[0], regions.gx[-1])
        ax.set_ylim(regions.gy[0], regions.gy[-1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x₁")
        ax.set_ylabel("x₂")
        ax.set_title(title, fontsize=10)
        if k <= 10:
            handles = [
                Line2D([], [], ls="none", marker="o", markersize=6, markerfacecolor=cmap(norm(c)),
                       markeredgecolor="black", markeredgewidth=0.4, label=f"class {c}")
                for c in range(k)
            ]  # fmt: skip
            fig.legend(handles=handles, loc="outside right upper", fontsize=8)
        _note(fig, f"training accuracy with these parameters: {regions.accuracy:.1%}")

    return _render(draw, fmt, (7.0, 5.6))


def line_chart(fit: FittedLine, title: str, fmt: Format) -> bytes:
    """A 1-D regression: the training points and the fitted line or curve."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.scatter(fit.x, fit.y, s=14, color="0.35", alpha=0.8, label="training data")
        ax.plot(fit.grid, _finite(fit.pred), color="#d62728", lw=2, label=fit.label)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax.set_title(title, fontsize=10)

    return _render(draw, fmt, (7.5, 4.5))


# --- gradient checks --------------------------------------------------------------------


def checks_chart(series: Sequence[CheckSeries], rtol: float, title: str, fmt: Format) -> bytes:
    """Max relative error per parameter tensor against iteration, on a log axis, with the
    pass threshold. Non-finite errors are marked with an ✕ on the top edge."""
    tensors = list(dict.fromkeys(s.tensor for s in series))
    references = list(dict.fromkeys(s.reference for s in series))
    colors = dict(zip(tensors, _palette(len(tensors)), strict=True))
    styles = {"numeric": ("-", "o"), "torch": ("--", "s")}

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        _iteration_axis(ax)
        ax.set_yscale("log")
        ax.set_ylabel("max relative error")
        ax.set_title(title, fontsize=10)
        finite = [s.errors[np.isfinite(s.errors)] for s in series]
        values = np.concatenate([*finite, [rtol]])
        low = max(min(values.min(), rtol), ERROR_FLOOR)
        high = max(values.max(), rtol)
        ax.set_ylim(low / 10, high * 10)
        if high / low > 1e6:  # many decades: minor ticks are only noise (and slow to lay out)
            ax.yaxis.set_minor_locator(NullLocator())
        ax.axhspan(rtol, high * 10, color="#d62728", alpha=0.05, lw=0)
        ax.axhline(rtol, color="#d62728", ls=":", lw=1.5, label=f"pass threshold rtol = {rtol:g}")
        clipped = infinite = False
        for s in series:
            line, marker = styles.get(s.reference, ("-.", "^"))
            label = s.tensor if len(references) == 1 else f"{s.tensor} ({s.reference})"
            clipped |= bool((s.errors < ERROR_FLOOR).any())
            shown = np.where(np.isfinite(s.errors), np.maximum(s.errors, ERROR_FLOOR), np.nan)
            ax.plot(
                s.iterations, shown, ls=line, marker=marker, markersize=5, lw=1.2,
                color=colors[s.tensor], label=label,
            )  # fmt: skip
            bad = ~np.isfinite(s.errors)
            infinite |= bool(bad.any())
            if bad.any():
                ax.plot(
                    s.iterations[bad], np.ones(int(bad.sum())), ls="none", marker="x",
                    markersize=8, color=colors[s.tensor], clip_on=False,
                    transform=ax.get_xaxis_transform(),
                )  # fmt: skip
        ax.legend(loc="best", fontsize=8)
        notes = ["✕ on the top edge: the error was not finite"] if infinite else []
        if clipped:
            notes.append(f"errors below {ERROR_FLOOR:g} (exact agreement) drawn at {ERROR_FLOOR:g}")
        if notes:
            _note(fig, "; ".join(notes))

    return _render(draw, fmt, (7.5, 4.5))
