"""Seeded, deterministic datasets: a noisy line, Gaussian blobs, the CS231n spiral, inline;
and scikit-learn's bundled datasets, read from its package.

Every generator draws from its own ``np.random.default_rng(seed)``, so the same options
give bit-identical data in every process.  Arrays are returned read-only.
"""

from __future__ import annotations

import gzip
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import as_float, as_int, as_matrix, as_vector, check_finite
from .errors import ShapeError, SpecError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A training set.

    X: (m, n) float64 features; y: (m,) float64 targets (class labels 0..K-1 stored as
    floats for blobs and spiral); n_classes: K for blobs and spiral, None for line and
    inline (the model decides how to read y).
    """

    X: np.ndarray
    y: np.ndarray
    n_classes: int | None = None


def _frozen(X: np.ndarray, y: np.ndarray, n_classes: int | None) -> Dataset:
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    X.setflags(write=False)
    y.setflags(write=False)
    return Dataset(X=X, y=y, n_classes=n_classes)


def line(
    n_samples: int = 100,
    slope: float = 2.0,
    intercept: float = 1.0,
    noise: float = 0.1,
    x_min: float = -1.0,
    x_max: float = 1.0,
    seed: int = 0,
) -> Dataset:
    """Points near a line: x ~ U[x_min, x_max], y = slope·x + intercept + noise·N(0, 1).

    Returns X: (n_samples, 1), y: (n_samples,).
    """
    n_samples = as_int(n_samples, "n_samples", minimum=1)
    slope = as_float(slope, "slope")
    intercept = as_float(intercept, "intercept")
    noise = as_float(noise, "noise", minimum=0.0)
    x_min = as_float(x_min, "x_min")
    x_max = as_float(x_max, "x_max")
    if x_min >= x_max:
        raise SpecError(f"x_min must be less than x_max, got x_min={x_min:g}, x_max={x_max:g}.")
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    x = rng.uniform(x_min, x_max, size=n_samples)
    y = slope * x + intercept + noise * rng.standard_normal(n_samples)
    return _frozen(x[:, None], y, None)


def blobs(
    n_samples: int = 200,
    n_classes: int = 2,
    n_features: int = 2,
    cluster_std: float = 1.0,
    center_box: float = 5.0,
    seed: int = 0,
) -> Dataset:
    """Gaussian clusters, one per class, with centers uniform in [-center_box, center_box]^n.

    Samples are split as evenly as possible (the first ``n_samples % n_classes`` classes
    get one more) and stored class by class.  Returns X: (n_samples, n_features),
    y: (n_samples,) labels 0..n_classes-1 as floats.
    """
    n_classes = as_int(n_classes, "n_classes", minimum=2)
    n_samples = as_int(n_samples, "n_samples", minimum=n_classes)
    n_features = as_int(n_features, "n_features", minimum=1)
    cluster_std = as_float(cluster_std, "cluster_std", minimum=0.0)
    center_box = as_float(center_box, "center_box", positive=True)
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    centers = rng.uniform(-center_box, center_box, size=(n_classes, n_features))
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    X = np.empty((n_samples, n_features))
    y = np.empty(n_samples)
    start = 0
    for k, count in enumerate(counts):
        rows = slice(start, start + count)
        X[rows] = centers[k] + cluster_std * rng.standard_normal((count, n_features))
        y[rows] = k
        start += count
    return _frozen(X, y, n_classes)


def spiral(
    n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> Dataset:
    """The CS231n spiral: ``n_classes`` arms of ``n_per_class`` points in 2-D.

    For arm j: r = linspace(0, 1, N), t = linspace(4j, 4(j+1), N) + noise·N(0, 1),
    X = [r·sin t, r·cos t].  Returns X: (N·K, 2), y: (N·K,) labels 0..K-1 as floats.
    """
    N = as_int(n_per_class, "n_per_class", minimum=1)
    K = as_int(n_classes, "n_classes", minimum=2)
    noise = as_float(noise, "noise", minimum=0.0)
    rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
    X = np.zeros((N * K, 2))
    y = np.zeros(N * K)
    for j in range(K):
        ix = slice(N * j, N * (j + 1))
        r = np.linspace(0.0, 1, N)  # radius
        t = np.linspace(j * 4, (j + 1) * 4, N) + rng.standard_normal(N) * noise  # theta
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return _frozen(X, y, K)


def inline(X: Any, y: Any) -> Dataset:
    """A dataset given explicitly: X (m, n) and y (m,), checked and copied to float64."""
    Xa = as_matrix(X, "X")
    ya = as_vector(y, "y")
    check_finite(ya, "y")
    if ya.shape[0] != Xa.shape[0]:
        raise ShapeError(
            f"X has {Xa.shape[0]} rows but y has {ya.shape[0]} values; "
            "they need one target per row."
        )
    return _frozen(Xa.copy(), ya.copy(), None)


@dataclass(frozen=True)
class Bundled:
    """One of scikit-learn's bundled datasets: its files in ``sklearn/datasets/data`` and its
    shape, which the catalog's ``data_shape`` reads without loading it."""

    rows: int
    features: int
    classes: int | None  # None: real-valued targets
    files: tuple[str, ...]  # one CSV of features then target, or features and targets apart
    delimiter: str | None = ","  # None: whitespace
    header: bool = True  # a first line of counts and class names


