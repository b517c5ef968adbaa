"""Student code, run in a sandbox: :class:`Sandbox` (the worker's side), the process it runs
in (:class:`Guest`, which a job process may keep started ahead as its :class:`Spare`) and the
guest program (:mod:`worker.sandbox.guest`, which imports only the standard library and NumPy)."""

from worker.sandbox.host import Guest, Sandbox, Spare, StudentError

__all__ = ["Guest", "Sandbox", "Spare", "StudentError"]
