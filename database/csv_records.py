"""CSV records as the loader reads them: line numbers, the raw text for rejects, and
the problems found before Postgres sees a value (encoding, NUL bytes, field counts,
sizes), in memory bounded by the longest record allowed."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Longest field accepted, in characters (override with ``max_field_chars``).
DEFAULT_MAX_FIELD_CHARS = 1_000_000
#: Longest record (one CSV row, over all its physical lines) read into memory, in bytes:
#: a longer one is skipped unread and rejected with its line number, so memory stays
#: bounded whatever the file holds (override with ``max_record_bytes``).
DEFAULT_MAX_RECORD_BYTES = 16 * 2**20
#: Characters of an over-long record kept in ``raw.load_rejects`` (the rest is counted).
KEPT_OVERSIZED_CHARS = 1_000
_READ_CHUNK = 2**20
#: The characters that delimit, quote and end CSV fields: an encoding is read only where it
#: writes these as ASCII does, since lines are split as bytes before they are decoded.
_CSV_SYNTAX = "\n\r,;\t|\"' 0123456789.-+:"
#: What a reason for bytes that are not UTF-8 suggests.
ENCODING_HINT = "if the file is written in another encoding, name it with --encoding (e.g. cp1252, as Excel on Windows saves CSV)"


def check_encoding(encoding: str) -> str:
    """The codec's name for ``encoding``, or ``ValueError`` saying why the loader cannot read it."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}; e.g. utf-8, cp1252, latin-1") from None
    # A byte-order mark may lead (utf-8-sig); every character after it must be its ASCII byte.
    ascii_bytes = _CSV_SYNTAX.encode("ascii")
    encoded = _CSV_SYNTAX.encode(name, errors="replace")
    if not encoded.endswith(ascii_bytes) or len(encoded) - len(ascii_bytes) > 4:
        raise ValueError(
            f"encoding {encoding!r} does not write ASCII as ASCII (UTF-16 and UTF-32 do not): "
            "save the file as UTF-8 (Excel: CSV UTF-8) and load it without --encoding"
        )
    return name


@dataclass
class Record:
    line_no: int
    fields: list[str]
    problem: str | None
    raw: str
    offset: int  # bytes of the file read once this record was parsed


class _PhysicalLines:
    """Iterate a binary file as decoded lines, remembering what each CSV record spanned.

    A record longer than ``max_record_bytes`` is not held in memory: the rest of its
    line is skipped in chunks, its length counted, and the parser given an empty line.
    """

    def __init__(self, fh: BinaryIO, max_record_bytes: int, encoding: str = "utf-8") -> None:
        self._fh = fh
        self._max = max_record_bytes
        self._encoding = encoding
        self.line_no = 0  # physical lines read so far
        self.bytes_read = 0
        self.record_start = 1
        self.buffer: list[str] = []
        self.buffered = 0  # bytes of the record so far
        self.bad_encoding: str | None = None
        self.oversized: int | None = None  # bytes of an over-long record, once seen

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._fh.readline(self._max - self.buffered + 1)
        if not raw:
            raise StopIteration
        self.line_no += 1
        self.bytes_read += len(raw)
        if self.line_no == 1 and self._encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        self.buffered += len(raw)
        if self.buffered > self._max or self.oversized is not None:
            return self._skip(raw)
        try:
            text = raw.decode(self._encoding)
        except UnicodeDecodeError as exc:
            text = raw.decode(self._encoding, errors="backslashreplace")
            if self.bad_encoding is None:
                utf8 = self._encoding == "utf-8"
                self.bad_encoding = (
                    f"not valid {'UTF-8' if utf8 else self._encoding}: byte 0x{raw[exc.start]:02x} at "
                    f"position {exc.start + 1} of line {self.line_no}"
                    + (f"; {ENCODING_HINT}" if utf8 else "")
                )
        self.buffer.append(text)
        return text

    def _skip(self, raw: bytes) -> str:
        """Count the rest of an over-long line without keeping it; keep its first characters."""
        kept = sum(len(t) for t in self.buffer)
        if kept < KEPT_OVERSIZED_CHARS:
            self.buffer.append(
                raw[: KEPT_OVERSIZED_CHARS - kept].decode(self._encoding, errors="backslashreplace")
            )
        while not raw.endswith(b"\n"):
            raw = self._fh.readline(_READ_CHUNK)
            if not raw:
                break
            self.bytes_read += len(raw)
            self.buffered += len(raw)
        self.oversized = self.buffered
        return "\n"

    def take(self) -> tuple[int, str, str | None]:
        """Start line, raw text and problem (encoding, size) of the record just parsed."""
        start, raw, bad = self.record_start, "".join(self.buffer), self.bad_encoding
        if self.oversized is not None:
            bad = (
                f"record is {self.oversized:,} bytes; the limit is {self._max:,} "
                f"(skipped unread; its first {KEPT_OVERSIZED_CHARS:,} characters are kept)"
            )
            raw = raw.rstrip("\r\n") + f" [... {self.oversized:,} bytes in all]\n"
        self.buffer, self.bad_encoding, self.oversized, self.buffered = [], None, None, 0
        self.record_start = self.line_no + 1
        return start, raw, bad


