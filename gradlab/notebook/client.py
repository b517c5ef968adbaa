"""``gradlab.Client``: the jobs API as a notebook uses it."""

from __future__ import annotations

import copy
import inspect
import os
import textwrap
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gradlab.client import http
from gradlab.client.commands import DEFAULT_URL
from gradlab.notebook.job import Job, Jobs, Sweep


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in deeply: a dict merges into a dict, anything else
    replaces (``optimizer={"learning_rate": 0.5}`` keeps the optimizer's kind)."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Client:
    """A gradlab server, from a notebook or a script.

    ``url`` and ``token`` default to ``GRADLAB_URL`` and ``GRADLAB_TOKEN``, as the command
    line's. Every call that the server refuses raises
    :class:`~gradlab.client.http.APIError` with its sentence (``.message``), ``.status``,
    and for a 422 the field paths (``.fields``, ``.problems()``).
    """

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0
    ) -> None:
        url = url or os.environ.get("GRADLAB_URL") or DEFAULT_URL
        token = token if token is not None else os.environ.get("GRADLAB_TOKEN") or None
        self.api = http.Client(url, token=token, timeout=timeout)
        self._examples: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return self.api.url

    def __repr__(self) -> str:
        return f"gradlab.Client({self.url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.api.__exit__()

    def examples(self) -> dict[str, dict[str, Any]]:
        """The server's ready-to-run specs by name (``GET /v1/jobs/examples``): name → spec."""
        if self._examples is None:
            self._examples = {k: v["value"] for k, v in self.api.examples().items()}
        return copy.deepcopy(self._examples)

    def spec(self, spec_or_example: str | Mapping[str, Any], **overrides: Any) -> dict[str, Any]:
        """A spec: an example's by name, or the one given, with ``overrides`` merged in."""
        if isinstance(spec_or_example, str):
            examples = self.examples()
            if spec_or_example not in examples:
                names = ", ".join(sorted(examples))
                raise KeyError(f"no example named {spec_or_example!r}; the server has: {names}")
            base = examples[spec_or_example]
        else:
            base = dict(spec_or_example)
        return merge(base, overrides)

    def submit(self, spec_or_example: str | Mapping[str, Any], **overrides: Any) -> Job:
        """Queue a job: ``client.submit("spiral_softmax", iterations=50,
        optimizer={"learning_rate": 0.5})``."""
        return Job(self, self.api.submit(self.spec(spec_or_example, **overrides)))

    def check(
        self, function: Callable[..., Any], exercise: str | Mapping[str, Any], **overrides: Any
    ) -> Job:
        """Train ``exercise`` with your own ``loss_and_gradients(params, X, y, l2)``: its
        source (the module it is in, so its imports and helpers come along) runs in the
        server's sandbox, and the job's checks say, per tensor, whether it matches the
        solution and what the slip most likely is. ``job.wait()``, then ``job.checks()``."""
        module = inspect.getmodule(function)
        try:
            source = inspect.getsource(module) if module is not None else ""
            if module is None or module.__name__ == "__main__":  # a notebook: the function alone
                source = "import numpy as np\n\n" + textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError) as exc:
            raise ValueError(f"cannot read the source of {function!r}: {exc}") from None
        spec = self.spec(exercise, **overrides)
        spec["student"] = {"code": source, "function": function.__name__}
        return Job(self, self.api.submit(spec))

    def job(self, job_id: str) -> Job:
        return Job(self, self.api.job(job_id))

    def jobs(self, **filters: Any) -> Jobs:
        """One page of jobs, newest first; filters as ``GET /v1/jobs`` takes them (status,
        model, name, tag, sweep_id, owner, limit)."""
        return Jobs(Job(self, view) for view in self.api.jobs(**filters)["jobs"])

    def sweep(
        self,
        spec_or_example: str | Mapping[str, Any],
        grid: Mapping[str, Iterable[Any]],
        *,
        name: str | None = None,
        **overrides: Any,
    ) -> Sweep:
        """One job per combination of ``grid`` (dotted paths → values), e.g.
        ``client.sweep("spiral_softmax", {"optimizer.learning_rate": [0.1, 1.0]})``."""
        body: dict[str, Any] = {
            "base": self.spec(spec_or_example, **overrides),
            "grid": {path: list(values) for path, values in grid.items()},
        }
        if name is not None:
            body["name"] = name
        return Sweep(self, self.api.sweep(body))

    def compare(
        self, jobs: Iterable[Job | str], metric: str = "loss", labels: Iterable[str] | None = None
    ) -> Any:
        """One figure with each job's ``metric`` against the iteration (a matplotlib Figure)."""
        from gradlab.notebook import show

        chosen = [j if isinstance(j, Job) else self.job(j) for j in jobs]
        return show.compare(chosen, metric, list(labels) if labels is not None else None)

    def start_run(self, **options: Any) -> Any:
        """Log a training loop of your own: ``run = client.start_run(name=…, recipe=spec)``,
        then ``run.log(i, loss=…)`` in the loop (batched, sent in the background) and
        ``run.finish()`` — or ``with client.start_run(...) as run:``. A ``recipe`` links the
        run to its shared reference run (see :func:`gradlab.client.runs.start_run`)."""
        from gradlab.client.runs import start_run

        return start_run(self.api, **options)


def connect(url: str | None = None, token: str | None = None, **kwargs: Any) -> Client:
    """A :class:`Client` (``url`` and ``token`` default to ``GRADLAB_URL``/``GRADLAB_TOKEN``)."""
    return Client(url, token, **kwargs)
