"""The datasets table: arrays stored once by content hash, read back exactly, and a
concurrent identical insert that leaves one row (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import func, select

from store import datasets
from store.db import Database
from store.tables import Dataset
from tests.conftest import make_settings


def arrays(seed: int = 0, rows: int = 50, features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((rows, features)), rng.integers(0, 3, rows).astype(np.float64)


def rows_of(db: Database) -> int:
    with db.read_session() as session:
        return session.scalar(select(func.count()).select_from(Dataset))


def test_the_hash_is_of_the_numbers_and_their_shape_not_of_their_layout():
    X, y = arrays()
    h = datasets.content_hash(X, y)
    assert len(h) == 64
    assert datasets.content_hash(np.asfortranarray(X), y.astype(np.float32).astype(float)) == h
    assert datasets.content_hash(X.reshape(25, 6), np.r_[y[:25]]) != h  # same bytes, new shape
    X2 = X.copy()
    X2[7, 1] = np.nextafter(X2[7, 1], 1.0)  # one ulp
    assert datasets.content_hash(X2, y) != h
    ref = datasets.reference(X, y)
    assert ref == {"kind": "inline", "sha256": h, "rows": 50, "features": 3, "classes": 3}
    assert datasets.reference(X, y + 0.5)["classes"] is None  # real-valued targets


def test_put_twice_stores_one_row_and_get_returns_the_arrays_exactly(db_url):
    db = Database(db_url, make_settings(db_url))
    X, y = arrays()
    try:
        with db.write_session() as session:
            first = datasets.put(session, X, y)
        with db.write_session() as session:
            assert datasets.put(session, X.copy(), y.copy()) == first
        assert rows_of(db) == 1
        with db.read_session() as session:
            got = datasets.get(session, first["sha256"])
            row = session.get(Dataset, first["sha256"])
            assert (row.kind, row.rows, row.features, row.classes) == ("inline", 50, 3, 3)
            assert row.size_bytes == 8 * (50 * 3 + 50) and row.owner == "local"
            assert datasets.get(session, "0" * 64) is None
        assert got is not None
        np.testing.assert_array_equal(got[0], X)
        np.testing.assert_array_equal(got[1], y)
    finally:
        db.dispose()


def test_concurrent_identical_inserts_leave_one_row(db_url):
    """Eight writers race to store the same arrays: none fails, one row remains."""
    db = Database(db_url, make_settings(db_url))
    X, y = arrays(seed=1, rows=2000, features=10)
    ref = datasets.reference(X, y)
    barrier, errors = threading.Barrier(8), []

    def store() -> None:
        try:
            barrier.wait()
            with db.write_session() as session:
                # the existence check sees nothing in every racer: the insert must tolerate it
                datasets.put(session, X, y, ref)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=store) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert rows_of(db) == 1
    finally:
        db.dispose()


@pytest.mark.parametrize("flip", [False, True])
def test_resolve_gives_a_spec_the_engine_can_build_from(flip):
    X, y = arrays(rows=4, features=2)
    spec = {"data": datasets.reference(X, y), "other": 1}
    resolved = datasets.resolve(spec, datasets.pack(X, y))
    np.testing.assert_array_equal(resolved["data"]["X"], X)
    np.testing.assert_array_equal(resolved["data"]["y"], y)
    assert resolved["other"] == 1 and spec["data"]["kind"] == "inline"
    generated = {"data": {"kind": "spiral", "seed": 0}}
    assert datasets.resolve(generated, None) is generated
    if flip:
        with pytest.raises(LookupError):
            datasets.resolve(spec, None)
