"""Make a long response's next pieces while the last ones are being sent.

Starlette pulls a sync body iterator one piece at a time (``next`` in its thread pool, then
the send): rendering and sending take turns. :func:`prefetched` renders in a thread of its
own, at most ``depth`` pieces ahead, so the two overlap on two cores; the memory it holds is
those pieces. When the response ends early (the client went away) the iterator is closed:
the thread stops at its next piece and closes the source, which releases its connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

_DONE = object()


def prefetched(pieces: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """``pieces``, made up to ``depth`` ahead in a thread; an exception it raises is raised
    here, where the piece would have been."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        """Wait for room for ``item``; False when the consumer has gone."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        outcome: object = _DONE
        try:
            for piece in pieces:
                if not hand_over(piece):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            outcome = exc
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
        hand_over(outcome)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
