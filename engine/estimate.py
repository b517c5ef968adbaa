"""What a run will cost before it runs: its peak memory and its gradient checks' loss
evaluations, from the catalog's shapes alone.

The API refuses a spec over the server's limits before anything is stored, and names the
field to change. The figures follow how this engine allocates (every array float64):

* data: ``X`` (m, n) and ``y``, twice (the dataset and the trainer's checked copy); inline
  data also arrives as JSON numbers, which Python holds as objects of ~32 bytes each, once
  parsed and once validated, while the arrays are built;
* parameters: the parameters, their gradients, the momentum velocity, and the two copies a
  checkpoint makes (``state_dict`` and its packed bytes), plus a gradient check's working
  copy;
* activations, per batch of b rows: each hidden layer's output, its gradient and the ReLU
  kink probe's recomputation (≈ 4·b·h), and the output scores with the softmax's
  temporaries (≈ 4·b·k); a minibatch also copies its rows of ``X``;
* the Newton Hessian, P × P for P parameters, about four times over while it is built from
  its blocks, damped and solved, and the augmented inputs X̃ = [X, 1] it is built from
  (twice: X̃ and its weighted copy).

``bench/estimates.py`` measures the real peaks of a set of runs against these figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

from . import catalog, taylor

FLOAT = 8  # bytes of a float64
JSON_NUMBER = 32  # bytes Python holds per number of parsed JSON (a float object and its slot)
HESSIAN_COPIES = 4
RUNTIME = 256 * 2**20
"""What the interpreter, NumPy and gradlab's code take of a job process's address space
before any array is made (about 160 MB measured here), with margin: the part of a job's
memory limit that its arrays cannot have."""


@dataclass(frozen=True)
class Cost:
    """A run's estimated peak memory in bytes, by what holds it."""

    data: int
    parameters: int
    activations: int
    hessian: int

    @property
    def total(self) -> int:
        return self.data + self.parameters + self.activations + self.hessian

    def largest(self) -> str:
        """The part that holds the most."""
        return max(fields(self), key=lambda f: getattr(self, f.name)).name

    def describe(self) -> str:
        """``data 12 MB, activations 900 MB, …`` (parts above 1 MB)."""
        parts = [(f.name, getattr(self, f.name)) for f in fields(self)]
        shown = [f"{name} {mb(size)}" for name, size in parts if size >= 2**20]
        return ", ".join(shown) or "under 1 MB"


def mb(size: float) -> str:
    return f"{size / 2**20:,.0f} MB"


def training_cost(
    model_kind: str,
    loss: str,
    shape: catalog.DataShape,
    *,
    hidden_sizes: Sequence[int] = (),
    batch_rows: int | None = None,
    newton: bool = False,
    momentum: bool = False,
    inline: bool = False,
) -> Cost:
    """The peak memory of training ``model_kind`` with ``loss`` on data of ``shape``, with
    minibatches of ``batch_rows`` (None: the full batch)."""
    m, n = shape.rows, shape.features
    k = catalog.n_outputs(model_kind, loss, shape.n_classes)
    hidden = tuple(hidden_sizes) if model_kind == "mlp" else ()
    P = sum(_size(s) for s in catalog.param_shapes(model_kind, n, k, hidden).values())
    b = m if batch_rows is None else min(batch_rows, m)

    data = 2 * (m * n + m) * FLOAT
    if inline:
        data += 2 * (m * n + m) * JSON_NUMBER
    copies = 5 + (1 if momentum else 0)  # params, grads, checkpoint ×2, check copy; velocity
    activations = (4 * b * sum(hidden) + 4 * b * k) * FLOAT
    if batch_rows is not None:
        activations += b * n * FLOAT
    hessian = 0
    if newton:
        hessian = (HESSIAN_COPIES * P * P + 2 * m * (n + 1)) * FLOAT
        if catalog.head(model_kind, loss) == "softmax":
            hessian += m * P * FLOAT  # the per-sample block G = x̃ ⊗ p, (m, (n+1)K)
    return Cost(data, copies * P * FLOAT, activations, hessian)


def _size(shape: Sequence[int]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def check_iterations(iterations: int, every: int) -> int:
    """How many iterations a job checks: the first, the last, and every ``every``-th."""
    last = iterations - 1
    if last == 0:
        return 1
    if every <= 0:
        return 2
    between = (last - 1) // every  # multiples of every strictly between 0 and last
    return 2 + between


def check_evaluations(
    param_shapes: Mapping[str, Sequence[int]],
    *,
    iterations: int,
    every: int,
    max_coordinates: int | None,
    references: Sequence[str],
) -> int:
    """Loss evaluations the job's gradient checks make in all, at each checked iteration:
    for the numeric reference two (±epsilon) per checked coordinate of each tensor; for the
    Taylor test one at θ and one per step (``taylor.STEPS``). An autograd reference costs one
    backward pass, which is not counted."""
    per_check = 0
    if "numeric" in references:
        per_check += sum(
            2 * (_size(s) if max_coordinates is None else min(max_coordinates, _size(s)))
            for s in param_shapes.values()
        )
    if "taylor" in references:
        per_check += 1 + len(taylor.STEPS)
    return per_check * check_iterations(iterations, every)
