"""Ready-to-run specs for the seed exercises, shown in Swagger UI (and submitted by the tests)."""

from __future__ import annotations

from typing import Any

LINE = {"kind": "line", "n_samples": 100, "slope": 2.0, "intercept": 1.0, "noise": 0.1}
SPIRAL = {"kind": "spiral", "n_per_class": 100, "n_classes": 3}
CS231N = {"data": SPIRAL, "optimizer": {"kind": "gd", "learning_rate": 1.0}, "l2": 0.001}
"""The notes' set-up: the spiral, step size 1.0, L2 1e-3."""


def _seed(summary: str, **spec: Any) -> dict[str, Any]:
    return {"summary": summary, "value": spec}


GD = {"kind": "gd"}

# fmt: off
SEEDS: dict[str, dict[str, Any]] = {
    "line_mse": _seed(
        "Straight-line fit, mean squared error",
        name="line-mse", model={"kind": "linear_regression"}, loss="mse", data=LINE,
        optimizer={**GD, "learning_rate": 0.1}, iterations=500),
    "line_mae": _seed(
        "Straight-line fit, mean absolute error (a subgradient)",
        name="line-mae", model={"kind": "linear_regression"}, loss="mae", data=LINE,
        optimizer={**GD, "learning_rate": 0.05}, iterations=500),
    "blobs_logistic": _seed(
        "Binary 2-D Gaussians: sigmoid and log loss",
        name="blobs-logistic", model={"kind": "logistic_regression"}, loss="log_loss",
        data={"kind": "blobs", "n_samples": 200, "n_classes": 2, "cluster_std": 1.5},
        optimizer={**GD, "learning_rate": 0.5}, iterations=300),
    "spiral_softmax": _seed(
        "The CS231n softmax classifier on the spiral",
        name="cs231n-softmax", model={"kind": "softmax_regression"}, loss="cross_entropy",
        **CS231N, iterations=200),
    "spiral_two_layer": _seed(
        "The CS231n 2-layer neural network on the spiral (h = 100)",
        name="cs231n-2-layer",
        model={"kind": "mlp", "hidden_sizes": [100], "activation": "relu"},
        loss="cross_entropy", **CS231N, iterations=10000),
    "newton_logistic": _seed(
        "Logistic regression by Newton's method",
        name="newton-logistic", model={"kind": "logistic_regression"}, loss="log_loss",
        data={"kind": "blobs", "n_samples": 200, "n_classes": 2, "cluster_std": 2.0,
              "center_box": 2.0},
        optimizer={"kind": "newton"}, l2=0.001, iterations=10),
    "digits_softmax": _seed(
        "Softmax regression on scikit-learn's handwritten digits (8×8 images, 10 classes)",
        name="digits-softmax", model={"kind": "softmax_regression"}, loss="cross_entropy",
        data={"kind": "sklearn", "name": "digits", "standardize": True},
        optimizer={**GD, "learning_rate": 0.5}, l2=0.001, iterations=200),
    "breast_cancer_logistic": _seed(
        "Logistic regression on scikit-learn's breast cancer data (30 features, labels 0/1)",
        name="breast-cancer-logistic", model={"kind": "logistic_regression"}, loss="log_loss",
        data={"kind": "sklearn", "name": "breast_cancer", "standardize": True},
        optimizer={**GD, "learning_rate": 0.5}, l2=0.001, iterations=300),
}
# fmt: on
