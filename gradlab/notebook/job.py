"""A job, a page of jobs and a sweep, as a notebook holds them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from store.status import TERMINAL

if TYPE_CHECKING:
    import numpy as np

    from gradlab.notebook.client import Client

POLL = (0.05, 0.5)  # seconds between looks at a running job: first, and at most


def _columns_from_arrow(body: bytes) -> dict[str, np.ndarray]:
    import pyarrow as pa

    table = pa.ipc.open_stream(body).read_all()
    return {name: table.column(name).to_numpy() for name in table.column_names}


def _columns_from_json(columns: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    import numpy as np

    out = {"iteration": np.asarray(columns.pop("iteration"), dtype=np.int64)}
    out.update({name: np.asarray(values, dtype=float) for name, values in columns.items()})
    return out


def has_pyarrow() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


class Job:
    """One job on the server. ``status`` looks again until the job has finished;
    ``view`` is the last answer of ``GET /v1/jobs/{id}``."""

    def __init__(self, client: Client, view: dict[str, Any]) -> None:
        self.client = client
        self.view = view

    @property
    def id(self) -> str:
        return str(self.view["id"])

    @property
    def name(self) -> str | None:
        return self.view.get("name")

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.view["spec"])

    @property
    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled), as last seen."""
        return self.view["status"] in TERMINAL

    @property
    def status(self) -> str:
        if not self.done:
            self.refresh()
        return str(self.view["status"])

    @property
    def error(self) -> dict[str, Any] | None:
        return self.view.get("error")

    def __repr__(self) -> str:
        return f"<gradlab.Job {self.id} {self.name or ''} {self.view['status']}>".replace("  ", " ")

    def refresh(self) -> Job:
        self.view = self.client.api.job(self.id)
        return self

    def wait(self, progress: bool = True, timeout: float | None = None) -> Job:
        """Until the job has finished, with a progress bar of its iterations (tqdm's, in a
        notebook's widget or a terminal's line). Returns the job; look at ``status``."""
        wait_all([self], progress=progress, timeout=timeout)
        return self

    def cancel(self) -> Job:
        self.view = self.client.api.cancel(self.id)
        return self

    def metrics(
        self, start: int | None = None, end: int | None = None, max_points: int | None = None
    ) -> dict[str, np.ndarray]:
        """The recorded points as NumPy columns: ``iteration`` (int64), ``loss``,
        ``data_loss``, ``reg_loss``, ``grad_norm``, ``accuracy`` (float64, NaN where it
        does not apply). Read as Arrow when pyarrow is installed, else as JSON columns."""
        query = {"start": start, "end": end, "max_points": max_points}
        if has_pyarrow():
            return _columns_from_arrow(self.client.api.metrics_binary(self.id, "arrow", **query))
        body = self.client.api.metrics(self.id, format="columns", **query)
        return _columns_from_json(body["columns"])

    def to_pandas(self, **query: Any) -> Any:
        """The points as a pandas DataFrame indexed by iteration (``gradlab[notebook]``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Job.to_pandas needs pandas: pip install 'gradlab[notebook]'."
            ) from None
        columns = self.metrics(**query)
        return pd.DataFrame(columns).set_index("iteration")

    def checks(self) -> list[dict[str, Any]]:
        """The gradient checks: analytic gradients against references, one dict each."""
        return self.client.api.checks(self.id)

    def parameters(self) -> dict[str, np.ndarray]:
        """The final parameters (the latest recorded while running), by the model's names
        (``W``, ``b``; ``W1``, ``b1``, ``W2``, ``b2``), as float64 arrays of their shapes."""
        import numpy as np

        body = self.client.api.parameters(self.id)
        return {
            name: np.asarray(values, dtype=float).reshape(body["shapes"][name])
            for name, values in body["parameters"].items()
        }

    def plot(self, metric: str = "loss") -> Any:
        """A matplotlib Figure of ``metric`` (and accuracy, for a classifier) by iteration."""
        from gradlab.notebook import show

        return show.job_figure(self, metric)

    def _repr_html_(self) -> str:
        from gradlab.notebook import show

        return show.job_html(self.view)


def wait_all(jobs: list[Job], progress: bool = True, timeout: float | None = None) -> None:
    """Until every job has finished; one bar over all their iterations."""
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = sum(int(j.view["spec"].get("iterations", 0)) for j in jobs)
        what = jobs[0].name or jobs[0].id if len(jobs) == 1 else f"{len(jobs)} jobs"
        bar = tqdm(total=total, desc=what, unit="it", leave=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL[0]
    try:
        while True:
            for job in jobs:
                if not job.done:
                    job.refresh()
            if bar is not None:
                bar.n = sum(int(j.view["iterations_done"]) for j in jobs)
                bar.set_postfix_str(_states(jobs), refresh=False)
                bar.refresh()
            if all(j.done for j in jobs):
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{_states(jobs)} after {timeout} s")
            time.sleep(delay)
            delay = min(delay * 1.5, POLL[1])
    finally:
        if bar is not None:
            bar.close()


def _states(jobs: list[Job]) -> str:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.view["status"]] = counts.get(job.view["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


class Jobs(list[Job]):
    """A list of jobs that shows as a table in a notebook."""

    def __init__(self, jobs: Iterable[Job] = ()) -> None:
        super().__init__(jobs)

    def wait(self, progress: bool = True, timeout: float | None = None) -> Jobs:
        if self:
            wait_all(list(self), progress=progress, timeout=timeout)
        return self

    def _repr_html_(self) -> str:
        from gradlab.notebook import show

        return show.jobs_html([j.view for j in self])


class Sweep:
    """A sweep: its grid, and one job per combination (``jobs``, in the server's order)."""

    def __init__(self, client: Client, view: dict[str, Any]) -> None:
        self.client = client
        self.view = view
        self.jobs = Jobs(client.job(j["id"]) for j in view["jobs"])

    @property
    def id(self) -> str:
        return str(self.view["id"])

    def __repr__(self) -> str:
        return f"<gradlab.Sweep {self.id} {len(self.jobs)} jobs>"

    def labels(self) -> list[str]:
        """Each job's overrides, as ``learning_rate=0.1``."""
        return [
            ", ".join(
                f"{path.rsplit('.', 1)[-1]}={value}" for path, value in j["overrides"].items()
            )
            for j in self.view["jobs"]
        ]

    def refresh(self) -> Sweep:
        self.view = self.client.api.get_sweep(self.id)
        return self

    def wait(self, progress: bool = True, timeout: float | None = None) -> Sweep:
        self.jobs.wait(progress=progress, timeout=timeout)
        return self.refresh()

    def compare(self, metric: str = "loss") -> Any:
        return self.client.compare(self.jobs, metric, labels=self.labels())

    def _repr_html_(self) -> str:
        from gradlab.notebook import show

        return show.sweep_html(self.view, self.labels())
