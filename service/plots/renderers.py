"""Where plots are drawn: a few renderer processes behind a bounded queue.

Drawing is CPU work under a process-wide lock (matplotlib's shared state), so in the API
process it would hold a threadpool thread per waiting request and the GIL while it draws;
60 renders at once made a job listing wait for seconds. Here ``GRADLAB_PLOT_RENDERERS``
processes draw, each one image at a time, and at most ``GRADLAB_PLOT_QUEUE`` requests wait
for them; one more is refused at once with 503 ``plots_busy`` and ``Retry-After``. A request
waits on the event loop, holding no thread.

The processes fork from a forkserver that has imported matplotlib once (never from the API
process, whose threads may hold locks), and start with the first plot. They run at a lower
CPU priority (``nice`` +10): on a small machine a burst of renders would otherwise take the
cores from the API process, and every other request would wait behind the drawings.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from service.errors import Busy
from store.settings import Settings

RETRY_AFTER = 2  # seconds: a few renders' time
NICENESS = 10  # how much lower than the API's the renderers' CPU priority is
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(
    ["service.plots.render", "service.plots.fit", "service.plots.trajectory"]
)


def _lower_priority() -> None:
    """The renderer processes' initializer: yield the CPU to the API process."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)


class Renderers:
    """The process's plot renderers and the count of requests using or awaiting them."""

    def __init__(self, settings: Settings) -> None:
        self.size, self.queue = settings.plot_renderers, settings.plot_queue
        self.admitted = 0
        self._pool: ProcessPoolExecutor | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A place among the renders running or waiting, or Busy when there is none."""
        if self.admitted >= self.size + self.queue:
            raise Busy(
                f"{self.size} plot renderers are busy and {self.queue} plots wait for them "
                "(GRADLAB_PLOT_RENDERERS, GRADLAB_PLOT_QUEUE); try again shortly.",
                RETRY_AFTER,
                kind="plots_busy",
            )
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def render(self, draw: Callable[..., bytes], *args: Any) -> bytes:
        """``draw(*args)`` in a renderer process: the image's bytes."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.size, mp_context=_CONTEXT, initializer=_lower_priority
            )
        return await asyncio.wrap_future(self._pool.submit(draw, *args))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