def records(
    path: Path,
    delimiter: str,
    n_fields: int | None,
    max_field_chars: int,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    encoding: str = "utf-8",
) -> Generator[Record, None, None]:
    """Yield the header (line 1) and then every data record, with any problem found in Python;
    ``encoding`` is a codec's name as :func:`check_encoding` gives it."""
    # The parser's own limit stops a quoted field that runs over many short lines from
    # growing without bound; a field over max_field_chars is reported more precisely below.
    csv.field_size_limit(max(max_record_bytes, max_field_chars) + 1)
    with path.open("rb") as fh:
        lines = _PhysicalLines(fh, max_record_bytes, encoding)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        expected = n_fields
        while True:
            try:
                row = next(reader)
                error = None
            except StopIteration:
                return
            except csv.Error as exc:
                row, error = [], f"malformed CSV: {exc}"
            start, raw, bad = lines.take()
            problem = bad or error
            if problem is None and "\x00" in raw:
                problem = "contains a NUL byte, which Postgres text cannot store"
            if problem is None and expected is not None and len(row) != expected:
                if not row or (len(row) == 1 and row[0].strip() == ""):
                    continue  # blank line
                problem = f"expected {expected} fields, found {len(row)}"
            if problem is None:
                long = [i for i, v in enumerate(row) if len(v) > max_field_chars]
                if long:
                    problem = f"field {long[0] + 1} is {len(row[long[0]]):,} characters; the limit is {max_field_chars:,}"
            if expected is None:
                expected = len(row)
            yield Record(start, row, problem, raw, lines.bytes_read)


@dataclass(frozen=True)
class CsvFormat:
    """How the file is written and how much of it may be held in memory at once."""

    delimiter: str = ","
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    #: A PostgreSQL ``to_timestamp`` pattern for date and time columns, e.g. ``DD/MM/YYYY``;
    #: ``None`` reads ISO 8601 only.
    date_format: str | None = None
    #: How numbers are written when not as Postgres reads them: ``decimal_comma``
    #: (``1.234,56``) or ``thousands_comma`` (``1,234.56``), a name of
    #: :data:`storecast.database.load_checks.NUMBER_STYLES`; ``None``: ``1234.56`` only.
    number_style: str | None = None
    #: The file's text encoding, a codec's name as :func:`check_encoding` gives it.
    encoding: str = "utf-8"

    def records(self, path: Path, n_fields: int | None) -> Generator[Record, None, None]:
        """The file's records, parsed with this format."""
        return records(
            path, self.delimiter, n_fields, self.max_field_chars, self.max_record_bytes, self.encoding
        )
