"""Receive an uploaded CSV as a stream, straight to disk, within a size limit.

A multipart body (``curl -F file=@orders.csv``) or a bare CSV body
(``--data-binary @orders.csv`` with ``Content-Type: text/csv``) is written chunk by
chunk to a file in a private temporary folder; nothing holds the whole file in
memory, and the body is cut off (the file removed) once it passes the limit.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

#: The multipart field that carries the file.
FILE_FIELD = "file"
#: Bytes read from the start of a file to tell text from binary data.
SNIFF_BYTES = 65_536
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class UploadError(ValueError):
    """The body is not an acceptable CSV upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReceivedFile:
    """An uploaded file on disk: where, under which name the client sent it, how big."""

    path: Path
    filename: str
    size: int


def _safe_name(name: str | None, table: str) -> str:
    """A file name for the folder (and ``raw.loads.source_file``): the client's, without a path."""
    base = _SAFE_NAME.sub("_", Path(name or "").name).strip("._")
    return base or f"{table}.csv"


class _Parts:
    """python-multipart callbacks that write the ``file`` field to disk and skip the rest."""

    def __init__(self, folder: Path, table: str) -> None:
        self.folder = folder
        self.table = table
        self.headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self.target: BinaryIO | None = None
        self.received: ReceivedFile | None = None
        self.size = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.headers = {}
        if options.get(b"name", b"").decode(errors="replace") != FILE_FIELD or self.received is not None:
            return
        filename = options.get(b"filename", b"").decode(errors="replace")
        path = self.folder / _safe_name(filename, self.table)
        self.target = path.open("wb")
        self.received = ReceivedFile(path, filename or path.name, 0)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.target is not None:
            self.target.write(data[start:end])
            self.size += end - start

    def on_part_end(self) -> None:
        if self.target is not None:
            self.target.close()
            self.target = None


async def receive_csv(
    body: AsyncIterator[bytes], content_type: str, table: str, limit_bytes: int, folder: Path
) -> ReceivedFile:
    """Write the uploaded CSV of ``body`` into ``folder``; raises :class:`UploadError`
    (413 past ``limit_bytes``, 415 for a body that is not a CSV, 400 for a multipart
    body without a ``file`` field)."""
    media, options = parse_options_header(content_type)
    total = 0
    if media == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise UploadError(400, "multipart body without a boundary in its Content-Type")
        parts = _Parts(folder, table)
        parser = MultipartParser(
            boundary,
            {
                "on_header_field": parts.on_header_field,
                "on_header_value": parts.on_header_value,
                "on_header_end": parts.on_header_end,
                "on_headers_finished": parts.on_headers_finished,
                "on_part_data": parts.on_part_data,
                "on_part_end": parts.on_part_end,
            },
        )
        try:
            async for chunk in body:
                total += len(chunk)
                if total > limit_bytes:
                    raise UploadError(413, _too_large(limit_bytes))
                parser.write(chunk)
            parser.finalize()
        except UploadError:
            raise
        except Exception as exc:  # python-multipart's own errors: a malformed body
            raise UploadError(400, f"malformed multipart body: {exc}") from None
        finally:
            parts.on_part_end()
        if parts.received is None:
            raise UploadError(
                400, f"multipart body without a {FILE_FIELD!r} field (curl -F {FILE_FIELD}=@data.csv)"
            )
        received = ReceivedFile(parts.received.path, parts.received.filename, parts.size)
    elif media in (b"text/csv", b"text/plain", b"application/csv"):
        path = folder / f"{table}.csv"
        with path.open("wb") as target:
            async for chunk in body:
                total += len(chunk)
                if total > limit_bytes:
                    raise UploadError(413, _too_large(limit_bytes))
                target.write(chunk)
        received = ReceivedFile(path, path.name, total)
    else:
        raise UploadError(
            415,
            f"expected a CSV file as multipart/form-data (field {FILE_FIELD!r}) or a text/csv body, "
            f"not {media.decode(errors='replace') or 'a body without a Content-Type'}",
        )
    _check_text(received)
    return received


def _too_large(limit_bytes: int) -> str:
    return (
        f"upload larger than the limit of {limit_bytes / 1_048_576:.0f} MiB "
        "(setting service_upload_max_mb); split the file or raise the setting"
    )


def _check_text(received: ReceivedFile) -> None:
    """Refuse an empty file or one that is plainly not text (NUL bytes near its start)."""
    if received.size == 0:
        raise UploadError(400, f"{received.filename}: the file is empty; a CSV starts with its header line")
    with received.path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if b"\x00" in head:
        raise UploadError(
            415, f"{received.filename}: binary data (NUL bytes), not a CSV; export the table as CSV text"
        )


def private_folder(root: Path | None = None) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder only this process can read, under ``root`` (default: the system's)."""
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="storecast-upload-", dir=root)
