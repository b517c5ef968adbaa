"""Seeded, deterministic datasets and the engine's import hygiene."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import engine as ml


@settings(max_examples=30, deadline=None)
@given(
    kind_options=st.one_of(
        st.tuples(
            st.just("line"),
            st.fixed_dictionaries(
                {
                    "n_samples": st.integers(1, 50),
                    "noise": st.floats(0, 2),
                    "slope": st.floats(-5, 5),
                }
            ),
        ),
        st.tuples(
            st.just("blobs"),
            st.fixed_dictionaries(
                {
                    "n_samples": st.integers(6, 60),
                    "n_classes": st.integers(2, 6),
                    "n_features": st.integers(1, 4),
                }
            ),
        ),
        st.tuples(
            st.just("spiral"),
            st.fixed_dictionaries(
                {"n_per_class": st.integers(1, 30), "n_classes": st.integers(2, 5)}
            ),
        ),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_generators_are_deterministic_and_well_formed(kind_options, seed):
    kind, options = kind_options
    a = ml.make_dataset(kind, seed=seed, **options)
    b = ml.make_dataset(kind, seed=seed, **options)
    assert_array_equal(a.X, b.X)
    assert_array_equal(a.y, b.y)
    m = a.X.shape[0]
    assert a.X.dtype == a.y.dtype == np.float64
    assert a.y.shape == (m,) and np.isfinite(a.X).all()
    assert not a.X.flags.writeable
    if kind == "line":
        assert a.X.shape == (options["n_samples"], 1) and a.n_classes is None
    else:
        K = options["n_classes"]
        assert a.n_classes == K
        counts = np.bincount(a.y.astype(int), minlength=K)
        assert counts.max() - counts.min() <= 1  # as even as possible
        assert set(np.unique(a.y)) == set(range(K))


def test_spiral_is_the_cs231n_generator_on_a_seeded_generator():
    data = ml.spiral(n_per_class=100, n_classes=3, noise=0.2, seed=42)
    rng = np.random.default_rng(42)
    N, K = 100, 3
    for j in range(K):
        r = np.linspace(0.0, 1, N)
        t = np.linspace(j * 4, (j + 1) * 4, N) + rng.standard_normal(N) * 0.2
        assert_array_equal(data.X[N * j : N * (j + 1)], np.c_[r * np.sin(t), r * np.cos(t)])
        assert_array_equal(data.y[N * j : N * (j + 1)], j)


def test_line_follows_its_formula():
    data = ml.line(n_samples=2000, slope=-2.0, intercept=3.0, noise=0.0, x_min=0.0, x_max=4.0)
    assert data.X.min() >= 0.0 and data.X.max() <= 4.0
    assert_allclose(data.y, -2.0 * data.X[:, 0] + 3.0, rtol=1e-15)
    noisy = ml.line(n_samples=2000, noise=0.5, seed=1)
    residual = noisy.y - (2.0 * noisy.X[:, 0] + 1.0)
    assert residual.std() == pytest.approx(0.5, rel=0.1)


def test_different_seeds_give_different_data():
    assert not np.array_equal(ml.blobs(seed=1).X, ml.blobs(seed=2).X)


def test_inline_checks_and_copies():
    X = [[1.0, 2.0], [3.0, 4.0]]
    data = ml.make_dataset("inline", X=X, y=[0, 1])
    assert data.X.shape == (2, 2) and data.n_classes is None
    with pytest.raises(ml.ShapeError, match="2 rows but y has 3"):
        ml.inline(X, [0, 1, 2])
    with pytest.raises(ml.ShapeError, match="ragged"):
        ml.inline([[1.0], [2.0, 3.0]], [0, 1])
    with pytest.raises(ml.ShapeError, match="empty"):
        ml.inline([], [])
    with pytest.raises(ml.EngineError, match="y contains nan"):
        ml.inline(X, [0.0, float("nan")])
    with pytest.raises(ml.SpecError, match="needs both X and y"):
        ml.make_dataset("inline", X=X)


@pytest.mark.parametrize(
    ("kind", "options", "fragment"),
    [
        ("moons", {}, "'moons'"),
        ("spiral", {"n_samples": 10}, "has no option 'n_samples'"),
        ("blobs", {"n_classes": 1}, "n_classes must be at least 2"),
        ("blobs", {"n_samples": 3, "n_classes": 4}, "n_samples must be at least 4"),
        ("line", {"x_min": 1.0, "x_max": 1.0}, "x_min must be less than x_max"),
        ("line", {"noise": -1.0}, "noise"),
        ("spiral", {"n_per_class": "many"}, "n_per_class must be an integer"),
    ],
)
def test_bad_dataset_options(kind, options, fragment):
    with pytest.raises(ml.SpecError, match=fragment.replace("(", r"\(")):
        ml.make_dataset(kind, **options)


def test_the_engine_imports_no_service_database_http_or_autograd():
    code = (
        "import sys, engine\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'service', 'sqlalchemy', 'fastapi', 'httpx', 'starlette', 'torch', 'jax'}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
