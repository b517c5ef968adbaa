"""From a stored (normalised) job spec to the engine's objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import Dataset, Model, Optimizer, make_dataset, make_model, make_optimizer


@dataclass
class Built:
    model: Model
    optimizer: Optimizer
    data: Dataset
    params: dict[str, np.ndarray]
    l2: float
    iterations: int


def _options(section: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k != "kind"}


def build(spec: Mapping[str, Any]) -> Built:
    """The model, optimizer, data and initial parameters a spec describes."""
    data = make_dataset(spec["data"]["kind"], **_options(spec["data"]))
    loss = spec["loss"]
    n_classes = data.n_classes
    if n_classes is None and loss == "cross_entropy" and len(data.y):
        n_classes = int(np.max(data.y)) + 1  # inline labels 0..K−1
    model_spec = spec["model"]
    model = make_model(
        model_spec["kind"],
        n_features=data.X.shape[1],
        n_classes=n_classes,
        loss=loss,
        **_options(model_spec),
    )
    optimizer = make_optimizer(spec["optimizer"]["kind"], **_options(spec["optimizer"]))
    init = spec["init"]
    params = model.init_params(
        init["kind"],
        scale=init.get("scale", 0.01),
        seed=init.get("seed", 0),
        given=init.get("params"),
    )
    return Built(model, optimizer, data, params, float(spec["l2"]), int(spec["iterations"]))
