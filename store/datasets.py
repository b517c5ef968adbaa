"""Datasets stored once by content: the arrays of inline data, keyed by their SHA-256.

A job's stored spec never holds arrays: its ``data`` is a reference
(:func:`reference`: kind, ``sha256``, rows, features, classes) to a ``datasets`` row, so
every job and sweep that posts the same arrays stores them once, and a job's JSON, the job
list and the dashboard stay small whatever the data. The worker loads the arrays by hash
when it claims the job (:func:`load`), the plots when they draw the fit.

The hash is over a canonical form — a version tag, the shape, then X and y as little-endian
float64 — so the same numbers give the same row however they were written in JSON.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine import catalog
from store.tables import Dataset

INLINE = "inline"
UPLOADED = catalog.UPLOADED  # a job's data named by an uploaded dataset's id
_TAG = b"gradlab-dataset-v1"
_F8 = np.dtype("<f8")
datasets = cast(Table, Dataset.__table__)


def canonical(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X (m, n) and y (m,) as C-contiguous little-endian float64: the form hashed and stored."""
    return np.ascontiguousarray(X, dtype=_F8), np.ascontiguousarray(y, dtype=_F8)


def content_hash(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 hex of the arrays' canonical form (tag, shape, X bytes, y bytes)."""
    X, y = canonical(X, y)
    digest = hashlib.sha256(_TAG)
    digest.update(struct.pack("<qq", *X.shape))
    digest.update(X.data)  # the buffer itself: no copy of the arrays
    digest.update(y.data)
    return digest.hexdigest()


def reference(X: np.ndarray, y: np.ndarray, sha256: str | None = None) -> dict[str, Any]:
    """What a stored spec keeps of inline data: its hash and shape, never the arrays."""
    return {
        "kind": INLINE,
        "sha256": sha256 or content_hash(X, y),
        "rows": int(X.shape[0]),
        "features": int(X.shape[1]),
        "classes": catalog.inferred_classes(y),
    }


def uploaded_reference(sha256: str, rows: int, features: int, classes: int | None) -> dict:
    """What a stored spec keeps of ``{"kind": "dataset", "id": …}``: the same reference as
    inline data's, under the uploaded kind, with the id the user wrote."""
    return {
        "kind": UPLOADED,
        "id": sha256,
        "sha256": sha256,
        "rows": rows,
        "features": features,
        "classes": classes,
    }


def is_reference(data: dict[str, Any]) -> bool:
    """Whether a stored spec's ``data`` refers to stored arrays (inline or uploaded) rather
    than a generator's options."""
    return data.get("kind") in (INLINE, UPLOADED) and "sha256" in data


def pack(X: np.ndarray, y: np.ndarray) -> bytes:
    X, y = canonical(X, y)
    return X.tobytes() + y.tobytes()


def unpack(blob: bytes, rows: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """X (rows, features) and y (rows,), read-only views of ``blob``."""
    X = np.frombuffer(blob, _F8, rows * features).reshape(rows, features)
    y = np.frombuffer(blob, _F8, rows, offset=rows * features * 8)
    return X, y


def _insert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (id) DO NOTHING``: the same arrays posted twice, or by two
    requests at once, leave one row (their content, hence the row, is the same)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(datasets).on_conflict_do_nothing(index_elements=["id"])


def put(
    conn: Connection | Session,
    X: np.ndarray,
    y: np.ndarray,
    ref: dict[str, Any] | None = None,
    *,
    kind: str = INLINE,
    owner: str | None = None,
) -> dict[str, Any]:
    """Store arrays (inline, or ``kind`` "upload") unless a row with their hash exists; their
    :func:`reference`. ``owner``: who stored them first (who may see them is
    ``dataset_uploads``')."""
    ref = ref or reference(X, y)
    exists = select(datasets.c.id).where(datasets.c.id == ref["sha256"])
    if conn.execute(exists).first() is None:  # skip packing (a copy) when it is there
        blob = pack(X, y)
        row = {
            "id": ref["sha256"],
            "kind": kind,
            "rows": ref["rows"],
            "features": ref["features"],
            "classes": ref["classes"],
            "size_bytes": len(blob),
            "created_at": datetime.now(UTC),
            "arrays": blob,
            **({"owner": owner} if owner else {}),
        }
        bind = conn.get_bind() if isinstance(conn, Session) else conn
        conn.execute(_insert(bind.dialect.name), row)
    return ref


_ARRAYS = select(datasets.c.rows, datasets.c.features, datasets.c.arrays)
_BLOB = select(datasets.c.arrays)


def get(conn: Connection | Session, sha256: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The arrays stored under ``sha256``, or None."""
    row = conn.execute(_ARRAYS.where(datasets.c.id == sha256)).first()
    return None if row is None else unpack(row.arrays, row.rows, row.features)


def blob(conn: Connection | Session, sha256: str) -> bytes | None:
    """The packed arrays stored under ``sha256`` (what a claim carries to the job's process)."""
    return conn.execute(_BLOB.where(datasets.c.id == sha256)).scalar_one_or_none()


def resolve(spec: dict[str, Any], arrays: bytes | None) -> dict[str, Any]:
    """A stored spec with its data's arrays (``arrays``, packed) in place of the reference:
    what :class:`store.spec.JobSpec` validates, without a copy of the arrays."""
    data = spec["data"]
    if not is_reference(data):
        return spec
    if arrays is None:
        raise LookupError(f"the dataset {data['sha256']} is not stored")
    X, y = unpack(arrays, data["rows"], data["features"])
    return {**spec, "data": {"kind": INLINE, "X": X, "y": y}}


def load(conn: Connection | Session, spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`resolve` with the arrays read from the database."""
    data = spec["data"]
    return resolve(spec, blob(conn, data["sha256"]) if is_reference(data) else None)
