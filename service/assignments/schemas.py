"""The bodies of the assignments API (the assignment itself is ``store.assignments``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from service.gradchecks.schemas import AnyFloat, GradArray
from store.spec import Text


class SubmissionBody(BaseModel):
    """A student's answer: ``gradients`` (and optionally ``loss_value``) at their instance's
    initial parameters for a gradients assignment, or ``code`` for a code one."""

    model_config = ConfigDict(extra="forbid")
    gradients: dict[str, GradArray] | None = Field(
        None, description="Your gradient of each tensor at the instance's `params`."
    )
    loss_value: AnyFloat | None = Field(None, description="Your loss at `params`.")
    code: Text | None = Field(
        None, max_length=200_000, description="Python defining loss_and_gradients."
    )
