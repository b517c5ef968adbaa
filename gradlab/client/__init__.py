"""The ``gradlab`` client commands: submit (and follow), jobs, show, metrics, cancel, sweep.

They talk to a gradlab server over HTTP, given by ``--url`` or ``GRADLAB_URL``:

- :mod:`~gradlab.client.http`: :class:`Client`, one method per endpoint; transport failures
  become :class:`ServerUnreachable`, error answers :class:`APIError`; live events over SSE.
- :mod:`~gradlab.client.spec`: reading a spec file (JSON or YAML) or JSON on stdin.
- :mod:`~gradlab.client.render`: rich output: tables, a job's summary, its gradient checks,
  the progress bar that follows it.
- :mod:`~gradlab.client.commands`: the Typer commands, humans' output on stderr so that
  stdout carries what a script captures (a job id, a CSV).

httpx, rich and yaml are imported inside functions: ``gradlab serve`` and ``gradlab worker``
import this package to register the commands and should not pay for them.

Exit codes: 0 done (a followed job succeeded); 1 the job failed or was cancelled, or the
server answered with an error; 2 the input is not valid (a bad spec file, a 422); 3 no server
answered; 130 interrupted.
"""

from gradlab.client.commands import COMMANDS, DEFAULT_URL
from gradlab.client.http import APIError, Client, ClientError, ServerUnreachable
from gradlab.client.spec import read_spec

__all__ = [
    "COMMANDS",
    "DEFAULT_URL",
    "APIError",
    "Client",
    "ClientError",
    "ServerUnreachable",
    "read_spec",
]
