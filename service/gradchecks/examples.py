"""Swagger's examples for ``POST /v1/gradient-checks``: the CS231n softmax classifier on the
spiral, at its seeded initial parameters, with the right gradients and with a classic slip.

The numbers are computed by the engine when the module is imported, so they are always the
exercise's own (a few microseconds: 300 × 2 data, six weights)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine import make_dataset, make_model

_EXERCISE: dict[str, Any] = {
    "model": {"kind": "softmax_regression"},
    "loss": "cross_entropy",
    "l2": 0.001,
    "data": {"kind": "spiral", "n_per_class": 100, "n_classes": 3},
}


def _example() -> tuple[dict[str, Any], dict[str, np.ndarray], float]:
    data = make_dataset("spiral", n_per_class=100, n_classes=3)
    model = make_model("softmax_regression", n_features=2, n_classes=3)
    params = model.init_params("random", scale=0.01, seed=0)
    params["b"] = np.array([0.01, -0.02, 0.03])  # so that L2 on b would show
    loss, grads = model.loss_and_grads(params, data.X, model.check_targets(data.y), 0.001)
    body = {**_EXERCISE, "params": {k: v.tolist() for k, v in params.items()}}
    return body, grads, float(loss.loss)


def _examples() -> dict[str, dict[str, Any]]:
    body, grads, loss = _example()
    m = 300
    summed = {k: (m * v if k == "b" else m * v - (m - 1) * 0.001 * np.asarray(body["params"][k]))
              for k, v in grads.items()}  # fmt: skip
    return {
        "softmax_right": {
            "summary": "CS231n softmax on the spiral: right gradients and loss",
            "value": {
                **body,
                "gradients": {k: v.tolist() for k, v in grads.items()},
                "loss_value": loss,
            },
        },
        "softmax_summed": {
            "summary": "The same, with dscores summed over the examples instead of averaged",
            "value": {**body, "gradients": {k: v.tolist() for k, v in summed.items()}},
        },
    }


EXAMPLES = _examples()
