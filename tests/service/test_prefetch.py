"""The prefetching body iterator long responses use: same pieces in order, the source's
error where its piece would be, and an early close that stops the thread and closes the
source (a client that went away must not leave a rendering thread or a connection)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from service.web.prefetch import prefetched


def test_the_pieces_come_in_order_and_all():
    pieces = [bytes([i]) * i for i in range(50)]
    assert list(prefetched(iter(pieces), depth=3)) == pieces


def test_an_error_in_the_source_is_raised_where_its_piece_would_be():
    def source() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise RuntimeError("the database went away")

    got = []
    with pytest.raises(RuntimeError, match="went away"):
        for piece in prefetched(source()):
            got.append(piece)
    assert got == [b"a", b"b"]


def test_closing_early_stops_the_thread_and_closes_the_source():
    closed = threading.Event()
    made = []

    def source() -> Iterator[bytes]:
        try:
            for i in range(10_000):
                made.append(i)
                yield b"x"
        finally:
            closed.set()

    before = threading.active_count()
    stream = prefetched(source(), depth=2)
    assert next(stream) == b"x"
    stream.close()  # what Starlette does when the client disconnects
    assert closed.is_set()
    assert len(made) <= 5  # it ran at most depth (+ the one in hand) ahead, then stopped
    assert threading.active_count() == before
