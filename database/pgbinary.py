"""Vectorised encoder and decoder for PostgreSQL's binary COPY format.

``COPY ... FROM STDIN (FORMAT binary)`` is the fastest way to move rows into
Postgres, but psycopg builds it one Python tuple at a time. This module turns
whole numpy columns into COPY bytes at once: a structured-dtype fast path when
every field has a fixed width and no NULLs, and an offset-scatter path for NULLs
and text. Rows are encoded in bounded chunks, so memory stays flat for any size.

The other way, ``COPY (query) TO STDOUT (FORMAT binary)`` of a query whose fields
are all non-NULL and 8 bytes wide (int8, float8) has one layout for every row, so
:func:`copy_out_fixed8` streams it in chunks that decode to a strided numpy view
without any per-value Python.

Format reference: https://www.postgresql.org/docs/current/sql-copy.html
(binary format) and the ``*_send`` functions of each type.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.abc import Buffer

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)

_PG_EPOCH_DAY = np.datetime64("2000-01-01", "D")
_PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us")

_FIXED_DTYPES: dict[str, str] = {
    "bool": "u1",
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "date": ">i4",
    "timestamptz": ">i8",
    "timestamp": ">i8",
}


@dataclass(frozen=True)
class Column:
    """One column to encode.

    Parameters
    ----------
    name:
        Target column name.
    pgtype:
        One of ``bool int2 int4 int8 float4 float8 date timestamp timestamptz
        numeric text jsonb vector``.
    values:
        A 1-d array (2-d ``(n, dim)`` for ``vector``). Dates are
        ``datetime64[D]``, timestamps ``datetime64`` (UTC for ``timestamptz``),
        numerics are floats or ints rounded to ``scale`` digits, text is any
        array of ``str`` (jsonb: JSON documents as ``str``).
    null:
        Optional boolean mask, ``True`` where the value is NULL.
    scale:
        Digits after the decimal point, for ``numeric`` only.
    """

    name: str
    pgtype: str
    values: npt.NDArray[Any]
    null: npt.NDArray[np.bool_] | None = None
    scale: int = 2

    def __post_init__(self) -> None:
        supported = {*_FIXED_DTYPES, "numeric", "text", "jsonb", "vector"}
        if self.pgtype not in supported:
            raise ValueError(f"column {self.name}: unsupported type {self.pgtype!r}")
        if self.pgtype == "numeric" and not 0 <= self.scale <= 4:
            raise ValueError(f"column {self.name}: numeric scale must be 0..4, got {self.scale}")


def _fixed_bytes(col: Column, rows: slice) -> npt.NDArray[np.uint8]:
    """Encode a fixed-width column chunk as an ``(n, width)`` uint8 array."""
    values = col.values[rows]
    if col.pgtype == "date":
        data = (np.asarray(values, dtype="datetime64[D]") - _PG_EPOCH_DAY).astype(">i4")
    elif col.pgtype in ("timestamp", "timestamptz"):
        data = (np.asarray(values, dtype="datetime64[us]") - _PG_EPOCH_US).astype(">i8")
    elif col.pgtype == "bool":
        data = np.asarray(values, dtype=bool).astype("u1")
    elif col.pgtype == "numeric":
        return _numeric_bytes(np.asarray(values), col.scale)
    elif col.pgtype == "vector":
        return _vector_bytes(np.asarray(values))
    else:
        data = np.asarray(values).astype(_FIXED_DTYPES[col.pgtype])
    return data.view(np.uint8).reshape(len(data), -1)


def _numeric_bytes(values: npt.NDArray[Any], scale: int) -> npt.NDArray[np.uint8]:
    # numeric_send: int16 ndigits, int16 weight, int16 sign, int16 dscale, then
    # base-10000 digits. We always send the same number of digit groups (leading
    # zero groups are allowed; the server strips them), so the width is fixed.
    scaled = np.rint(np.asarray(values, dtype=np.float64) * 10**scale).astype(np.int64)
    negative = scaled < 0
    magnitude = np.abs(scaled)
    integer = magnitude // 10**scale
    fraction = (magnitude % 10**scale) * 10 ** (4 - scale)
    max_int = int(integer.max()) if len(integer) else 0
    int_groups = 1
    while max_int >= 10_000**int_groups:
        int_groups += 1
    frac_groups = 1 if scale > 0 else 0
    ndigits = int_groups + frac_groups
    out = np.empty((len(scaled), 4 + ndigits), dtype=">i2")
    out[:, 0] = ndigits
    out[:, 1] = int_groups - 1
    out[:, 2] = np.where(negative, 0x4000, 0)
    out[:, 3] = scale
    for g in range(int_groups):
        out[:, 4 + g] = (integer // 10_000 ** (int_groups - 1 - g)) % 10_000
    if frac_groups:
        out[:, 4 + int_groups] = fraction
    return out.view(np.uint8).reshape(len(scaled), -1)


def _vector_bytes(values: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    # pgvector's vector_send: int16 dim, int16 unused, float4[dim].
    matrix = np.asarray(values, dtype=">f4")
    if matrix.ndim != 2:
        raise ValueError("a vector column needs a 2-d (rows, dim) array")
    n, dim = matrix.shape
    head = np.empty((n, 2), dtype=">i2")
    head[:, 0] = dim
    head[:, 1] = 0
    return np.concatenate([head.view(np.uint8).reshape(n, 4), matrix.view(np.uint8).reshape(n, -1)], axis=1)


#: Mean bytes per value above which text is copied row by row rather than by index arrays.
_LONG_TEXT = 32


def _text_parts(col: Column, rows: slice) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """Encode a text column chunk: per-row byte lengths and the concatenated UTF-8 bytes."""
    values = np.asarray(col.values[rows], dtype=object)
    if col.pgtype == "jsonb":
        # jsonb's binary form is a version byte (1) before the text. Documents are mostly
        # unique per row, so encoding each beats sorting them to encode each value once.
        encoded = [b"\x01" + str(v).encode("utf-8") for v in values]
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        return lengths, np.frombuffer(b"".join(encoded), dtype=np.uint8)
    uniques, codes = np.unique(values.astype(str), return_inverse=True)
    encoded = [u.encode("utf-8") for u in uniques]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)[codes]
    blob = b"".join(encoded[c] for c in codes)
    return lengths, np.frombuffer(blob, dtype=np.uint8)


def _encode_chunk(columns: Sequence[Column], rows: slice, n: int) -> bytes:
    nulls = [
        np.zeros(n, dtype=bool) if c.null is None else np.asarray(c.null[rows], dtype=bool) for c in columns
    ]
    fixed: list[npt.NDArray[np.uint8] | None] = []
    texts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]] | None] = []
    for col in columns:
        if col.pgtype in ("text", "jsonb"):
            fixed.append(None)
            texts.append(_text_parts(col, rows))
        else:
            fixed.append(_fixed_bytes(col, rows))
            texts.append(None)

    if all(f is not None for f in fixed) and not any(m.any() for m in nulls):
        # Fast path: every row has the same layout, so one structured array holds it.
        fields: list[tuple[str, str | tuple[str, int]]] = [("nf", ">i2")]
        for i, f in enumerate(fixed):
            assert f is not None
            fields += [(f"l{i}", ">i4"), (f"v{i}", ("u1", f.shape[1]))]
        out = np.empty(n, dtype=np.dtype(fields))
        out["nf"] = len(columns)
        for i, f in enumerate(fixed):
            assert f is not None
            out[f"l{i}"] = f.shape[1]
            out[f"v{i}"] = f
        return out.tobytes()

    # General path: compute each field's length per row, then scatter the bytes.
    lengths = np.empty((n, len(columns)), dtype=np.int64)
    for i, (f, t, m) in enumerate(zip(fixed, texts, nulls, strict=True)):
        width = t[0] if t is not None else np.full(n, f.shape[1] if f is not None else 0, dtype=np.int64)
        lengths[:, i] = np.where(m, -1, width)
    row_sizes = 2 + 4 * len(columns) + np.maximum(lengths, 0).sum(axis=1)
    row_starts = np.concatenate([[0], np.cumsum(row_sizes)[:-1]])
    buf = np.zeros(int(row_sizes.sum()), dtype=np.uint8)
    _scatter(buf, row_starts, np.full((n, 1), len(columns), dtype=">i2").view(np.uint8))
    pos = row_starts + 2
    for i, (f, t, m) in enumerate(zip(fixed, texts, nulls, strict=True)):
        _scatter(buf, pos, lengths[:, i].astype(">i4").view(np.uint8).reshape(n, 4))
        pos = pos + 4
        if t is not None:
            t_lengths, blob = t
            keep = ~m
            src_starts = np.concatenate([[0], np.cumsum(t_lengths)[:-1]])
            sel_len = t_lengths[keep]
            total = int(sel_len.sum())
            if total and total > _LONG_TEXT * len(sel_len):
                # Long values (jsonb documents): one slice copy per row costs less than
                # index arrays eight times the size of the text.
                target = memoryview(buf.data)
                source = memoryview(blob.data)
                for d, s, size in zip(
                    pos[keep].tolist(), src_starts[keep].tolist(), sel_len.tolist(), strict=True
                ):
                    target[d : d + size] = source[s : s + size]
            elif total:
                src_idx = np.repeat(src_starts[keep], sel_len) + _ragged_arange(sel_len, total)
                dst_idx = np.repeat(pos[keep], sel_len) + _ragged_arange(sel_len, total)
                buf[dst_idx] = blob[src_idx]
        elif f is not None:
            keep = ~m
            _scatter(buf, pos[keep], f[keep])
        pos = pos + np.maximum(lengths[:, i], 0)
    return buf.tobytes()


def _ragged_arange(lengths: npt.NDArray[np.int64], total: int) -> npt.NDArray[np.int64]:
    """``concatenate([arange(k) for k in lengths])`` without a Python loop."""
    starts = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def _scatter(buf: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> None:
    if len(starts) == 0:
        return
    width = data.shape[1]
    buf[(starts[:, None] + np.arange(width)).ravel()] = data.ravel()


def encode_chunks(columns: Sequence[Column], chunk_rows: int = 250_000) -> Iterator[bytes]:
    """Yield the binary COPY stream for ``columns``: header, row chunks, trailer."""
    if not columns:
        raise ValueError("no columns to encode")
    n = len(columns[0].values)
    for col in columns:
        if len(col.values) != n:
            raise ValueError(f"column {col.name} has {len(col.values)} rows, expected {n}")
    yield HEADER
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        yield _encode_chunk(columns, slice(start, stop), stop - start)
    yield TRAILER


def copy_columns(
    conn: psycopg.Connection[tuple[object, ...]],
    table: sql.Composable,
    columns: Sequence[Column],
    chunk_rows: int = 250_000,
) -> int:
    """Write ``columns`` into ``table`` with one binary COPY; returns the row count."""
    statement = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        table, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    with conn.cursor().copy(statement) as copy:
        for chunk in encode_chunks(columns, chunk_rows):
            copy.write(chunk)
    return len(columns[0].values) if columns else 0


def fixed8_row_bytes(n_fields: int) -> int:
    """Bytes of one binary COPY row of ``n_fields`` non-NULL 8-byte fields."""
    return 2 + 12 * n_fields


def fixed8_fields(data: memoryview, n_fields: int) -> npt.NDArray[Any]:
    """Rows of ``n_fields`` non-NULL 8-byte fields as an ``(n, n_fields)`` big-endian int8 view.

    ``data`` holds whole rows (no header or trailer). Use ``.view(">f8")`` on the
    columns that are float8. Raises ``ValueError`` when the rows do not have that
    layout, which is how a NULL (a field without a value) shows up.
    """
    row_bytes = fixed8_row_bytes(n_fields)
    if len(data) % row_bytes:
        raise ValueError(
            f"{len(data)} bytes are not whole rows of {n_fields} 8-byte fields (is a value NULL?)"
        )
    n = len(data) // row_bytes
    counts = np.ndarray((n,), dtype=">i2", buffer=data, strides=(row_bytes,))
    lengths = np.ndarray((n, n_fields), dtype=">i4", buffer=data, offset=2, strides=(row_bytes, 12))
    if n and (bool((counts != n_fields).any()) or bool((lengths != 8).any())):
        raise ValueError(f"rows are not {n_fields} non-NULL 8-byte fields (is a value NULL?)")
    return np.ndarray((n, n_fields), dtype=">i8", buffer=data, offset=6, strides=(row_bytes, 12))


def copy_out_fixed8(
    conn: psycopg.Connection[tuple[object, ...]],
    statement: sql.Composed,
    n_fields: int,
    chunk_rows: int,
    params: Sequence[Any] | None = None,
) -> Generator[npt.NDArray[Any]]:
    """Stream ``COPY (...) TO STDOUT (FORMAT binary)`` of ``n_fields`` 8-byte fields in chunks.

    Yields :func:`fixed8_fields` views of up to ``chunk_rows`` rows. The views share
    one buffer, so each must be consumed (copied) before the next is requested;
    that reuse is what keeps memory bounded for any number of rows.

    Postgres sends one message per row (the header with the first, the trailer on
    its own). psycopg's ``Copy.read`` costs a few microseconds of Python per
    message, most of the client's work at that rate, so it is used only to wait
    for data and to read the end of the COPY (which keeps its state right); the
    rows libpq has already received are taken straight from it.
    """
    row_bytes = fixed8_row_bytes(n_fields)
    buffer = bytearray(row_bytes * chunk_rows)
    view = memoryview(buffer)
    capacity = len(buffer)
    pos = 0
    skip = len(HEADER)
    trailer_sizes = (len(TRAILER), len(HEADER) + len(TRAILER))  # the trailer, or header + trailer (no rows)
    with conn.cursor().copy(statement, params) as copy:
        pgconn = conn.pgconn
        data: Buffer = copy.read()
        while data:
            part = memoryview(data)
            if skip:
                skipped = min(skip, len(part))
                skip -= skipped
                part = part[skipped:]
            while len(part):
                take = min(len(part), capacity - pos)
                buffer[pos : pos + take] = part[:take]
                pos += take
                part = part[take:]
                if pos == capacity:
                    yield fixed8_fields(view, n_fields)
                    pos = 0
            if len(data) in trailer_sizes and bytes(data[-2:]) == TRAILER:
                data = copy.read()  # psycopg reads the end of the COPY and returns b""
                continue
            # The path nearly every row takes: a whole row, already received, that fits.
            while True:
                size, data = pgconn.get_copy_data(1)
                if size <= len(TRAILER) or pos + size >= capacity:
                    break
                buffer[pos : pos + size] = data
                pos += size
            if size == -1:
                raise ValueError("binary COPY stream ended without its trailer")
            if size <= 0:
                data = copy.read()  # nothing received yet: psycopg waits (and reports any error)
    if pos < len(TRAILER) or bytes(view[pos - len(TRAILER) : pos]) != TRAILER:
        raise ValueError("binary COPY stream ended without its trailer")
    pos -= len(TRAILER)
    if pos:
        yield fixed8_fields(view[:pos], n_fields)
