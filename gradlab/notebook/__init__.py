"""gradlab from a notebook: ``client = gradlab.connect()``,
``job = client.submit("spiral_softmax")``, ``job.wait()``, ``job.metrics()``, ``job.plot()``.

- :mod:`~gradlab.notebook.client`: :class:`Client` (submit, jobs, sweep, compare) and
  :func:`connect`, on the command line's HTTP layer (:class:`gradlab.client.http.Client`,
  one method per endpoint), so both speak to the server one way and fail the same way:
  :class:`~gradlab.client.http.APIError` carries the server's sentence and field paths.
- :mod:`~gradlab.notebook.job`: :class:`Job` (wait, metrics as NumPy columns, parameters,
  checks, plot, an HTML summary), :class:`Jobs` and :class:`Sweep`.
- :mod:`~gradlab.notebook.show`: the figures (matplotlib, no pyplot) and the HTML tables.

Two classes are called ``Client``: this one is ``gradlab.Client``, what a notebook's user
types; the HTTP layer under it keeps its name and is always spelled ``http.Client`` here.
"""

from gradlab.client.http import APIError, ClientError, ServerUnreachable
from gradlab.notebook.client import Client, connect
from gradlab.notebook.job import Job, Jobs, Sweep

__all__ = [
    "APIError",
    "Client",
    "ClientError",
    "Job",
    "Jobs",
    "ServerUnreachable",
    "Sweep",
    "connect",
]
