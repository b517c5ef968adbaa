"""The bare CS231n seed loops, written as the notes write them.

These are the outside reference for the engine, kept beside it but sharing none of its
code: the benchmark times them against :class:`engine.Trainer`, and the tests check that
the engine's loss series matches theirs.  They follow "Putting it together: Minimal
Neural Network Case Study" (https://cs231n.github.io/neural-networks-case-study/) line
for line, with three
changes that do not touch the arithmetic: the initial parameters and the data are
passed in (so both sides start from the same numbers), the loss of every iteration is
appended to a list instead of printed every 10th/1000th iteration, and the parameters
are copied first so the caller's arrays are not modified.
"""

from __future__ import annotations

import numpy as np


def spiral_data(
    N: int = 100, K: int = 3, D: int = 2, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The notes' spiral generator (global-RNG form, seeded with ``np.random.seed``).

    Returns X: (N*K, D) and y: (N*K,) uint8.  Kept for reference; the engine's
    ``engine.spiral`` is the same generator on a seeded ``np.random.Generator``.
    """
    if seed is not None:
        np.random.seed(seed)
    X = np.zeros((N * K, D))  # data matrix (each row = single example)
    y = np.zeros(N * K, dtype="uint8")  # class labels
    for j in range(K):
        ix = range(N * j, N * (j + 1))
        r = np.linspace(0.0, 1, N)  # radius
        t = np.linspace(j * 4, (j + 1) * 4, N) + np.random.randn(N) * 0.2  # theta
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = j
    return X, y


def softmax_seed(
    X: np.ndarray,
    y: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    step_size: float = 1e-0,
    reg: float = 1e-3,
    iterations: int = 200,
) -> tuple[list[float], dict[str, np.ndarray]]:
    """Train the notes' linear softmax classifier by full-batch gradient descent.

    X: (N, D), y: (N,) integer labels, W: (D, K), b: (1, K) or (K,).
    Returns the loss of every iteration (computed before that iteration's update) and
    the final parameters ``{"W": (D, K), "b": (1, K)}``.
    """
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64).reshape(1, -1)
    losses = []

    # gradient descent loop
    num_examples = X.shape[0]
    for i in range(iterations):  # noqa: B007 (the notes print loss every few i)
        # evaluate class scores, [N x K]
        scores = np.dot(X, W) + b

        # compute the class probabilities
        exp_scores = np.exp(scores)
        probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)  # [N x K]

        # compute the loss: average cross-entropy loss and regularization
        correct_logprobs = -np.log(probs[range(num_examples), y])
        data_loss = np.sum(correct_logprobs) / num_examples
        reg_loss = 0.5 * reg * np.sum(W * W)
        loss = data_loss + reg_loss
        losses.append(loss)

        # compute the gradient on scores
        dscores = probs
        dscores[range(num_examples), y] -= 1
        dscores /= num_examples

        # backpropate the gradient to the parameters (W,b)
        dW = np.dot(X.T, dscores)
        db = np.sum(dscores, axis=0, keepdims=True)

        dW += reg * W  # regularization gradient

        # perform a parameter update
        W += -step_size * dW
        b += -step_size * db
    return losses, {"W": W, "b": b}


def two_layer_seed(
    X: np.ndarray,
    y: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    W2: np.ndarray,
    b2: np.ndarray,
    step_size: float = 1e-0,
    reg: float = 1e-3,
    iterations: int = 10000,
) -> tuple[list[float], dict[str, np.ndarray]]:
    """Train the notes' 2-layer ReLU network by full-batch gradient descent.

    X: (N, D), y: (N,) integer labels, W: (D, h), b: (1, h) or (h,), W2: (h, K),
    b2: (1, K) or (K,).  Returns the loss of every iteration (before that iteration's
    update) and the final parameters ``{"W": ..., "b": ..., "W2": ..., "b2": ...}``.
    """
    W = np.array(W, dtype=np.float64)
    b = np.array(b, dtype=np.float64).reshape(1, -1)
    W2 = np.array(W2, dtype=np.float64)
    b2 = np.array(b2, dtype=np.float64).reshape(1, -1)
    losses = []

    # gradient descent loop
    num_examples = X.shape[0]
    for i in range(iterations):  # noqa: B007 (the notes print loss every few i)
        # evaluate class scores, [N x K]
        hidden_layer = np.maximum(0, np.dot(X, W) + b)  # note, ReLU activation
        scores = np.dot(hidden_layer, W2) + b2

        # compute the class probabilities
        exp_scores = np.exp(scores)
        probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)  # [N x K]

        # compute the loss: average cross-entropy loss and regularization
        correct_logprobs = -np.log(probs[range(num_examples), y])
        data_loss = np.sum(correct_logprobs) / num_examples
        reg_loss = 0.5 * reg * np.sum(W * W) + 0.5 * reg * np.sum(W2 * W2)
        loss = data_loss + reg_loss
        losses.append(loss)

        # compute the gradient on scores
        dscores = probs
        dscores[range(num_examples), y] -= 1
        dscores /= num_examples

        # backpropate the gradient to the parameters
        # first backprop into parameters W2 and b2
        dW2 = np.dot(hidden_layer.T, dscores)
        db2 = np.sum(dscores, axis=0, keepdims=True)
        # next backprop into hidden layer
        dhidden = np.dot(dscores, W2.T)
        # backprop the ReLU non-linearity
        dhidden[hidden_layer <= 0] = 0
        # finally into W,b
        dW = np.dot(X.T, dhidden)
        db = np.sum(dhidden, axis=0, keepdims=True)

        # add regularization gradient contribution
        dW2 += reg * W2
        dW += reg * W

        # perform a parameter update
        W += -step_size * dW
        b += -step_size * db
        W2 += -step_size * dW2
        b2 += -step_size * db2
    return losses, {"W": W, "b": b, "W2": W2, "b2": b2}
