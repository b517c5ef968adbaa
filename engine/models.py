"""The seed models: linear, logistic and softmax regression and the multi-layer perceptron.

All four are one computation: zero or more hidden layers (affine + activation) and an
output affine layer whose scores go through a head chosen by the model and the loss
(``catalog.head``: identity for regression losses, sigmoid for log_loss and logistic
regression, softmax for cross_entropy).  The model computes the loss and its hand-derived
gradients; the optimizer (``optim.py``) does the update.  Which losses, options and
defaults exist is the catalog's to say (``catalog.py``); this module computes them.

Shapes: X (m, n); W (n, k) and b (k,) with k = 1 for linear/logistic regression and
k = K classes for softmax; an MLP has W1, b1, …, WL, bL.  L2 follows CS231n:
loss += 0.5·l2·Σ‖W‖² over the weight matrices only, and dW += l2·W.

At ~480 lines this module is longer than the others on purpose: it is one class whose
forward pass, backward pass, kink signature, predictions and Hessian all walk the same
layer layout, and they are kept side by side so that a change to one is made beside the
others (as CS231n keeps a layer's forward beside its backward).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from . import catalog
from . import hessian as _hessian
from ._checks import as_float, as_int, as_matrix, as_vector, choice
from .errors import EngineError, LabelError, ShapeError, SpecError
from .layers import ACTIVATIONS, affine_backward, affine_forward, sigmoid
from .losses import softmax, softmax_cross_entropy_loss

MODEL_KINDS = tuple(catalog.MODELS)
MODEL_LOSSES: dict[str, tuple[str, ...]] = {k: m.losses for k, m in catalog.MODELS.items()}
"""Losses each model kind accepts, the first its default (a view of the catalog)."""
ACTIVATION_NAMES = catalog.ACTIVATIONS
INIT_KINDS = tuple(catalog.INITS)


class Loss(NamedTuple):
    """One forward pass's numbers.  accuracy is None for regression."""

    loss: float
    data_loss: float
    reg_loss: float
    accuracy: float | None


def _fmt(value: float) -> str:
    return f"{value:g}"


