"""gradlab: experiment tracking for learning, and checking, how gradient descent works.

From a notebook: ``client = gradlab.connect()`` (or ``gradlab.Client(url, token)``), then
``client.submit("spiral_softmax").wait()``. The client is imported on first use: ``gradlab
serve`` and ``gradlab worker`` import this package and should not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gradlab.notebook import APIError, Client, Job, Jobs, Sweep, connect

__all__ = ["APIError", "Client", "Job", "Jobs", "Sweep", "connect"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gradlab import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'gradlab' has no attribute {name!r}")
