"""Data losses, each returning ``(loss, dscores)`` like CS231n's ``softmax_loss``.

``loss`` is the mean over the m samples (a Python float) and ``dscores`` its gradient
with respect to the model's raw output: predictions ŷ (m,) for regression, logits
z (m,) for the sigmoid head, logits (m, K) for the softmax head.  Targets y are float64
for regression and int64 labels for the classifiers (see ``Model.check_targets``).
"""

from __future__ import annotations

import numpy as np

from .layers import ones, sigmoid


def mse_loss(yhat: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """mean((ŷ − y)²); d/dŷ = 2(ŷ − y)/m.  yhat, y: (m,)."""
    m = yhat.shape[0]
    r = yhat - y
    return float(r @ r) / m, r * (2.0 / m)


def half_mse_loss(yhat: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """mean((ŷ − y)²)/2, the perceptron notes' 1/2; d/dŷ = (ŷ − y)/m.  yhat, y: (m,)."""
    m = yhat.shape[0]
    r = yhat - y
    return 0.5 * float(r @ r) / m, r / m


def mae_loss(yhat: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """mean(|ŷ − y|); subgradient sign(ŷ − y)/m with sign(0) = 0.  yhat, y: (m,)."""
    m = yhat.shape[0]
    r = yhat - y
    return float(np.abs(r).sum()) / m, np.sign(r) / m


def log_loss(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of σ(z) against labels y ∈ {0, 1}, from the logits z: (m,).

    With s = 1 − 2y (+1 for class 0, −1 for class 1) each sample's loss
    −[y log σ(z) + (1−y) log(1 − σ(z))] equals log(1 + e^(s·z)) = logaddexp(0, s·z),
    which never takes log 0, and its derivative σ(z) − y equals s·σ(s·z).
    """
    m = z.shape[0]
    s = 1.0 - 2.0 * y
    t = s * z
    return float(np.logaddexp(0.0, t).sum()) / m, s * sigmoid(t) / m


def sigmoid_mse_loss(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """mean((σ(z) − y)²) on the sigmoid output, as the notes contrast it with log loss.

    z, y: (m,).  d/dz = 2(σ(z) − y)·σ(z)σ(−z)/m (σ(−z) = 1 − σ(z) without cancellation).
    """
    m = z.shape[0]
    p = sigmoid(z)
    r = p - y
    return float(r @ r) / m, r * p * sigmoid(-z) * (2.0 / m)


def softmax_cross_entropy_loss(
    scores: np.ndarray,
    y: np.ndarray,
    best: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """−mean(log p_y) with p = softmax(scores); d/dscores = (p − onehot(y))/m.

    scores: (m, K) logits, y: (m,) int labels.  The logits are shifted by each row's
    maximum before exp.  best: (m,) argmax of each row, if the caller already has it
    (it needs it for accuracy); rows: np.arange(m), if the caller keeps one.
    """
    m, K = scores.shape
    if rows is None:
        rows = np.arange(m)
    if best is None:
        best = scores.argmax(axis=1)
    shifted = scores - scores[rows, best][:, None]
    exp = np.exp(shifted)
    total = exp @ ones(K)  # row sums, each >= 1 because the maximum contributes e^0
    loss = float((np.log(total) - shifted[rows, y]) @ ones(m)) / m
    dscores = exp / (total * m)[:, None]
    dscores[rows, y] -= 1.0 / m
    return loss, dscores


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits scores: (m, K), shifted before exp."""
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def huber_loss(yhat: np.ndarray, y: np.ndarray, delta: float = 1.0) -> tuple[float, np.ndarray]:
    """mean of ½r² where |r| ≤ δ and δ(|r| − ½δ) beyond, r = ŷ − y (Huber, 1964).

    Quadratic near the fit and linear in the tails, so an outlier pulls with a force of at
    most δ instead of its whole residual; d/dŷ = clip(r, −δ, δ)/m.  yhat, y: (m,).
    """
    m = yhat.shape[0]
    r = yhat - y
    a = np.abs(r)
    quadratic = a <= delta
    per_sample = np.where(quadratic, 0.5 * r * r, delta * (a - 0.5 * delta))
    return float(per_sample.sum()) / m, np.clip(r, -delta, delta) / m
