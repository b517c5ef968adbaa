"""Layers as forward/backward pairs, in the style of CS231n ``layers.py``.

Each ``*_forward`` returns ``(out, cache)``; the matching ``*_backward`` takes the
upstream gradient ``dout`` (same shape as ``out``) and that cache and returns the
gradients with respect to the inputs.  Shapes: m samples, d inputs, k outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_ONES: dict[int, np.ndarray] = {}


def ones(n: int) -> np.ndarray:
    """A cached read-only vector of n ones.

    ``ones(m) @ A`` sums the rows of a small C-ordered A several times faster than
    ``A.sum(axis=0)`` (one BLAS call instead of a strided reduction); the result differs
    from NumPy's pairwise sum only by rounding (~1e-16 relative).
    """
    vec = _ONES.get(n)
    if vec is None:
        if len(_ONES) >= 256:  # a long-lived worker sees many batch sizes: stay bounded
            _ONES.clear()
        vec = np.ones(n)
        vec.setflags(write=False)
        _ONES[n] = vec
    return vec


def affine_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray | None = None
) -> tuple[np.ndarray, Any]:
    """out = x W + b.  x: (m, d), W: (d, k), b: (k,) -> out: (m, k).

    ``out``, if given, is a preallocated (m, k) float64 buffer to write into.
    """
    out = np.matmul(x, W, out=out)
    out += b
    return out, (x, W)


def affine_backward(
    dout: np.ndarray, cache: Any, *, need_dx: bool = True, dx_out: np.ndarray | None = None
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of an affine layer.  dout: (m, k) -> dx: (m, d), dW: (d, k), db: (k,).

    ``need_dx=False`` skips dx (the first layer's input is the data, which has no
    gradient) and returns None for it; ``dx_out`` is an optional (m, d) buffer for dx.
    """
    x, W = cache
    dW = x.T @ dout
    db = ones(dout.shape[0]) @ dout
    dx = np.matmul(dout, W.T, out=dx_out) if need_dx else None
    return dx, dW, db


# Activations.  Each forward may write in place (out=x) and caches its *output*, from
# which the backward pass recovers the local derivative: for ReLU 1[out > 0] = 1[x > 0],
# for the sigmoid σ' = out(1 − out), for tanh 1 − out².  Each backward may write its
# result into ``out`` (e.g. over dout itself).


def relu_forward(x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
    """out = max(x, 0) elementwise.  x: any shape."""
    out = np.maximum(x, 0.0, out=out)
    return out, out


def relu_backward(dout: np.ndarray, cache: Any, out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout · 1[x > 0] (the subgradient at x = 0 is taken to be 0)."""
    return np.multiply(dout, cache > 0, out=out)


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(−x)), computed as exp(−log(1 + e^(−x))) so it never overflows."""
    out = np.negative(x, out=out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)


def sigmoid_forward(x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
    """out = σ(x) elementwise."""
    out = sigmoid(x, out=out)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: Any, out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout · σ(x)(1 − σ(x))."""
    s = cache
    return np.multiply(dout, s * (1.0 - s), out=out)


def tanh_forward(x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
    """out = tanh(x) elementwise."""
    out = np.tanh(x, out=out)
    return out, out


def tanh_backward(dout: np.ndarray, cache: Any, out: np.ndarray | None = None) -> np.ndarray:
    """dx = dout · (1 − tanh(x)²)."""
    t = cache
    return np.multiply(dout, 1.0 - t * t, out=out)


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
}
