"""Queries on stored points (``metric_chunks``). Reads use Core on a plain connection: a
history read moves megabytes of packed floats and has no use for ORM objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, func, select

from service.jobs.repository import visible
from store.accounts import Caller
from store.chunks import REFERENCE_LOSS, SERIES
from store.tables import Job, MetricChunk

T = cast(Table, MetricChunk.__table__)


class Stored(NamedTuple):
    """One stored chunk: ``points`` consecutive points from iteration ``first``."""

    first: int
    points: int


@dataclass(frozen=True)
class Span:
    """The stored chunks that cover ``start .. end`` (inclusive)."""

    start: int
    end: int
    chunks: list[Stored]
    reference: bool = False  # a student's job: the chunks hold reference_loss too

    @property
    def total(self) -> int:
        return self.end - self.start + 1 if self.chunks else 0


def span(conn: Connection, job_id: str, start: int, end: int | None) -> Span:
    """The chunks overlapping ``[start, end]``, with the range clipped to what is stored.

    Later reads of the same span see exactly these chunks even while the job runs on:
    a chunk, once written, never changes.
    """
    floor = (
        select(func.coalesce(func.max(T.c.first_iteration), 0))
        .where(T.c.job_id == job_id, T.c.first_iteration <= start)
        .scalar_subquery()
    )
    query = (
        select(T.c.first_iteration, T.c.count, T.c.reference_loss.is_not(None))
        .where(T.c.job_id == job_id, T.c.first_iteration >= floor)
        .order_by(T.c.first_iteration)
    )
    if end is not None:
        query = query.where(T.c.first_iteration <= end)
    rows = conn.execute(query).fetchall()
    chunks = [Stored(first, count) for first, count, _ in rows if first + count - 1 >= start]
    reference = any(has for _, _, has in rows)
    if not chunks:
        return Span(start, start - 1, [])
    last = chunks[-1].first + chunks[-1].points - 1
    lo = max(start, chunks[0].first)
    hi = last if end is None else min(end, last)
    if hi < lo:
        return Span(start, start - 1, [])
    return Span(lo, hi, chunks, reference)


def iter_chunks(
    conn: Connection, job_id: str, first: int, last: int, columns: Sequence[str], batch: int = 64
) -> Iterator[tuple[int, int, tuple[bytes | None, ...]]]:
    """``(first_iteration, count, blobs)`` for chunks starting in ``[first, last]``, streamed."""
    # The Core path also serves PostgreSQL's async driver (the event streams read through it,
    # at most a few chunks at a time), which has no named cursors to borrow.
    if conn.dialect.name != "postgresql" or conn.dialect.is_async:
        cols = [T.c[name] for name in columns]
        query = (
            select(T.c.first_iteration, T.c.count, *cols)
            .where(T.c.job_id == job_id, T.c.first_iteration >= first, T.c.first_iteration <= last)
            .order_by(T.c.first_iteration)
        )
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(query)
        try:
            for row in result:
                yield row[0], row[1], tuple(row[2:])
        finally:
            result.close()
        return
    if not set(columns) <= {*SERIES, REFERENCE_LOSS}:
        raise ValueError(f"unknown series {columns}")
    # PostgreSQL: a server-side cursor (bounded memory) in psycopg's binary format, so each
    # bytea arrives as its bytes rather than as hex text twice the size to decode.
    conn.exec_driver_sql("SELECT 1")  # make sure the transaction a named cursor needs is open
    sql = (
        f"SELECT first_iteration, count, {', '.join(columns)} FROM metric_chunks "
        "WHERE job_id = %s AND first_iteration >= %s AND first_iteration <= %s "
        "ORDER BY first_iteration"
    )
    dbapi: Any = conn.connection.dbapi_connection
    cursor = dbapi.cursor(name=f"chunks_{uuid.uuid4().hex}", binary=True)
    cursor.itersize = batch
    try:
        cursor.execute(sql, (job_id, first, last))
        for row in cursor:
            yield row[0], row[1], tuple(row[2:])
    finally:
        cursor.close()


def extremes(conn: Connection, job_id: str, first: int, last: int) -> list[tuple[int, int, bytes]]:
    """``(first_iteration, count, extremes)`` of chunks starting in ``[first, last]``."""
    query = (
        select(T.c.first_iteration, T.c.count, T.c.extremes)
        .where(T.c.job_id == job_id, T.c.first_iteration >= first, T.c.first_iteration <= last)
        .order_by(T.c.first_iteration)
    )
    return [(a, b, c) for a, b, c in conn.execute(query).fetchall()]


def job_exists(conn: Connection, job_id: str, caller: Caller) -> bool:
    """Whether the job exists and ``caller`` may see it."""
    query = visible(select(Job.id).where(Job.id == job_id), caller)
    return conn.execute(query).first() is not None
