"""Real `gradlab serve` and `gradlab worker` processes for tests; they live in ``bench.procs``,
which the benchmarks share."""

from bench.procs import (
    ROOT,
    Server,
    free_port,
    gradlab_env,
    kill_group,
    start,
    start_worker,
    wait_for,
)

__all__ = [
    "ROOT",
    "Server",
    "free_port",
    "gradlab_env",
    "kill_group",
    "start",
    "start_worker",
    "wait_for",
]
