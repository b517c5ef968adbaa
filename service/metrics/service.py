"""Reading a job's history: whole, by range, or downsampled; as rows, columns or CSV.

Long histories are streamed chunk by chunk, so serving a million points needs a few MB of
memory, not hundreds. Numbers are formatted by orjson in C (a float's shortest repr, NaN
as ``null``) and assembled into rows with one bytes-format per batch of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Literal

import numpy as np
import orjson
from sqlalchemy import Connection

from service.metrics import columnar, repository
from service.metrics.repository import Span
from store.chunks import COLUMNS, REFERENCE_LOSS, SERIES, WIDTH, Col, extremes, series

Format = Literal["points", "columns", "csv", "arrow", "parquet"]

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_ROW = b'{"iteration":%b,"loss":%b,"data_loss":%b,"reg_loss":%b,"grad_norm":%b,"accuracy":%b}'
COLUMNAR = {"arrow": columnar.arrow_stream, "parquet": columnar.parquet_file}
_ROW_REFERENCE = _ROW[:-1] + b',"reference_loss":%b}'
CSV_HEADER = (",".join(COLUMNS) + "\n").encode()
CSV_HEADER_REFERENCE = (",".join([*COLUMNS, REFERENCE_LOSS]) + "\n").encode()
BATCH_CHUNKS = 16  # chunks per streamed piece: ~16k points, 1-2 MB of text


def iter_blocks(conn: Connection, job_id: str, sp: Span) -> Iterator[np.ndarray]:
    """The points of a span as ``(n, 6)`` blocks, in iteration order; ``(n, 7)`` with the
    reference loss last for a student's job."""
    if not sp.chunks:
        return
    pending: list[np.ndarray] = []
    names = (*SERIES, REFERENCE_LOSS) if sp.reference else SERIES
    stream = repository.iter_chunks(
        conn, job_id, sp.chunks[0].first, sp.chunks[-1].first, names, BATCH_CHUNKS
    )
    for first, count, blobs in stream:
        block = np.empty((count, 1 + len(names)))
        block[:, Col.ITERATION] = np.arange(first, first + count)
        for j, blob in enumerate(blobs, start=1):
            block[:, j] = series(blob, count)
        lo, hi = max(sp.start - first, 0), min(sp.end - first + 1, count)
        pending.append(block[lo:hi])
        if len(pending) >= BATCH_CHUNKS:
            yield np.concatenate(pending)
            pending = []
    if pending:
        yield np.concatenate(pending)


def iter_column_batches(conn: Connection, job_id: str, sp: Span) -> Iterator[list[np.ndarray]]:
    """The points of a span as columns — ``iteration`` (int64), then each series (float64,
    contiguous; ``reference_loss`` last for a student's job) — ``BATCH_CHUNKS`` chunks at a
    time: what Arrow takes without the ``(n, 6)`` rows :func:`iter_blocks` would build."""
    if not sp.chunks:
        return
    names = (*SERIES, REFERENCE_LOSS) if sp.reference else SERIES
    stream = repository.iter_chunks(
        conn, job_id, sp.chunks[0].first, sp.chunks[-1].first, names, BATCH_CHUNKS
    )
    pending: list[list[np.ndarray]] = [[] for _ in range(1 + len(names))]
    for first, count, blobs in stream:
        lo, hi = max(sp.start - first, 0), min(sp.end - first + 1, count)
        pending[0].append(np.arange(first + lo, first + hi, dtype=np.int64))
        for j, blob in enumerate(blobs, start=1):
            pending[j].append(series(blob, count)[lo:hi])
        if len(pending[0]) >= BATCH_CHUNKS:
            yield [np.concatenate(pieces) for pieces in pending]
            pending = [[] for _ in pending]
    if pending[0]:
        yield [np.concatenate(pieces) for pieces in pending]


def block_as_columns(block: np.ndarray) -> list[np.ndarray]:
    """An in-memory ``(n, 6|7)`` block (a downsampled read) as :func:`iter_column_batches`
    gives a batch."""
    columns = [block[:, Col.ITERATION].astype(np.int64)]
    return columns + [np.ascontiguousarray(block[:, j]) for j in range(1, block.shape[1])]


def iter_column(conn: Connection, job_id: str, sp: Span, name: str) -> Iterator[np.ndarray]:
    """One column of a span, in pieces; ``iteration`` needs no read at all."""
    if not sp.chunks:
        return
    if name == "iteration":
        step = BATCH_CHUNKS * 1024
        for lo in range(sp.start, sp.end + 1, step):
            yield np.arange(lo, min(lo + step, sp.end + 1))
        return
    pending: list[np.ndarray] = []
    first_chunk, last_chunk = sp.chunks[0].first, sp.chunks[-1].first
    for first, count, (blob,) in repository.iter_chunks(
        conn, job_id, first_chunk, last_chunk, (name,), BATCH_CHUNKS
    ):
        lo, hi = max(sp.start - first, 0), min(sp.end - first + 1, count)
        pending.append(series(blob, count)[lo:hi])
        if len(pending) >= BATCH_CHUNKS:
            yield np.concatenate(pending)
            pending = []
    if pending:
        yield np.concatenate(pending)


