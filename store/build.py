"""From a job spec, typed as the API accepted it, to the engine's objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import (
    Dataset,
    Model,
    Optimizer,
    catalog,
    make_dataset,
    make_model,
    make_optimizer,
)
from store.spec import MLP, GivenInit, InlineData, JobSpec, RandomInit, options


@dataclass
class Built:
    model: Model
    optimizer: Optimizer
    data: Dataset
    params: dict[str, np.ndarray]
    l2: float
    iterations: int


def build_data(spec: JobSpec) -> Dataset:
    """The dataset a spec describes."""
    return make_dataset(spec.data.kind, **options(spec.data))


def build_model(spec: JobSpec, data: Dataset) -> Model:
    """The model a spec describes, sized for ``data``."""
    loss = spec.resolved_loss
    n_classes = data.n_classes
    softmax = catalog.head(spec.model.kind, loss) == "softmax"
    if n_classes is None and softmax and isinstance(spec.data, InlineData):
        n_classes = catalog.inferred_classes(data.y)  # inline labels 0..K−1
    extra: Mapping[str, Any] = {}
    if isinstance(spec.model, MLP):
        extra = {"hidden_sizes": spec.model.hidden_sizes, "activation": spec.model.activation}
    return make_model(
        spec.model.kind,
        n_features=data.X.shape[1],
        n_classes=n_classes,
        loss=loss,
        loss_options=spec.loss_options,
        **extra,
    )


def build(spec: JobSpec) -> Built:
    """The model, optimizer, data and initial parameters a spec describes."""
    data = build_data(spec)
    model = build_model(spec, data)
    optimizer = make_optimizer(spec.optimizer.kind, **options(spec.optimizer))
    init = spec.init
    if isinstance(init, RandomInit):
        params = model.init_params("random", scale=init.scale, seed=init.seed)
    elif isinstance(init, GivenInit):
        params = model.init_params("given", given=init.params)
    else:
        params = model.init_params(init.kind)
    return Built(model, optimizer, data, params, spec.l2, spec.iterations)
