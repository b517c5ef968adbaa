"""A job's points as Arrow: an IPC stream (``format=arrow``) or a Parquet file
(``format=parquet``), one record batch (one row group) per batch of stored chunks.

pyarrow is an optional extra (``gradlab[arrow]``), imported when a columnar answer is asked
for; without it the server answers 406 with the way to install it. The columns are the JSON
answer's: ``iteration`` (int64) and five float64 series, null where JSON has ``null`` (an
accuracy that does not apply, a NaN loss). ``job_id``, ``total`` and ``downsampled`` ride in
the schema's metadata.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from service.errors import NotAcceptable
from store.chunks import REFERENCE_LOSS, SERIES

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
MEDIA = {"arrow": ARROW, "parquet": PARQUET}


def pyarrow() -> Any:
    """The pyarrow module, or a 406 saying how to install it."""
    try:
        import pyarrow as pa
    except ImportError:
        raise NotAcceptable(
            "This server cannot write Arrow or Parquet: pyarrow is not installed "
            "(pip install 'gradlab[arrow]'). Ask for format=columns or format=csv instead."
        ) from None
    return pa


def schema(job_id: str, total: int, downsampled: bool, reference: bool = False) -> Any:
    """The columns: the iteration, the series, and a student's job's ``reference_loss``."""
    pa = pyarrow()
    fields = [pa.field("iteration", pa.int64(), nullable=False)]
    names = (*SERIES, REFERENCE_LOSS) if reference else SERIES
    fields += [pa.field(name, pa.float64()) for name in names]
    meta = {"job_id": job_id, "total": str(total), "downsampled": str(downsampled).lower()}
    return pa.schema(fields, metadata=meta)


def batch(columns: Sequence[np.ndarray], sch: Any) -> Any:
    """The iteration (int64) and the series (float64, contiguous) as a record batch, the
    series without a copy: NaN becomes null, as JSON writes it."""
    pa = pyarrow()
    arrays = [pa.array(columns[0])]
    for column in columns[1:]:
        missing = np.isnan(column)
        arrays.append(pa.array(column, mask=missing if missing.any() else None))
    return pa.RecordBatch.from_arrays(arrays, schema=sch)


class _Drain(io.RawIOBase):
    """A write-only sink whose bytes are taken away as they come, with the position a
    Parquet footer needs (the offsets it records are absolute)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self.pieces.append(piece)
        self.position += len(piece)
        return len(piece)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.pieces = b"".join(self.pieces), []
        return out


def arrow_stream(
    job_id: str,
    total: int,
    downsampled: bool,
    batches: Iterator[Sequence[np.ndarray]],
    reference: bool = False,
) -> Iterator[bytes]:
    """An Arrow IPC stream, a record batch per batch of columns, piece by piece."""
    pa = pyarrow()
    sch = schema(job_id, total, downsampled, reference)
    sink = _Drain()
    with pa.ipc.new_stream(sink, sch) as writer:
        for columns in batches:
            if len(columns[0]):
                writer.write_batch(batch(columns, sch))
                yield sink.take()
    yield sink.take()


def parquet_file(
    job_id: str,
    total: int,
    downsampled: bool,
    batches: Iterator[Sequence[np.ndarray]],
    reference: bool = False,
) -> Iterator[bytes]:
    """A Parquet file, a row group per batch, piece by piece (the footer comes last)."""
    pyarrow()
    import pyarrow.parquet as pq

    sch = schema(job_id, total, downsampled, reference)
    sink = _Drain()
    with pq.ParquetWriter(sink, sch, compression="zstd") as writer:
        for columns in batches:
            if len(columns[0]):
                writer.write_batch(batch(columns, sch))
                yield sink.take()
    yield sink.take()
