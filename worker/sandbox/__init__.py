"""Student code, run in a sandbox: :class:`Sandbox` (the worker's side) and the guest program
it starts (:mod:`worker.sandbox.guest`, which imports only the standard library and NumPy)."""

from worker.sandbox.host import Sandbox, StudentError

__all__ = ["Sandbox", "StudentError"]
