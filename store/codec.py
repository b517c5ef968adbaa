"""Binary encodings shared by the worker (which writes) and the API (which reads).

* A float64 series is packed little-endian: ``np.asarray(x, '<f8').tobytes()``.
* A bundle of named arrays is a 4-byte
  header length, a JSON header (names, shapes, offsets and free-form metadata) and the
  arrays' little-endian float64 bytes, back to back. No pickle: the database may be shared.
* A checkpoint — the trainer's ``state_dict()``: the next iteration, the parameters and the
  optimizer's velocity — is such a bundle, its arrays named ``params/W``, ``velocity/W``…
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

F8 = np.dtype("<f8")


def pack(values: Any) -> bytes:
    """A float64 series as bytes."""
    return np.ascontiguousarray(values, dtype=F8).tobytes()


def unpack(blob: bytes) -> np.ndarray:
    """The float64 series packed by :func:`pack` (read-only view of the bytes)."""
    return np.frombuffer(blob, dtype=F8)


def pack_arrays(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> bytes:
    """Named float64 arrays and JSON-able metadata as one blob."""
    entries, offset, parts = [], 0, []
    for name, array in arrays.items():
        data = np.ascontiguousarray(array, dtype=F8)
        entries.append({"name": name, "shape": list(data.shape), "offset": offset})
        parts.append(data.tobytes())
        offset += data.nbytes
    header = orjson.dumps({"meta": dict(meta or {}), "arrays": entries})
    return struct.pack("<I", len(header)) + header + b"".join(parts)


def unpack_arrays(blob: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` from a blob made by :func:`pack_arrays`; arrays are writable copies."""
    (length,) = struct.unpack_from("<I", blob)
    header = orjson.loads(blob[4 : 4 + length])
    body = memoryview(blob)[4 + length :]
    arrays = {}
    for entry in header["arrays"]:
        shape = tuple(entry["shape"])
        count = int(np.prod(shape)) if shape else 1
        start = entry["offset"]
        flat = np.frombuffer(body[start : start + count * 8], dtype=F8)
        arrays[entry["name"]] = flat.reshape(shape).astype(np.float64)
    return header["meta"], arrays


def pack_state(state: Mapping[str, Any]) -> bytes:
    """A trainer's ``state_dict()`` as a checkpoint blob."""
    arrays = {f"params/{k}": v for k, v in state["params"].items()}
    arrays.update({f"velocity/{k}": v for k, v in state.get("velocity", {}).items()})
    return pack_arrays(arrays, {"iteration": int(state["iteration"])})


def unpack_state(blob: bytes) -> dict[str, Any]:
    """``{"iteration", "params", "velocity"}`` from a checkpoint blob."""
    meta, arrays = unpack_arrays(blob)
    state: dict[str, Any] = {"iteration": int(meta["iteration"]), "params": {}, "velocity": {}}
    for name, array in arrays.items():
        group, _, key = name.partition("/")
        state[group][key] = array
    return state