SKLEARN: dict[str, Bundled] = {
    "iris": Bundled(150, 4, 3, ("iris.csv",)),
    "wine": Bundled(178, 13, 3, ("wine_data.csv",)),
    "breast_cancer": Bundled(569, 30, 2, ("breast_cancer.csv",)),
    "digits": Bundled(1797, 64, 10, ("digits.csv.gz",), header=False),
    "diabetes": Bundled(
        442, 10, None, ("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz"), None, False
    ),
}
"""scikit-learn's datasets that ship inside its package (no network): the ``sklearn`` kind."""


def _sklearn_data_dir() -> Path:
    """``sklearn/datasets/data``, located without importing scikit-learn (seconds of CPU)."""
    found = importlib.util.find_spec("sklearn")
    if found is None or not found.submodule_search_locations:
        raise SpecError(
            "The sklearn datasets need scikit-learn, which is not installed on this server "
            "(pip install 'gradlab[datasets]')."
        )
    return Path(next(iter(found.submodule_search_locations))) / "datasets" / "data"


def _table(path: Path, delimiter: str | None, skip_header: bool) -> np.ndarray:
    """A numeric table from one of the package's files (gzipped or not), as float64."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as f:
        return np.loadtxt(f, delimiter=delimiter, skiprows=int(skip_header), ndmin=2)


def sklearn(name: str = "iris", standardize: bool = True) -> Dataset:
    """A dataset scikit-learn bundles: ``iris``, ``wine``, ``breast_cancer`` (labels 0/1),
    ``digits`` (8×8 images, labels 0..9) or ``diabetes`` (real targets, unscaled features),
    read from the installed package's files. ``standardize`` scales each feature to mean 0
    and standard deviation 1 (a constant feature stays 0). Returns X: (m, n), y: (m,)."""
    if name not in SKLEARN:
        raise SpecError(f"Unknown sklearn dataset {name!r}; choose one of {', '.join(SKLEARN)}.")
    info = SKLEARN[name]
    folder = _sklearn_data_dir()
    if len(info.files) == 1:
        table = _table(folder / info.files[0], info.delimiter, info.header)
        X, y = table[:, :-1], table[:, -1]
    else:
        X = _table(folder / info.files[0], info.delimiter, info.header)
        y = _table(folder / info.files[1], info.delimiter, info.header)[:, 0]
    if X.shape != (info.rows, info.features):
        raise SpecError(f"scikit-learn's {name} has shape {X.shape}, not the expected one.")
    if standardize:
        std = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return _frozen(X, y, info.classes)


GENERATORS: dict[str, Callable[..., Dataset]] = {
    "line": line,
    "blobs": blobs,
    "spiral": spiral,
    "sklearn": sklearn,
    "inline": inline,
}
DATASET_KINDS = tuple(GENERATORS)


def make_dataset(kind: str, **options: Any) -> Dataset:
    """Build the dataset ``kind`` (one of :data:`GENERATORS`) from options."""
    if kind not in GENERATORS:
        raise SpecError(f"Unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}.")
    generator = GENERATORS[kind]
    known = tuple(inspect.signature(generator).parameters)
    for option in options:
        if option not in known:
            raise SpecError(
                f"The {kind} dataset has no option {option!r}; its options are {', '.join(known)}."
            )
    if kind == "inline" and set(options) != {"X", "y"}:
        raise SpecError("The inline dataset needs both X and y.")
    return generator(**options)
