"""Exact Hessians of the convex seed losses, for Newton's method.

The parameters (W: (n, k), b: (k,)) are flattened as W row-major followed by b, which
is the row-major flattening of the augmented matrix Θ = [W; b] of shape (n+1, k) acting
on the augmented inputs X̃ = [X, 1] of shape (m, n+1).  Each function returns the
Hessian of the data loss only, shape ((n+1)k, (n+1)k); the model adds the L2 term.
"""

from __future__ import annotations

import numpy as np


def augment(X: np.ndarray) -> np.ndarray:
    """X̃ = [X, 1].  X: (m, n) -> (m, n+1)."""
    return np.hstack([X, np.ones((X.shape[0], 1))])


def squared_error_hessian(X: np.ndarray, scale: float) -> np.ndarray:
    """Hessian of scale·mean((X̃θ − y)²): (2·scale/m)·X̃ᵀX̃.  X: (m, n) -> (n+1, n+1)."""
    Xa = augment(X)
    return (2.0 * scale / X.shape[0]) * (Xa.T @ Xa)


def log_loss_hessian(X: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Hessian of the mean log loss: (1/m)·X̃ᵀ diag(p(1−p)) X̃.

    X: (m, n), p: (m,) predicted probabilities σ(z) -> (n+1, n+1).
    """
    Xa = augment(X)
    return (Xa.T * (p * (1.0 - p))) @ Xa / X.shape[0]


def cross_entropy_hessian(X: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Hessian of the mean softmax cross-entropy over Θ = [W; b] flattened row-major.

    X: (m, n), P: (m, K) softmax probabilities -> ((n+1)K, (n+1)K), with entries
    H[(a,c), (a',c')] = (1/m) Σ_i x̃_ia x̃_ia' (p_ic δ_cc' − p_ic p_ic').
    """
    Xa = augment(X)
    m, d = Xa.shape
    K = P.shape[1]
    # δ_cc' p_ic part: one weighted Gram matrix per class, placed on the diagonal blocks.
    diag = np.einsum("ia,ic,ib->acb", Xa, P, Xa)
    H = np.einsum("acb,cd->acbd", diag, np.eye(K))
    # p_ic p_ic' part: G[i, (a, c)] = x̃_ia p_ic, so this is GᵀG.
    G = (Xa[:, :, None] * P[:, None, :]).reshape(m, d * K)
    return (H.reshape(d * K, d * K) - G.T @ G) / m
