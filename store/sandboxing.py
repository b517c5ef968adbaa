"""Which sandbox student code runs in, decided the same way by the API and the worker.

``GRADLAB_SANDBOX``: ``bwrap`` (bubblewrap: no network, no environment, a read-only view of
only the Python runtime and NumPy), ``subprocess`` (a plain process with the same resource
limits: for one local user's own code) or ``auto`` (bwrap when it works here, else a plain
subprocess). Fail closed: with ``GRADLAB_AUTH=required`` student code runs only under bwrap;
where there is none, :func:`sandbox_mode` says why and nothing runs.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from typing import NamedTuple

from store.settings import Settings


class Mode(NamedTuple):
    """``kind`` is "bwrap", "subprocess" or None (no sandbox: refuse), with the reason."""

    kind: str | None
    reason: str


@functools.cache
def bwrap_works(path: str = "bwrap") -> str | None:
    """None when ``bwrap --unshare-all`` runs here, else why not (probed once per process)."""
    exe = shutil.which(path)
    if exe is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        done = subprocess.run(
            [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not start: {exc}"
    if done.returncode != 0:
        return "bwrap cannot create namespaces here: " + done.stderr.decode(errors="replace")[:200]
    return None


def sandbox_mode(settings: Settings) -> Mode:
    """Where student code may run under these settings, on this machine."""
    if settings.sandbox == "subprocess":
        if settings.auth == "required":
            plain = "GRADLAB_SANDBOX=subprocess is not a sandbox: with GRADLAB_AUTH=required"
            return Mode(None, f"{plain} student code runs only under bubblewrap")
        return Mode("subprocess", "GRADLAB_SANDBOX=subprocess")
    why = bwrap_works()
    if why is None:
        return Mode("bwrap", "bubblewrap")
    if settings.sandbox == "bwrap":
        return Mode(None, f"GRADLAB_SANDBOX=bwrap, but {why}")
    if settings.auth == "required":
        return Mode(None, f"{why}, and with GRADLAB_AUTH=required student code runs only in it")
    return Mode("subprocess", f"{why}: student code runs in a plain subprocess (GRADLAB_AUTH=off)")
