"""The engine's exceptions: one base class, one subclass per kind of mistake.

Every message is a full sentence that names the offending thing, because the service
shows it to a student verbatim.
"""

from __future__ import annotations


class EngineError(ValueError):
    """Base class: the engine cannot do what was asked with these inputs."""


class SpecError(EngineError):
    """An unknown name, a bad option value, or a combination the engine refuses."""


class ShapeError(EngineError):
    """X, y or a parameter tensor has the wrong shape (or is ragged or empty)."""


class LabelError(EngineError):
    """The targets do not fit the model (e.g. a label 2 for logistic regression)."""


class DivergedError(EngineError):
    """The loss or the gradient became non-finite (inf or nan) during training.

    Attributes:
        iteration: the iteration whose loss or gradient was not finite.
        last_finite_loss: the loss of the last iteration recorded before it, or None
            when no iteration was recorded in this run.
    """

    def __init__(
        self,
        iteration: int,
        last_finite_loss: float | None,
        what: str = "loss",
    ) -> None:
        self.iteration = int(iteration)
        self.what = what
        self.last_finite_loss = None if last_finite_loss is None else float(last_finite_loss)
        if self.last_finite_loss is None:
            before = "No finite loss had been recorded before it."
        else:
            before = (
                f"The last finite loss was {self.last_finite_loss:.6g} "
                f"(iteration {self.iteration - 1})."
            )
        super().__init__(
            f"Training diverged at iteration {self.iteration}: the {what} is no longer "
            f"finite (inf or nan). {before} Try a smaller learning_rate."
        )

    def __reduce__(self) -> tuple[type[DivergedError], tuple[int, float | None, str]]:
        # Keep the exception picklable (it may cross a process boundary in the worker).
        return (type(self), (self.iteration, self.last_finite_loss, self.what))
