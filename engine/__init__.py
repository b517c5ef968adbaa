"""gradlab's training engine in pure NumPy: datasets, models with hand-derived gradients,
optimizers, a resumable trainer and a gradient checker.

It imports nothing from the service, a database or HTTP, and no autograd library (torch is
only imported, lazily, by the optional reference in ``torchref``), so it can be used from a
notebook on its own::

    import engine as ml
    data = ml.spiral(seed=0)
    model = ml.make_model("mlp", n_features=2, n_classes=3, hidden_sizes=[100])
    trainer = ml.Trainer(model, ml.make_optimizer("gd", learning_rate=1.0), data.X, data.y,
                         iterations=2000, l2=1e-3)
    for record in trainer:
        ...
"""

from . import catalog
from .datasets import DATASET_KINDS, Dataset, blobs, inline, line, make_dataset, spiral
from .errors import DivergedError, EngineError, LabelError, ShapeError, SpecError
from .gradcheck import GradientCheck, TensorCheck, gradient_check
from .models import (
    ACTIVATION_NAMES,
    INIT_KINDS,
    MODEL_KINDS,
    MODEL_LOSSES,
    Loss,
    Model,
    make_model,
)
from .optim import OPTIMIZER_KINDS, Optimizer, make_optimizer, validate_combination
from .torchref import torch_available
from .trainer import IterationRecord, Trainer

__all__ = [
    "ACTIVATION_NAMES",
    "DATASET_KINDS",
    "INIT_KINDS",
    "MODEL_KINDS",
    "MODEL_LOSSES",
    "OPTIMIZER_KINDS",
    "Dataset",
    "DivergedError",
    "EngineError",
    "GradientCheck",
    "IterationRecord",
    "LabelError",
    "Loss",
    "Model",
    "Optimizer",
    "ShapeError",
    "SpecError",
    "TensorCheck",
    "Trainer",
    "blobs",
    "catalog",
    "gradient_check",
    "inline",
    "line",
    "make_dataset",
    "make_model",
    "make_optimizer",
    "spiral",
    "torch_available",
    "validate_combination",
]