class Model:
    """A model of one kind with one loss.  It holds no parameters (they are passed in),
    only per-thread scratch buffers for the hidden layers.

    Build it with :func:`make_model`.  Attributes: ``kind``, ``loss_name``, ``head``
    ("identity" | "sigmoid" | "softmax"), ``is_classifier``, ``n_features``,
    ``n_outputs``, ``n_classes``, ``hidden_sizes`` (() unless mlp), ``activation``
    (None unless mlp).
    """

    def __init__(
        self,
        kind: str,
        loss_name: str,
        *,
        n_features: int,
        n_classes: int | None,
        hidden_sizes: tuple[int, ...],
        activation: str | None,
        loss_options: Mapping[str, float] | None = None,
    ) -> None:
        self.kind = kind
        self.loss_name = loss_name
        self.loss_options = catalog.loss_options(loss_name, loss_options)
        self.head = catalog.head(kind, loss_name)
        self.is_classifier = self.head != "identity"
        self.n_features = n_features
        self.n_classes: int | None
        if self.head == "softmax":
            assert n_classes is not None
            self.n_classes = self.n_outputs = n_classes
        else:
            self.n_classes = 2 if self.is_classifier else None
            self.n_outputs = 1
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.name = f"mlp with {loss_name}" if kind == "mlp" else kind

        self._shapes = catalog.param_shapes(kind, n_features, self.n_outputs, hidden_sizes)
        shape_names = list(self._shapes)
        names = list(zip(shape_names[::2], shape_names[1::2], strict=True))
        self._hidden = names[:-1]
        self._out = names[-1]
        self._weights = tuple(Wn for Wn, _ in names)
        if activation is not None:
            self._act_forward, self._act_backward = ACTIVATIONS[activation]
        forward = catalog.LOSSES[loss_name].forward[self.head]
        self._data_loss = functools.partial(forward, **self.loss_options)
        self._rows = np.arange(0)
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]  # scratch buffers are per process and per thread
        state["_rows"] = np.arange(0)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def __repr__(self) -> str:
        extra = f", hidden_sizes={list(self.hidden_sizes)}, activation={self.activation!r}"
        return (
            f"Model(kind={self.kind!r}, loss={self.loss_name!r}, n_features={self.n_features}, "
            f"n_outputs={self.n_outputs}{extra if self.kind == 'mlp' else ''})"
        )

    # -- parameters ------------------------------------------------------------------

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes in order: W, b or W1, b1, …, WL, bL."""
        return dict(self._shapes)

    @property
    def weight_names(self) -> tuple[str, ...]:
        """The tensors L2 applies to: the weight matrices W (or W1 … WL), never the biases."""
        return self._weights

    def reg_grads(self, params: Mapping[str, np.ndarray], l2: float) -> dict[str, np.ndarray]:
        """The gradient of the L2 term 0.5·l2·Σ‖W‖² alone: l2·W for each weight, zeros for
        each bias (the part :meth:`loss_and_grads` adds to every dW), in ``param_shapes``
        order.  The diagnosis of a student's gradient subtracts it to see the data part."""
        return {
            name: l2 * params[name] if name in self._weights else np.zeros(shape)
            for name, shape in self._shapes.items()
        }

    def init_params(
        self,
        init: str = "random",
        *,
        scale: float = catalog.INITS["random"]["scale"],
        seed: int = catalog.INITS["random"]["seed"],
        given: Mapping[str, ArrayLike] | None = None,
    ) -> dict[str, np.ndarray]:
        """Initial parameters, as CS231n initialises them.

        "random": every weight matrix scale·N(0, 1) drawn in order from
        ``np.random.default_rng(seed)``, biases zero; "zeros": all zero; "given": the
        arrays in ``given`` (names and shapes checked, copied to float64).
        """
        choice(init, "init", INIT_KINDS)
        if given is not None and init != "given":
            raise SpecError(f"Parameters were given but init is {init!r}; use init='given'.")
        if init == "given":
            if given is None:
                raise SpecError("init='given' needs the parameter arrays in `given`.")
            return self.check_params(given, what="given parameters")
        params = {name: np.zeros(shape) for name, shape in self._shapes.items()}
        if init == "random":
            scale = as_float(scale, "scale", positive=True)
            rng = np.random.default_rng(as_int(seed, "seed", minimum=0))
            for Wn in self._weights:
                params[Wn] = scale * rng.standard_normal(self._shapes[Wn])
        return params

    def check_params(
        self, params: Mapping[str, ArrayLike], *, what: str = "parameters"
    ) -> dict[str, np.ndarray]:
        """Copies of ``params`` as C-contiguous float64 arrays, in ``param_shapes`` order.

        Raises SpecError for missing or unknown names, ShapeError for a wrong shape and
        EngineError for values that are not finite.
        """
        if not isinstance(params, Mapping):
            raise SpecError(f"The {what} must be a mapping from name to array.")
        expected = ", ".join(self._shapes)
        for name in params:
            if name not in self._shapes:
                raise SpecError(
                    f"The {what} include {name!r}, which {self.name} does not have; "
                    f"its parameters are {expected}."
                )
        out = {}
        for name, shape in self._shapes.items():
            if name not in params:
                raise SpecError(f"The {what} are missing {name}; {self.name} needs {expected}.")
            try:
                arr = np.array(params[name], dtype=np.float64, order="C")
            except (TypeError, ValueError):
                raise ShapeError(
                    f"{name} in the {what} is not a rectangular array of numbers."
                ) from None
            if arr.shape != shape:
                raise ShapeError(
                    f"{name} in the {what} has shape {arr.shape}, but {self.name} needs {shape}."
                )
            if not np.isfinite(arr).all():
                raise EngineError(f"{name} in the {what} contains values that are not finite.")
            out[name] = arr
        return out

    # -- data --------------------------------------------------------------------------

    def check_X(self, X: Any) -> np.ndarray:
        """X as float64 (m, n_features), finite; ShapeError naming the mismatch."""
        Xa = as_matrix(X, "X")
        if Xa.shape[1] != self.n_features:
            raise ShapeError(
                f"X has {Xa.shape[1]} features (columns) but the model was built for "
                f"n_features={self.n_features}."
            )
        return Xa

    def check_targets(self, y: Any) -> np.ndarray:
        """y as the model computes with it: float64 (m,) for regression, int64 labels
        (m,) for classifiers (0/1 for the sigmoid head, 0..K−1 for softmax).

        Raises LabelError naming the first bad value and its index.
        """
        ya = as_vector(y, "y")
        bad = ~np.isfinite(ya)
        if not self.is_classifier:
            if bad.any():
                i = int(np.argmax(bad))
                raise LabelError(
                    f"{self.name} needs finite targets, but y contains {_fmt(ya[i])} "
                    f"(at index {i})."
                )
            return ya
        bad |= ya != np.round(ya)
        if bad.any():
            i = int(np.argmax(bad))
            raise LabelError(
                f"{self.name} needs whole-number class labels, but y contains {_fmt(ya[i])} "
                f"(at index {i})."
            )
        K = self.n_outputs if self.head == "softmax" else 2
        bad = (ya < 0) | (ya >= K)
        if bad.any():
            i = int(np.argmax(bad))
            if K == 2:
                allowed = "labels 0 or 1"
            elif K <= 4:
                allowed = f"labels {', '.join(map(str, range(K - 1)))} or {K - 1}"
            else:
                allowed = f"labels 0 to {K - 1}"
            classes = f" with {K} classes" if self.head == "softmax" else ""
            raise LabelError(
                f"{self.name}{classes} needs {allowed}, but y contains {_fmt(ya[i])} "
                f"(at index {i})."
            )
        return ya.astype(np.int64)

    # -- forward and backward -----------------------------------------------------------

    def _arange(self, m: int) -> np.ndarray:
        rows = self._rows
        if rows.shape[0] < m:
            rows = self._rows = np.arange(m)
        return rows[:m]

    def _buffer(self, key: tuple, shape: tuple[int, ...]) -> np.ndarray:
        """A float64 scratch array reused across calls (per thread), for the hidden layers.

        Reusing the (m, h) activations and their gradients instead of allocating them
        every iteration keeps large temporaries out of the allocator, which otherwise maps
        fresh zeroed pages for each one; they never leave the model (gradients and
        outputs are always new arrays).
        """
        workspace = getattr(self._local, "workspace", None)
        if workspace is None:
            workspace = self._local.workspace = {}
        buf = workspace.get((key, shape))
        if buf is None:
            if len(workspace) > 64:  # many batch shapes (e.g. gradient checks): start over
                workspace.clear()
            buf = workspace[(key, shape)] = np.empty(shape)
        return buf

    def _scores(
        self,
        params: Mapping[str, np.ndarray],
        X: np.ndarray,
        pattern: Sequence[np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list]:
        """Forward through every layer.  X: (m, n) -> scores: (m, n_outputs), caches.
        With a ReLU ``pattern`` (:meth:`relu_pattern`) each hidden layer is its
        pre-activation times that fixed 0/1 mask instead of relu of it."""
        caches = []
        h = X
        m = X.shape[0]
        for layer, (Wn, bn) in enumerate(self._hidden):
            W = params[Wn]
            buf = self._buffer(("h", layer), (m, W.shape[1]))
            a, affine_cache = affine_forward(h, W, params[bn], out=buf)
            if pattern is not None:
                h, act_cache = np.multiply(a, pattern[layer], out=a), None
            else:
                h, act_cache = self._act_forward(a, out=a)
            caches.append((affine_cache, act_cache))
        Wn, bn = self._out
        scores, affine_cache = affine_forward(h, params[Wn], params[bn])
        caches.append((affine_cache, None))
        return scores, caches

    def _head_loss(
        self, scores: np.ndarray, y: np.ndarray
    ) -> tuple[float, np.ndarray, float | None]:
        """(data_loss, dscores: (m, k), accuracy or None) from the output scores (m, k)."""
        m = scores.shape[0]
        if self.head == "softmax":
            best = scores.argmax(axis=1)
            rows = self._arange(m)
            data_loss, dscores = softmax_cross_entropy_loss(scores, y, best, rows)
            return data_loss, dscores, int(np.count_nonzero(best == y)) / m
        z = scores.ravel()
        data_loss, dz = self._data_loss(z, y)  # type: ignore[misc]
        accuracy = int(np.count_nonzero((z > 0) == y)) / m if self.is_classifier else None
        return data_loss, dz[:, None], accuracy

    def _reg_loss(self, params: Mapping[str, np.ndarray], l2: float) -> float:
        if not l2:
            return 0.0
        return 0.5 * l2 * sum(float(np.vdot(params[Wn], params[Wn])) for Wn in self._weights)

    def loss_and_grads(
        self, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, l2: float
    ) -> tuple[Loss, dict[str, np.ndarray]]:
        """The loss at ``params`` and its gradient with respect to every parameter.

        X: (m, n) float64; y: what :meth:`check_targets` returned; l2 >= 0.
        Returns (Loss(loss, data_loss, reg_loss, accuracy), {name: gradient}) with the
        gradients in ``param_shapes`` order and shapes.  accuracy is the training
        accuracy of this forward pass (argmax for softmax, logit > 0 for sigmoid).
        """
        scores, caches = self._scores(params, X)
        data_loss, dout, accuracy = self._head_loss(scores, y)
        reg_loss = self._reg_loss(params, l2)

        names = [*self._hidden, self._out]
        grads: dict[str, np.ndarray] = {}
        for layer in range(len(caches) - 1, -1, -1):
            affine_cache, act_cache = caches[layer]
            if act_cache is not None:
                dout = self._act_backward(dout, act_cache, out=dout)
            if layer > 0:  # dx is the gradient of the previous hidden layer's output
                dx_out = self._buffer(("dh", layer - 1), caches[layer - 1][1].shape)
                dx, dW, db = affine_backward(dout, affine_cache, dx_out=dx_out)
                assert dx is not None
                dout = dx
            else:
                _, dW, db = affine_backward(dout, affine_cache, need_dx=False)
            Wn, bn = names[layer]
            if l2:
                dW += l2 * params[Wn]
            grads[bn] = db
            grads[Wn] = dW
        grads = {name: grads[name] for name in self._shapes}
        return Loss(data_loss + reg_loss, data_loss, reg_loss, accuracy), grads

    def loss(
        self,
        params: Mapping[str, np.ndarray],
        X: np.ndarray,
        y: np.ndarray,
        l2: float,
        *,
        pattern: Sequence[np.ndarray] | None = None,
    ) -> float:
        """The total loss at ``params`` (forward pass only); with a ReLU ``pattern``, the
        smooth piece of it that has those units on (see :meth:`relu_pattern`)."""
        scores, _ = self._scores(params, X, pattern)
        data_loss, _, _ = self._head_loss(scores, y)
        return data_loss + self._reg_loss(params, l2)

    def evaluate(
        self, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, l2: float
    ) -> Loss:
        """The forward pass's numbers alone: ``Loss(loss, data_loss, reg_loss, accuracy)``."""
        scores, _ = self._scores(params, X)
        data_loss, _, accuracy = self._head_loss(scores, y)
        reg_loss = self._reg_loss(params, l2)
        return Loss(data_loss + reg_loss, data_loss, reg_loss, accuracy)

    def relu_pattern(
        self, params: Mapping[str, np.ndarray], X: np.ndarray
    ) -> list[np.ndarray] | None:
        """Which ReLU units are on at ``params``: per hidden layer an (m, h) 0/1 array, 1
        where the pre-activation is > 0 (the convention of the backward pass); None unless
        the model has ReLU layers.

        A ReLU network's loss is smooth on each piece of fixed pattern, and its gradient at
        ``params`` is the gradient of that piece (``loss(…, pattern=…)``): the Taylor test
        walks along the piece so that the thousands of kinks near any point of a 2-layer net
        do not drown its h² remainder."""
        if self.activation != "relu":
            return None
        masks = []
        h = X
        for Wn, bn in self._hidden:
            a, _ = affine_forward(h, params[Wn], params[bn])
            mask = np.greater(a, 0.0).astype(np.float64)
            masks.append(mask)
            h = a * mask
        return masks

    def kinks(
        self,
        params: Mapping[str, np.ndarray],
        X: np.ndarray,
        y: np.ndarray,
        *,
        pattern: Sequence[np.ndarray] | None = None,
    ) -> np.ndarray | None:
        """A signature of the nondifferentiable pieces at ``params``, or None if smooth.

        Which side of zero every ReLU pre-activation is on (a byte each) and, for mae or
        huber, the sign of the residual ŷ − y (or of |ŷ − y| − delta), concatenated (with a
        ReLU ``pattern``, the loss's signs alone, through the fixed-pattern layers).  Two
        parameter vectors with different signatures lie on different sides of a kink, so a
        central difference between them is not a derivative.  The hidden layers are
        recomputed in scratch buffers: a gradient check calls this twice per coordinate.
        """
        kink = catalog.LOSSES[self.loss_name].kink
        relu = self.activation == "relu" and pattern is None
        if not relu and kink is None:
            return None
        parts = []
        h = X
        for layer, (Wn, bn) in enumerate(self._hidden):
            W = params[Wn]
            buf = self._buffer(("kinks", layer), (X.shape[0], W.shape[1]))
            a, _ = affine_forward(h, W, params[bn], out=buf)
            if relu:
                parts.append(np.greater(a, 0.0).view(np.int8).ravel())
            if pattern is not None:
                h = np.multiply(a, pattern[layer], out=a)
            else:
                h, _ = self._act_forward(a, out=a)
        if kink is not None:  # |r| = 0 (mae) or |r| = delta (huber)
            Wn, bn = self._out
            r = (h @ params[Wn] + params[bn]).ravel() - y
            side = r if kink == "zero" else np.abs(r) - self.loss_options[kink]
            parts.append(np.sign(side).astype(np.int8))
        return np.concatenate(parts)

    def predict(self, params: Mapping[str, np.ndarray], X: Any) -> np.ndarray:
        """Predictions for X: (m, n).

        Regression: values (m,); sigmoid head: probability of class 1 (m,); softmax
        head: class probabilities (m, K).
        """
        scores, _ = self._scores(params, self.check_X(X))
        if self.head == "softmax":
            return softmax(scores)
        z = scores.ravel()
        return sigmoid(z) if self.head == "sigmoid" else z

    # -- Newton --------------------------------------------------------------------------

    def check_hessian(self) -> None:
        """Raise SpecError explaining why :meth:`hessian` is refused for this model."""
        refusal = catalog.newton_refusal(self.kind, self.loss_name)
        if refusal is not None:
            raise SpecError(refusal)

    def hessian(
        self, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, l2: float
    ) -> np.ndarray:
        """The exact Hessian (P, P) of the loss over the parameters flattened in
        ``param_shapes`` order (W row-major, then b), L2 on W only.

        Defined for linear regression (mse, half_mse), logistic regression (log_loss)
        and softmax regression (cross_entropy); SpecError otherwise.
        """
        self.check_hessian()
        W, b = params["W"], params["b"]
        if self.head == "identity":
            H = _hessian.squared_error_hessian(X, 1.0 if self.loss_name == "mse" else 0.5)
        elif self.head == "sigmoid":
            H = _hessian.log_loss_hessian(X, sigmoid((X @ W + b).ravel()))
        else:
            H = _hessian.cross_entropy_hessian(X, softmax(X @ W + b))
        if l2:
            n_w = W.size
            H[np.arange(n_w), np.arange(n_w)] += l2
        return H


def make_model(
    kind: str,
    *,
    n_features: int,
    n_classes: int | None = None,
    loss: str | None = None,
    hidden_sizes: Sequence[int] = catalog.MODELS["mlp"].options["hidden_sizes"],
    activation: str = catalog.MODELS["mlp"].options["activation"],
    loss_options: Mapping[str, float] | None = None,
) -> Model:
    """Build a model, checking every option.

    kind: "linear_regression" | "logistic_regression" | "softmax_regression" | "mlp".
    loss: one of ``MODEL_LOSSES[kind]`` (None = the first).  n_classes: needed by the
    softmax head (softmax_regression, mlp with cross_entropy), at least 2; the sigmoid
    head accepts None or 2; regression ignores it.  hidden_sizes and activation are used
    by mlp only.  Raises SpecError naming the bad option.
    """
    choice(kind, "model kind", MODEL_KINDS)
    allowed = MODEL_LOSSES[kind]
    loss_name = allowed[0] if loss is None else loss
    if loss_name not in allowed:
        known = {name for names in MODEL_LOSSES.values() for name in names}
        prefix = "does not support loss" if loss_name in known else "has no loss named"
        raise SpecError(f"{kind} {prefix} {loss_name!r}; it supports {', '.join(allowed)}.")
    n_features = as_int(n_features, "n_features", minimum=1)
    head_classes = None
    head = catalog.head(kind, loss_name)
    if head == "softmax":
        if n_classes is None:
            raise SpecError(
                f"{kind} with cross_entropy needs n_classes (the number of classes, at least 2)."
            )
        head_classes = as_int(n_classes, "n_classes", minimum=2)
    elif head == "sigmoid" and n_classes is not None and as_int(n_classes, "n_classes") != 2:
        raise SpecError(
            f"{kind} with {loss_name} is a binary classifier, but n_classes is {n_classes}; "
            "use cross_entropy (softmax_regression) for more than 2 classes."
        )
    sizes: tuple[int, ...] = ()
    act: str | None = None
    if kind == "mlp":
        if isinstance(hidden_sizes, str | bytes) or not isinstance(hidden_sizes, Sequence):
            raise SpecError(
                f"hidden_sizes must be a list of positive integers, got {hidden_sizes!r}."
            )
        if len(hidden_sizes) == 0:
            raise SpecError("mlp needs at least one hidden layer in hidden_sizes, e.g. [100].")
        sizes = tuple(
            as_int(size, f"hidden_sizes[{i}]", minimum=1) for i, size in enumerate(hidden_sizes)
        )
        act = choice(activation, "activation", ACTIVATION_NAMES)
    options = dict(loss_options or {})
    for name, value in options.items():
        defaults = catalog.LOSSES[loss_name].options
        if name not in defaults:
            listed = ", ".join(defaults) or "none"
            raise SpecError(f"{loss_name} has no option {name!r}; its options: {listed}.")
        options[name] = as_float(value, name, positive=True)
    return Model(
        kind,
        loss_name,
        n_features=n_features,
        n_classes=head_classes,
        hidden_sizes=sizes,
        activation=act,
        loss_options=options,
    )
