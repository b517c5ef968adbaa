"""Student implementations of the seed exercises, written as the CS231n notes write them,
and wrong ones, each with the slip a diagnosis names."""

from __future__ import annotations

SOFTMAX = """
import numpy as np


def loss_and_gradients(params, X, y, l2):
    W, b = params["W"], params["b"]
    num_examples = X.shape[0]
    scores = np.dot(X, W) + b
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    correct_logprobs = -np.log(probs[range(num_examples), y])
    data_loss = np.sum(correct_logprobs) / num_examples
    reg_loss = 0.5 * l2 * np.sum(W * W)
    loss = data_loss + reg_loss
    dscores = probs
    dscores[range(num_examples), y] -= 1
    dscores /= num_examples  # @AVERAGE
    dW = np.dot(X.T, dscores)  # @DW
    db = np.sum(dscores, axis=0, keepdims=False)
    dW += l2 * W  # @L2
    return loss, {"W": dW, "b": db}
"""

TWO_LAYER = """
import numpy as np


def loss_and_gradients(params, X, y, l2):
    W, b, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    num_examples = X.shape[0]
    hidden_layer = np.maximum(0, np.dot(X, W) + b)
    scores = np.dot(hidden_layer, W2) + b2
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    correct_logprobs = -np.log(probs[range(num_examples), y])
    data_loss = np.sum(correct_logprobs) / num_examples
    reg_loss = 0.5 * l2 * np.sum(W * W) + 0.5 * l2 * np.sum(W2 * W2)
    loss = data_loss + reg_loss
    dscores = probs
    dscores[range(num_examples), y] -= 1
    dscores /= num_examples
    dW2 = np.dot(hidden_layer.T, dscores)
    db2 = np.sum(dscores, axis=0)
    dhidden = np.dot(dscores, W2.T)
    dhidden[hidden_layer <= 0] = 0
    dW = np.dot(X.T, dhidden)
    db = np.sum(dhidden, axis=0)
    dW2 += l2 * W2
    dW += l2 * W
    return loss, {"W1": dW, "b1": db, "W2": dW2, "b2": db2}
"""


def softmax_with(**slips: str) -> str:
    """The softmax with lines replaced: ``average=""`` drops the mean, ``l2=""`` the L2
    term, ``dw="dW = np.dot(X.T, dscores).T"`` transposes dW."""
    lines = []
    for line in SOFTMAX.splitlines():
        for tag, replacement in slips.items():
            if f"# @{tag.upper()}" in line:
                indent = line[: len(line) - len(line.lstrip())]
                line = indent + (replacement or "pass")
        lines.append(line)
    return "\n".join(lines) + "\n"


def with_body(body: str) -> str:
    """A function for the softmax shapes (W (2, 3), b (3,)) whose body is ``body``."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return (
        "import numpy as np\n\n\ndef loss_and_gradients(params, X, y, l2):\n"
        f"{indented}\n"
        '    return 1.0, {"W": np.zeros((2, 3)), "b": np.zeros(3)}\n'
    )