def read_all(conn: Connection, job_id: str, sp: Span) -> np.ndarray:
    blocks = list(iter_blocks(conn, job_id, sp))
    return np.concatenate(blocks) if blocks else np.empty((0, WIDTH + sp.reference))


def downsample(conn: Connection, job_id: str, sp: Span, max_points: int) -> np.ndarray:
    """At most ``max_points`` points of the span, chosen deterministically.

    The first and last point of the range are always kept; the rest is split into equal
    buckets of iterations, and each bucket keeps its lowest- and highest-loss point
    (only the lowest when ``max_points`` is 3), so spikes and the global minimum survive.
    When the span covers more chunks than there are buckets, the candidates of a chunk lying
    wholly inside the range are its stored extremes, so only the two edge chunks are read
    point by point; otherwise every point of the range is read.
    """
    n = sp.total
    if n <= max_points:
        return read_all(conn, job_id, sp)
    per_bucket = 2 if max_points >= 4 else 1
    buckets = (max_points - 2) // per_bucket
    edge = {sp.chunks[0].first, sp.chunks[-1].first}
    inner = [c for c in sp.chunks if c.first not in edge]
    if len(inner) < buckets or sp.reference:  # the rollups hold no reference loss
        candidates = read_all(conn, job_id, sp)
        head, tail = candidates[0], candidates[-1]
    else:
        head_end = sp.chunks[0].first + sp.chunks[0].points - 1
        first_edge = read_all(conn, job_id, Span(sp.start, head_end, sp.chunks[:1]))
        last_edge = read_all(conn, job_id, Span(sp.chunks[-1].first, sp.end, sp.chunks[-1:]))
        rollups = repository.extremes(conn, job_id, inner[0].first, inner[-1].first)
        middle = extremes(b"".join(blob for _, _, blob in rollups))
        candidates = np.concatenate([first_edge, middle, last_edge])
        head, tail = first_edge[0], last_edge[-1]
    iters = candidates[:, Col.ITERATION]
    bucket = ((iters - sp.start) * buckets // n).astype(np.int64)
    loss = candidates[:, Col.LOSS]
    picks = [_first_per_group(bucket, loss)]
    if per_bucket == 2:
        picks.append(_first_per_group(bucket, -loss))
    chosen = candidates[np.concatenate(picks)]
    out = np.concatenate([head[None], chosen, tail[None]])
    _, keep = np.unique(out[:, Col.ITERATION], return_index=True)
    return out[keep]


def _first_per_group(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Index of the smallest ``key`` in each group (the earliest one on ties)."""
    order = np.lexsort((np.arange(len(key)), key, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    return order[starts]


# --- output formats ---------------------------------------------------------------------


def _tokens(values: np.ndarray) -> list[bytes]:
    """Each value's JSON text (NaN → ``null``), formatted in C by orjson."""
    return orjson.dumps(np.ascontiguousarray(values), option=_NUMPY)[1:-1].split(b",")


def _rows(block: np.ndarray) -> bytes:
    """JSON objects, one per point, comma-separated."""
    toks = [_tokens(block[:, Col.ITERATION].astype(np.int64))]
    toks += [_tokens(block[:, j]) for j in range(1, block.shape[1])]
    template = _ROW if block.shape[1] == WIDTH else _ROW_REFERENCE
    rows = (template + b",") * len(block) % tuple(chain.from_iterable(zip(*toks, strict=True)))
    return rows[:-1]


_OPEN, _CLOSE, _COMMA, _NEWLINE = b"[],\n"
_POWERS = np.array([10**k for k in range(1, 10)])  # iterations stay below 2**31 (MAX_COUNT)


def _csv_lines(block: np.ndarray) -> bytes:
    """CSV lines, by whole-array operations rather than per line.

    orjson writes the whole block at once, iteration included as a float:
    ``[[7.0,a,b,c,d,e],[8.0,…]]``. Every line is then that text with four bytes gone (the
    row's ``[``, the iteration's ``.0``, the ``,`` between rows) and its ``]`` turned into
    a newline (a ``,`` and a newline for a regression, which has no accuracy to write):
    one boolean mask over the text, built from where the ``]`` are and how many digits each
    iteration has. The same bytes as formatting each line (:mod:`service.metrics.csvref` keeps
    that writer; the tests and the bench compare the two), in about 0.8x its time.
    """
    n = len(block)
    missing = np.isnan(block[:, Col.ACCURACY])
    regression = bool(missing.all()) and block.shape[1] == WIDTH  # a student's: reference last
    table = np.ascontiguousarray(block[:, :5] if regression else block)
    text = np.frombuffer(bytearray(orjson.dumps(table, option=_NUMPY)), np.uint8)
    closes = np.flatnonzero(text == _CLOSE)[:n]
    opens = np.empty(n, np.int64)
    opens[0] = 1
    opens[1:] = closes[:-1] + 2
    digits = 1 + np.searchsorted(_POWERS, block[:, Col.ITERATION], side="right")
    point = opens + 1 + digits  # the ``.`` of ``7.0``
    keep = np.ones(len(text), bool)
    keep[[0, -1]] = False
    keep[opens] = False
    keep[point] = False
    keep[point + 1] = False
    if regression:
        text[closes] = _COMMA
        text[closes + 1] = _NEWLINE  # the ``,`` between rows, and the final ``]``
        keep[-1] = True
    else:
        text[closes] = _NEWLINE
        keep[closes[:-1] + 1] = False
    lines = text[keep].tobytes()
    return lines.replace(b"null", b"") if missing.any() and not regression else lines


def _head(job_id: str, total: int, downsampled: bool) -> bytes:
    return orjson.dumps({"job_id": job_id, "total": total, "downsampled": downsampled})[:-1]


def points_json(
    job_id: str, total: int, downsampled: bool, blocks: Iterator[np.ndarray]
) -> Iterator[bytes]:
    """``{"job_id", "total", "downsampled", "points": [{...}, ...]}``, piece by piece."""
    yield _head(job_id, total, downsampled) + b',"points":['
    first = True
    for block in blocks:
        if not len(block):
            continue
        body = _rows(block)
        yield body if first else b"," + body
        first = False
    yield b"]}"


def columns_json(
    job_id: str, total: int, downsampled: bool, columns: Iterator[tuple[str, Iterator[np.ndarray]]]
) -> Iterator[bytes]:
    """``{"job_id", "total", "downsampled", "columns": {"iteration": [...], ...}}``."""
    yield _head(job_id, total, downsampled) + b',"columns":{'
    for index, (name, pieces) in enumerate(columns):
        yield (b"," if index else b"") + b'"' + name.encode() + b'":['
        first = True
        for piece in pieces:
            if not len(piece):
                continue
            text = orjson.dumps(np.ascontiguousarray(piece), option=_NUMPY)[1:-1]
            yield text if first else b"," + text
            first = False
        yield b"]"
    yield b"}}"


def csv_rows(blocks: Iterator[np.ndarray], reference: bool = False) -> Iterator[bytes]:
    """A header, then one line per point; an accuracy that does not apply is empty."""
    yield CSV_HEADER_REFERENCE if reference else CSV_HEADER
    for block in blocks:
        if len(block):
            yield _csv_lines(block)


def render(fmt: str, conn: Connection, job_id: str, sp: Span) -> Iterator[bytes]:
    """Every point of a span in ``fmt`` (one of :data:`Format`), piece by piece."""
    if fmt in COLUMNAR:
        batches = iter_column_batches(conn, job_id, sp)
        yield from COLUMNAR[fmt](job_id, sp.total, False, batches, sp.reference)
    elif fmt == "csv":
        yield from csv_rows(iter_blocks(conn, job_id, sp), sp.reference)
    elif fmt == "columns":
        names = (*COLUMNS, REFERENCE_LOSS) if sp.reference else COLUMNS
        columns = ((name, iter_column(conn, job_id, sp, name)) for name in names)
        yield from columns_json(job_id, sp.total, False, columns)
    else:
        yield from points_json(job_id, sp.total, False, iter_blocks(conn, job_id, sp))


def render_block(fmt: str, job_id: str, total: int, block: np.ndarray) -> Iterator[bytes]:
    """A downsampled block in ``fmt``."""
    if fmt in COLUMNAR:
        batches = iter([block_as_columns(block)])
        yield from COLUMNAR[fmt](job_id, total, True, batches, block.shape[1] > WIDTH)
    elif fmt == "csv":
        yield from csv_rows(iter([block]), block.shape[1] > WIDTH)
    elif fmt == "columns":
        yield from columns_json(job_id, total, True, block_columns(block))
    else:
        yield from points_json(job_id, total, True, iter([block]))


def block_columns(block: np.ndarray) -> Iterator[tuple[str, Iterator[np.ndarray]]]:
    """An in-memory block (a downsampled read) as the columns :func:`columns_json` takes."""
    yield "iteration", iter([block[:, Col.ITERATION].astype(np.int64)])
    names = (*SERIES, REFERENCE_LOSS) if block.shape[1] > WIDTH else SERIES
    for j, name in enumerate(names, start=1):
        yield name, iter([block[:, j]])
