"""An uploaded file to arrays: CSV with a header, ``.npy`` (a table) or ``.npz`` (``X``, ``y``).

The format is told by the file's first bytes (NumPy's magic, a zip's), not its name. Every
problem is a :class:`service.errors.Problem` on the ``file`` field that says which line or
array is wrong and why; the server's limits (rows, columns: GRADLAB_MAX_INLINE_*) are checked
as the file is read — a CSV line by line, an array from its header before its data — so an
oversized table is refused before it is in memory. NumPy files are read with
``allow_pickle=False``: an object array is refused, never unpickled.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from dataclasses import dataclass
from typing import IO

import numpy as np

from service.errors import InvalidSpec, Problem
from store.settings import Settings

FIELD = ("file",)
_BLOCK_ROWS = 4096
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


@dataclass
class Parsed:
    """X (m, n) and y (m,) float64, with a CSV's column names and its target's."""

    X: np.ndarray
    y: np.ndarray
    columns: list[str] | None = None
    target: str | None = None


def bad(message: str, field: tuple[str, ...] = FIELD) -> InvalidSpec:
    return InvalidSpec([Problem(field, message)])


def parse(file: IO[bytes], target: str | None, settings: Settings) -> Parsed:
    """The arrays of an uploaded file (see the module), or :class:`InvalidSpec`."""
    head = file.read(8)
    file.seek(0)
    if not head:
        raise bad("the file is empty.")
    if head.startswith(_NPY_MAGIC):
        return _table(_read_npy(file, "the array", settings, 2, target_column=True), target)
    if head.startswith(_ZIP_MAGIC):
        return _npz(file, settings)
    return _csv(file, target, settings)


# --- CSV --------------------------------------------------------------------------------


def _csv(file: IO[bytes], target: str | None, settings: Settings) -> Parsed:
    reader = csv.reader(io.TextIOWrapper(file, encoding="utf-8-sig", newline=""))
    try:
        header = next(reader, None)
    except UnicodeDecodeError:
        raise bad("line 1 is not UTF-8 text; upload CSV, .npy or .npz.") from None
    if header is None or not any(h.strip() for h in header):
        raise bad("line 1 (the header) is empty; name each column, the target among them.")
    header = [h.strip() for h in header]
    width = len(header)
    column = _target_column(header, target)
    if width - 1 > settings.max_inline_features:
        raise bad(
            f"the header names {width - 1} feature columns, above this server's limit of "
            f"{settings.max_inline_features} (GRADLAB_MAX_INLINE_FEATURES)."
        )
    # Rows go into float64 blocks as they are read: 8 bytes a value, not a Python float's 32.
    blocks: list[np.ndarray] = []
    block = np.empty((_BLOCK_ROWS, width))
    n = filled = 0
    line = 1
    try:
        for line, values in enumerate(reader, start=2):
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # a blank line (a trailing newline, say)
            if len(values) != width:
                raise bad(f"line {line} has {len(values)} values but the header has {width}.")
            if filled == _BLOCK_ROWS:
                blocks.append(block)
                block, filled = np.empty((_BLOCK_ROWS, width)), 0
            block[filled] = [_number(v, line, header[i]) for i, v in enumerate(values)]
            filled += 1
            n += 1
            if n > settings.max_inline_rows:
                raise bad(
                    f"line {line}: the file has more than {settings.max_inline_rows} rows, this "
                    "server's limit (GRADLAB_MAX_INLINE_ROWS)."
                )
    except UnicodeDecodeError:
        raise bad(f"line {line + 1} is not UTF-8 text.") from None
    except csv.Error as exc:
        raise bad(f"line {line + 1} is not CSV: {exc}.") from None
    if n == 0:
        raise bad("the file has a header but no rows of data.")
    table = np.concatenate([*blocks, block[:filled]])
    features = [i for i in range(width) if i != column]
    return Parsed(
        table[:, features], table[:, column], [header[i] for i in features], header[column]
    )


def _target_column(header: list[str], target: str | None) -> int:
    if len(header) < 2:
        raise bad("line 1 (the header) names one column; give at least a feature and a target.")
    if target is None:
        return len(header) - 1
    if target not in header:
        listed = ", ".join(repr(h) for h in header[:20])
        raise bad(f"the header has no column {target!r}; its columns are {listed}.", ("target",))
    return header.index(target)


def _number(text: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad(
            f"line {line}, column {column!r}: {text.strip()[:40]!r} is not a number."
        ) from None
    if not math.isfinite(value):
        raise bad(f"line {line}, column {column!r}: {text.strip()} is not a finite number.")
    return value


# --- NumPy ------------------------------------------------------------------------------


def _read_npy(
    file: IO[bytes], what: str, settings: Settings, ndim: int, target_column: bool = False
) -> np.ndarray:
    """One ``.npy`` array of ``ndim`` dimensions, its shape and dtype checked from its
    header before its data is read."""
    try:
        version = np.lib.format.read_magic(file)
        if version not in _HEADERS:
            raise ValueError(f"version {version} of the format is not read here")
        shape, _fortran, dtype = _HEADERS[version](file)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise bad(f"{what} is not a valid .npy array: {exc}") from None
    if dtype.hasobject:
        raise bad(
            f"{what} holds Python objects (a pickle), which this server never loads; "
            "save numbers (float or int)."
        )
    if dtype.kind not in "biuf":
        raise bad(f"{what} has dtype {dtype}; it must hold real numbers (float, int or bool).")
    if len(shape) != ndim:
        raise bad(f"{what} has {len(shape)} dimensions (shape {list(shape)}); it needs {ndim}.")
    rows = shape[0]
    if rows == 0 or math.prod(shape) == 0:
        raise bad(f"{what} is empty (shape {list(shape)}).")
    if rows > settings.max_inline_rows:
        raise bad(
            f"{what} has {rows} rows, above this server's limit of {settings.max_inline_rows} "
            "(GRADLAB_MAX_INLINE_ROWS)."
        )
    if ndim == 2 and shape[1] > settings.max_inline_features + target_column:
        raise bad(
            f"{what} has {shape[1]} columns, above this server's limit of "
            f"{settings.max_inline_features} features (GRADLAB_MAX_INLINE_FEATURES)."
        )
    file.seek(0)
    try:
        array = np.lib.format.read_array(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise bad(f"{what} could not be read: {exc}") from None
    array = np.asarray(array, dtype=np.float64)
    bad_at = np.argwhere(~np.isfinite(array))
    if bad_at.size:
        where = ", ".join(str(int(i)) for i in bad_at[0])
        raise bad(f"{what} holds {array[tuple(bad_at[0])]} at [{where}]; give finite numbers.")
    return array


def _table(table: np.ndarray, target: str | None) -> Parsed:
    """A ``.npy`` table: the ``target`` column (an index, by default the last) is y."""
    width = table.shape[1]
    if width < 2:
        raise bad("the array has one column; give features and a target column.")
    column = width - 1
    if target is not None:
        try:
            column = int(target)
            if not -width <= column < width:
                raise ValueError
        except ValueError:
            message = f"target must be a column index of the array, 0..{width - 1}, got {target!r}."
            raise bad(message, ("target",)) from None
        column %= width
    features = [i for i in range(width) if i != column]
    return Parsed(table[:, features], table[:, column])


def _npz(file: IO[bytes], settings: Settings) -> Parsed:
    try:
        archive = zipfile.ZipFile(file)
        names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise bad(f"the file starts as a zip (.npz) but is not one: {exc}.") from None
    arrays = {}
    for name, ndim in (("X", 2), ("y", 1)):
        if f"{name}.npy" not in names:
            listed = ", ".join(sorted(n.removesuffix(".npy") for n in names)[:20]) or "none"
            raise bad(f"the .npz has no array {name!r}; it has {listed}. Save X and y.")
        with archive.open(f"{name}.npy") as member:
            buffered = io.BytesIO(member.read(_npy_bound(settings, ndim)))
            if member.read(1):
                raise bad(
                    f"array {name} is larger than this server's limits allow "
                    "(GRADLAB_MAX_INLINE_ROWS × GRADLAB_MAX_INLINE_FEATURES)."
                )
        arrays[name] = _read_npy(buffered, f"array {name}", settings, ndim)
    X, y = arrays["X"], arrays["y"]
    if len(y) != len(X):
        raise bad(f"array y has {len(y)} values but X has {len(X)} rows; give one per row.")
    return Parsed(X, y)


def _npy_bound(settings: Settings, ndim: int) -> int:
    """The most bytes a ``.npy`` within the limits can take (8-byte numbers, a header)."""
    cells = settings.max_inline_rows * (settings.max_inline_features if ndim == 2 else 1)
    return 8 * cells + 65_536
