"""An optional outside reference: each model's loss re-implemented in PyTorch float64.

The loss is written here independently of the NumPy code, from ``torch.nn.functional``
(mse_loss, l1_loss, huber_loss, binary_cross_entropy_with_logits, cross_entropy,
relu/sigmoid/tanh)
plus the L2 term, and differentiated by autograd.  torch is an optional extra: it is
imported lazily inside the functions, never at module import.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .models import Model


def torch_available() -> bool:
    """Whether ``import torch`` works in this environment."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def torch_loss_and_grads(
    model: Model, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, l2: float
) -> tuple[float, dict[str, np.ndarray]]:
    """(loss, {name: gradient}) of ``model``'s loss at ``params`` by torch autograd.

    X: (m, n) float64; y: as ``model.check_targets`` returns it.  Raises ImportError
    when torch is not installed.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 (torch's own idiom)

    activations: dict[str, Any] = {"relu": F.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
    tensors = {
        name: torch.tensor(np.asarray(value), dtype=torch.float64, requires_grad=True)
        for name, value in params.items()
    }
    names = list(model.param_shapes())
    layers = [(tensors[names[i]], tensors[names[i + 1]]) for i in range(0, len(names), 2)]

    h = torch.tensor(X, dtype=torch.float64)
    for depth, (W, b) in enumerate(layers):
        h = h @ W + b
        if depth < len(layers) - 1:
            assert model.activation is not None
            h = activations[model.activation](h)
    scores = h

    if model.head == "softmax":
        data_loss = F.cross_entropy(scores, torch.tensor(y, dtype=torch.long))
    else:
        z = scores[:, 0]
        target = torch.tensor(y, dtype=torch.float64)
        if model.head == "sigmoid" and model.loss_name == "log_loss":
            data_loss = F.binary_cross_entropy_with_logits(z, target)
        elif model.head == "sigmoid":
            data_loss = F.mse_loss(torch.sigmoid(z), target)
        elif model.loss_name == "mse":
            data_loss = F.mse_loss(z, target)
        elif model.loss_name == "half_mse":
            data_loss = 0.5 * F.mse_loss(z, target)
        elif model.loss_name == "huber":
            data_loss = F.huber_loss(z, target, delta=model.loss_options["delta"])
        else:
            data_loss = F.l1_loss(z, target)
    reg_loss = 0.5 * l2 * sum((W * W).sum() for W, _ in layers)
    loss = data_loss + reg_loss
    loss.backward()
    grads = {}
    for name, tensor in tensors.items():
        assert tensor.grad is not None
        grads[name] = tensor.grad.detach().numpy().copy()
    return float(loss.item()), grads
