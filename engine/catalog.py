"""The exercise catalog: every model, loss, activation, optimizer, initialisation and dataset
gradlab knows, with their defaults and the rules that join them.

This is the one home of those facts. The engine builds from it (``make_model``,
``make_optimizer``, ``Model.init_params``, ``Model.check_hessian``); the API's spec and
cross-field validation, the worker's construction of a run, the command line's choices and
the dashboard's form (``GET /v1/catalog``) all derive from it. Adding a loss is its
forward/backward in ``losses.py`` and one :class:`LossInfo` entry here.

Shapes: a model of ``n_features`` inputs and ``n_outputs`` outputs has ``W`` (n, k) and ``b``
(k,), or for an MLP ``W1, b1, …, WL, bL`` through its hidden sizes. The output head follows
from the model and the loss: softmax for cross-entropy (k = K classes), sigmoid for log loss
and for logistic regression (labels 0/1), identity otherwise (real targets).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from . import datasets, layers, losses

Head = Literal["identity", "sigmoid", "softmax"]
Targets = Literal["real", "binary", "classes"]
DataLoss = Callable[..., tuple[float, np.ndarray]]

TARGETS: dict[Head, Targets] = {"identity": "real", "sigmoid": "binary", "softmax": "classes"}
"""What y must hold after each head: any finite values, labels 0/1, or labels 0..K−1."""


@dataclass(frozen=True)
class LossInfo:
    """A data loss: its function after each output head it can follow, and its options."""

    summary: str
    forward: Mapping[Head, DataLoss]
    options: Mapping[str, float] = field(default_factory=dict)
    # Why Newton's method is refused after a head, where the loss has a reason of its own.
    newton_refusal: Mapping[Head, str] = field(default_factory=dict)
    # Where the loss has a kink: the |residual| = threshold option ("delta"), or 0 (mae).
    kink: str | None = None


LOSSES: dict[str, LossInfo] = {
    "mse": LossInfo(
        "mean squared error, mean((ŷ − y)²)",
        {"identity": losses.mse_loss, "sigmoid": losses.sigmoid_mse_loss},
        newton_refusal={
            "sigmoid": "the sigmoid followed by squared error is not convex, so its Hessian "
            "can be indefinite and a Newton step can climb (use log_loss, or gd)"
        },
    ),
    "half_mse": LossInfo(
        "half the mean squared error, the perceptron notes' ½", {"identity": losses.half_mse_loss}
    ),
    "mae": LossInfo(
        "mean absolute error, mean(|ŷ − y|) (a subgradient at 0)",
        {"identity": losses.mae_loss},
        newton_refusal={
            "identity": "the Hessian of the mean absolute error is zero wherever it exists, "
            "so the Newton step is undefined (use gd or sgd)"
        },
        kink="zero",
    ),
    "huber": LossInfo(
        "Huber loss: ½r² for |r| ≤ delta, delta·(|r| − ½delta) beyond; robust to outliers",
        {"identity": losses.huber_loss},
        options={"delta": 1.0},
        newton_refusal={
            "identity": "the Huber loss has no second derivative where |ŷ − y| = delta and "
            "gradlab derives no Hessian for it (use gd or sgd)"
        },
        kink="delta",
    ),
    "log_loss": LossInfo(
        "binary cross-entropy of σ(z), from the logits", {"sigmoid": losses.log_loss}
    ),
    "cross_entropy": LossInfo(
        "softmax cross-entropy, −mean(log p_y)",
        {"softmax": losses.softmax_cross_entropy_loss},
    ),
}


@dataclass(frozen=True)
class StudentFunction:
    """The function a student writes for an exercise (a job's ``student.function``)."""

    name: str
    signature: str
    summary: str


STUDENT_FUNCTION = StudentFunction(
    "loss_and_gradients",
    "loss_and_gradients(params, X, y, l2) -> (loss, grads)",
    "params and grads: dicts of float64 NumPy arrays with the model's names and shapes "
    "(W (n, k), b (k,); W1, b1, W2, b2 for the 2-layer net); X: (m, n); y: (m,) targets or "
    "integer labels; loss: a float including 0.5·l2·Σ‖W‖² over the weights, never biases.",
)


@dataclass(frozen=True)
class ModelInfo:
    """A model kind: the losses it takes (the first is its default), those Newton's method
    trains with the exact Hessian, and its own options with their defaults."""

    summary: str
    losses: tuple[str, ...]
    newton_losses: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


MODELS: dict[str, ModelInfo] = {
    "linear_regression": ModelInfo(
        "ŷ = XW + b, fitted to real-valued targets",
        ("mse", "half_mse", "mae", "huber"),
        newton_losses=("mse", "half_mse"),
    ),
    "logistic_regression": ModelInfo(
        "ŷ = σ(XW + b), labels 0/1", ("log_loss", "mse"), newton_losses=("log_loss",)
    ),
    "softmax_regression": ModelInfo(
        "softmax(XW + b), labels 0..K−1 (the CS231n softmax classifier)",
        ("cross_entropy",),
        newton_losses=("cross_entropy",),
    ),
    "mlp": ModelInfo(
        "a fully connected network trained by backpropagation; [h] is the 2-layer net",
        ("cross_entropy", "mse", "half_mse", "mae", "huber", "log_loss"),
        options={"hidden_sizes": (100,), "activation": "relu"},
    ),
}

ACTIVATIONS: tuple[str, ...] = tuple(layers.ACTIVATIONS)


@dataclass(frozen=True)
class OptimizerInfo:
    summary: str
    options: Mapping[str, Any]
    uses_hessian: bool = False


OPTIMIZERS: dict[str, OptimizerInfo] = {
    "gd": OptimizerInfo(
        "full-batch gradient descent (the seeds' loop)", {"learning_rate": 0.1, "momentum": 0.0}
    ),
    "sgd": OptimizerInfo(
        "minibatch SGD, reshuffled every epoch",
        {"learning_rate": 0.1, "momentum": 0.0, "batch_size": 32, "seed": 0},
    ),
    "newton": OptimizerInfo(
        "Newton's method with the exact Hessian",
        {"learning_rate": 1.0, "damping": 1e-8},
        uses_hessian=True,
    ),
}

INITS: dict[str, Mapping[str, Any]] = {
    "random": {"scale": 0.01, "seed": 0},  # weights scale·N(0, 1), biases zero (CS231n)
    "zeros": {},
    "given": {},  # explicit arrays: "params"
}
"""Initialisations and their options' defaults."""


def _defaults(generator: Callable[..., Any]) -> dict[str, Any]:
    """A generator's keyword defaults: the datasets' signatures are their home."""
    return {
        name: p.default
        for name, p in inspect.signature(generator).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


UPLOADED = "dataset"
"""The kind of a dataset uploaded to the server (``POST /v1/datasets``), named by its id: the
server, not the engine, turns it into arrays."""

DATASETS: dict[str, Mapping[str, Any]] = {
    **{kind: _defaults(generator) for kind, generator in datasets.GENERATORS.items()},
    UPLOADED: {},
}
"""Dataset kinds and their options' defaults (inline takes X and y, dataset its id)."""


# --- the rules joining them ----------------------------------------------------------------


def default_loss(model_kind: str) -> str:
    return MODELS[model_kind].losses[0]


def loss_options(loss: str, given: Mapping[str, float] | None = None) -> dict[str, float]:
    """The loss's options with defaults filled in (unknown names are the caller's to refuse)."""
    return {**LOSSES[loss].options, **(given or {})}


def head(model_kind: str, loss: str) -> Head:
    """The output head a model with this loss computes its scores through."""
    if loss == "cross_entropy":
        return "softmax"
    if loss == "log_loss" or model_kind == "logistic_regression":
        return "sigmoid"
    return "identity"


def n_outputs(model_kind: str, loss: str, n_classes: int | None) -> int:
    """Columns of the model's output: K for a softmax head, else 1."""
    return (n_classes or 0) if head(model_kind, loss) == "softmax" else 1


def param_shapes(
    model_kind: str, n_features: int, n_outputs: int, hidden_sizes: Sequence[int] = ()
) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes in order: W, b, or W1, b1, …, WL, bL for an MLP."""
    sizes = (n_features, *(hidden_sizes if model_kind == "mlp" else ()), n_outputs)
    mlp = model_kind == "mlp"
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, (fan_in, fan_out) in enumerate(pairwise(sizes), start=1):
        suffix = str(layer) if mlp else ""
        shapes[f"W{suffix}"] = (fan_in, fan_out)
        shapes[f"b{suffix}"] = (fan_out,)
    return shapes


def newton_refusal(model_kind: str, loss: str) -> str | None:
    """Why Newton's method is refused for this model and loss; None where it applies."""
    info = MODELS[model_kind]
    if loss in info.newton_losses:
        return None
    if not info.newton_losses:
        exact = [kind.replace("_regression", "") for kind, m in MODELS.items() if m.newton_losses]
        return (
            f"newton needs the exact Hessian, which gradlab derives only for "
            f"{', '.join(exact[:-1])} and {exact[-1]} regression; it is refused for "
            f"{model_kind} (use gd or sgd)."
        )
    reason = LOSSES[loss].newton_refusal.get(head(model_kind, loss))
    if reason is None:
        allowed = ", ".join(info.newton_losses)
        reason = f"gradlab derives its Hessian only with {allowed} (use gd or sgd)"
    return f"newton is refused for {model_kind} with {loss}: {reason}."


def inferred_classes(y: Sequence[float] | np.ndarray) -> int | None:
    """Classes of inline labels: max + 1 when every label is a whole number ≥ 0, else None."""
    ya = np.asarray(y, dtype=np.float64)
    if ya.size == 0 or not np.all((ya >= 0) & (ya == np.round(ya))):
        return None
    return int(ya.max()) + 1


@dataclass(frozen=True)
class DataShape:
    """What a model needs to know of its data: rows, columns and, for labels, classes."""

    rows: int
    features: int
    n_classes: int | None  # generated labels' classes, or inferred from inline labels
    labelled: bool  # generated class labels (blobs, spiral) rather than given values


def data_shape(kind: str, options: Mapping[str, Any]) -> DataShape:
    """Rows, features and classes of a dataset's options, without generating it."""
    o = {**DATASETS[kind], **options}
    if kind == "line":
        return DataShape(o["n_samples"], 1, None, False)
    if kind == "blobs":
        return DataShape(o["n_samples"], o["n_features"], o["n_classes"], True)
    if kind == "spiral":
        return DataShape(o["n_per_class"] * o["n_classes"], 2, o["n_classes"], True)
    if kind == "sklearn":
        bundled = datasets.SKLEARN[o["name"]]
        return DataShape(
            bundled.rows, bundled.features, bundled.classes, bundled.classes is not None
        )
    X, y = o["X"], o["y"]
    features = len(X[0]) if len(X) else 0
    return DataShape(len(X), features, inferred_classes(y), False)


CHOICES: dict[str, tuple[str, ...]] = {"activation": ACTIVATIONS, "name": tuple(datasets.SKLEARN)}
"""Options whose value is one of a list of names."""


def _options(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Options as JSON: each one's default and type (``int``, ``float``, ``ints``, or
    ``choice`` with its ``choices``), which JSON numbers alone would not tell apart."""
    out: dict[str, dict[str, Any]] = {}
    for name, default in options.items():
        if name in CHOICES:
            out[name] = {"default": default, "type": "choice", "choices": list(CHOICES[name])}
        elif isinstance(default, tuple):
            out[name] = {"default": list(default), "type": "ints"}
        else:
            out[name] = {"default": default, "type": type(default).__name__}
    return out


def describe() -> dict[str, Any]:
    """The catalog as JSON: what ``GET /v1/catalog`` serves to forms and clients."""
    return {
        "models": {
            kind: {
                "summary": m.summary,
                "losses": list(m.losses),
                "default_loss": m.losses[0],
                "newton_losses": list(m.newton_losses),
                "options": _options(m.options),
                "function": {
                    "name": STUDENT_FUNCTION.name,
                    "signature": STUDENT_FUNCTION.signature,
                    "summary": STUDENT_FUNCTION.summary,
                },
            }
            for kind, m in MODELS.items()
        },
        "losses": {
            name: {
                "summary": loss.summary,
                "targets": sorted({TARGETS[h] for h in loss.forward}),
                "options": _options(loss.options),
            }
            for name, loss in LOSSES.items()
        },
        "activations": list(ACTIVATIONS),
        "optimizers": {
            kind: {"summary": o.summary, "options": _options(o.options)}
            for kind, o in OPTIMIZERS.items()
        },
        "inits": {kind: {"options": _options(options)} for kind, options in INITS.items()},
        "datasets": {kind: {"options": _options(options)} for kind, options in DATASETS.items()},
    }
