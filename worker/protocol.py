"""What the worker and its job's child process say to each other over a pair of pipes.

A message is a frame: two little-endian u32 lengths (JSON header, binary body), the header
— a JSON object whose byte strings are replaced by ``{"$bytes": [offset, length]}`` into the
body — and the body, the byte strings back to back (chunk series, checkpoints: numpy blocks
as bytes). No pickle in either direction: the child will run in a sandbox, and nothing it
sends may run code in the worker.

The worker sends ``job`` (a claim and the loop's settings), ``warm`` (the settings alone, at
its start: start a sandbox for the first student job) and, to each ``flush`` that does not
end the attempt, a ``reply``; the child sends ``flush`` (a :class:`~store.queue.Flush`,
with the attempt's :class:`~store.lifecycle.Finish` when it ends it) and ``done`` when the
attempt ended without one (its claim was lost). A finishing flush has no reply: the child
has nothing left to learn about that job, and waits for the next ``job``, which the worker
sends once it has written the flush — one pipe hand-off less per job.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import fields
from typing import Any

from store.lifecycle import Finish
from store.queue import Claim, Flush
from store.settings import Settings
from store.status import Outcome, Status

_LENGTHS = struct.Struct("<II")
MAX_HEADER = 64 * 1024 * 1024  # a frame claiming more is a broken (or hostile) child


class ChannelClosed(Exception):
    """The other end of the pipe is gone (the child died, or the worker did)."""


def _strip(value: Any, blobs: list[bytes], offset: list[int]) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        blobs.append(data)
        ref = {"$bytes": [offset[0], len(data)]}
        offset[0] += len(data)
        return ref
    if isinstance(value, dict):
        return {k: _strip(v, blobs, offset) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strip(v, blobs, offset) for v in value]
    return value


def _restore(value: Any, body: memoryview) -> Any:
    if isinstance(value, dict):
        ref = value.get("$bytes")
        if ref is not None and len(value) == 1:
            start, length = int(ref[0]), int(ref[1])
            if start < 0 or length < 0 or start + length > len(body):
                raise ValueError("a frame refers to bytes beyond its body")
            return bytes(body[start : start + length])
        return {k: _restore(v, body) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, body) for v in value]
    return value


def encode(message: dict[str, Any]) -> bytes:
    blobs: list[bytes] = []
    header = json.dumps(_strip(message, blobs, [0])).encode()
    body = b"".join(blobs)
    return _LENGTHS.pack(len(header), len(body)) + header + body


def _read_exactly(fd: int, n: int) -> bytes:
    parts, left = [], n
    while left:
        part = os.read(fd, min(left, 1 << 20))
        if not part:
            raise ChannelClosed("the other end closed the pipe")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read(fd: int) -> dict[str, Any]:
    """The next message from ``fd`` (blocking)."""
    header_len, body_len = _LENGTHS.unpack(_read_exactly(fd, _LENGTHS.size))
    if header_len > MAX_HEADER:
        raise ValueError(f"a frame header of {header_len} bytes")
    header = json.loads(_read_exactly(fd, header_len))
    body = memoryview(_read_exactly(fd, body_len)) if body_len else memoryview(b"")
    message = _restore(header, body)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError("a frame that is not a message")
    return message


def write(fd: int, message: dict[str, Any]) -> None:
    data = memoryview(encode(message))
    try:
        while data:
            data = data[os.write(fd, data) :]
    except (BrokenPipeError, OSError) as exc:
        raise ChannelClosed(str(exc)) from exc


# --- the messages' payloads -------------------------------------------------------------------


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields, one level deep (``asdict`` deep-copies every nested value)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


def settings_to_wire(settings: Settings) -> dict[str, Any]:
    """The settings a job process needs (it never connects to the database)."""
    return settings.model_dump(mode="json", exclude={"database_url"})


def claim_to_wire(claim: Claim) -> dict[str, Any]:
    return _fields(claim)


def claim_from_wire(data: dict[str, Any]) -> Claim:
    return Claim(**data)


def flush_to_wire(flush: Flush, finish: Finish | None) -> dict[str, Any]:
    data = _fields(flush)
    data["chunk"] = dict(flush.chunk) if flush.chunk is not None else None
    data["checks"] = [dict(c) for c in flush.checks]
    wire_finish = None
    if finish is not None:
        error = dict(finish.error) if finish.error is not None else None
        wire_finish = {"status": str(finish.status), "outcome": str(finish.outcome), "error": error}
    return {"type": "flush", "flush": data, "finish": wire_finish}


def flush_from_wire(message: dict[str, Any]) -> tuple[Flush, Finish | None]:
    flush = Flush(**message["flush"])
    finish = message.get("finish")
    if finish is None:
        return flush, None
    return flush, Finish(Status(finish["status"]), Outcome(finish["outcome"]), finish["error"])
