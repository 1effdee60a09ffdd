"""The binary COPY encoder produces exactly the bytes Postgres' *_send functions do."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from storecast.database.pgbinary import HEADER, TRAILER, Column, encode_chunks, fixed8_fields


def _body(columns: list[Column], chunk_rows: int = 250_000) -> bytes:
    chunks = list(encode_chunks(columns, chunk_rows))
    assert chunks[0] == HEADER
    assert chunks[-1] == TRAILER
    return b"".join(chunks[1:-1])


def test_int_and_float_rows_match_the_wire_format() -> None:
    body = _body([Column("a", "int4", np.array([7, -1])), Column("b", "float8", np.array([1.5, 0.0]))])
    # Build the expectation plainly: field count, then (length, value) per field.
    expected = b"".join(
        struct.pack(">h", 2) + struct.pack(">ii", 4, a) + struct.pack(">id", 8, b)
        for a, b in [(7, 1.5), (-1, 0.0)]
    )
    assert body == expected


def test_null_is_length_minus_one_without_data() -> None:
    body = _body([Column("a", "int8", np.array([5, 6]), null=np.array([False, True]))])
    assert body == struct.pack(">hiq", 1, 8, 5) + struct.pack(">hi", 1, -1)


def test_text_is_utf8_with_its_byte_length() -> None:
    body = _body([Column("t", "text", np.array(["é", ""], dtype=object))])
    assert body == struct.pack(">hi", 1, 2) + "é".encode() + struct.pack(">hi", 1, 0)


def test_jsonb_is_its_version_byte_then_the_text() -> None:
    body = _body([Column("j", "jsonb", np.array(['{"a": 1}'], dtype=object))])
    assert body == struct.pack(">hi", 1, 9) + b'\x01{"a": 1}'


@pytest.mark.parametrize(
    ("value", "digits", "weight", "sign"),
    [
        (12.34, [12, 3400], 0, 0x0000),
        (-0.05, [0, 500], 0, 0x4000),
        (123456.78, [12, 3456, 7800], 1, 0x0000),
    ],
)
def test_numeric_uses_base_10000_digits(value: float, digits: list[int], weight: int, sign: int) -> None:
    body = _body([Column("n", "numeric", np.array([value]), scale=2)])
    payload = struct.pack(">hhhh", len(digits), weight, sign, 2) + struct.pack(f">{len(digits)}h", *digits)
    assert body == struct.pack(">hi", 1, len(payload)) + payload


def test_dates_and_timestamps_count_from_2000() -> None:
    body = _body(
        [
            Column("d", "date", np.array(["2000-01-02"], dtype="datetime64[D]")),
            Column("t", "timestamptz", np.array(["2000-01-01T00:00:01"], dtype="datetime64[us]")),
        ]
    )
    assert body == struct.pack(">hii", 2, 4, 1) + struct.pack(">iq", 8, 1_000_000)


def test_vector_has_dimension_header_then_float4() -> None:
    body = _body([Column("v", "vector", np.array([[1.0, -2.0]], dtype=np.float32))])
    assert body == struct.pack(">hi", 1, 12) + struct.pack(">hh", 2, 0) + struct.pack(">ff", 1.0, -2.0)


def test_chunking_does_not_change_the_stream() -> None:
    rng = np.random.default_rng(0)
    cols = [
        Column("a", "int8", np.arange(1000)),
        Column("t", "text", rng.choice(["x", "yy", "zzz"], 1000), null=rng.random(1000) < 0.1),
    ]
    assert _body(cols, chunk_rows=7) == _body(cols)


def test_mismatched_column_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="column b has 1 rows, expected 2"):
        list(encode_chunks([Column("a", "int4", np.array([1, 2])), Column("b", "int4", np.array([1]))]))


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported type"):
        Column("a", "money", np.array([1]))


def test_fixed8_rows_decode_what_the_encoder_wrote() -> None:
    keys = np.array([1, -2, 2**62], dtype=np.int64)
    values = np.array([0.5, np.nan, -1e300])
    stream = b"".join(encode_chunks([Column("k", "int8", keys), Column("v", "float8", values)]))
    body = memoryview(stream)[len(HEADER) : -len(TRAILER)]
    fields = fixed8_fields(body, 2)
    np.testing.assert_array_equal(fields[:, 0].astype(np.int64), keys)
    np.testing.assert_array_equal(fields[:, 1].view(">f8").astype(np.float64), values)


def test_fixed8_rows_with_a_null_are_refused() -> None:
    null = np.array([False, True])
    stream = b"".join(encode_chunks([Column("v", "float8", np.array([1.0, 2.0]), null=null)]))
    with pytest.raises(ValueError, match="NULL"):
        fixed8_fields(memoryview(stream)[len(HEADER) : -len(TRAILER)], 1)


def test_long_values_are_copied_row_by_row_to_the_same_bytes() -> None:
    long = ['{"feature": "recency_days", "value": 12.5, "contribution": 0.25}' * 3, "", None]
    column = Column("j", "jsonb", np.array(long, dtype=object), null=np.array([False, False, True]))
    body = _body([column, Column("n", "int4", np.array([1, 2, 3]))])
    first = b"\x01" + long[0].encode()  # type: ignore[union-attr]
    assert body == b"".join(
        [
            struct.pack(">hi", 2, len(first)) + first + struct.pack(">ii", 4, 1),
            struct.pack(">hi", 2, 1) + b"\x01" + struct.pack(">ii", 4, 2),
            struct.pack(">hi", 2, -1) + struct.pack(">ii", 4, 3),
        ]
    )
