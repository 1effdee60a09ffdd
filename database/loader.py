"""Load a CSV file into a raw table without losing a row.

A load is one transaction. The file is parsed in Python (header check, UTF-8,
field count, field size) and staged with COPY into a temporary table of text
columns; types, CHECK constraints, duplicate keys and foreign keys are then
checked in SQL over the whole file at once, so a large file loads at COPY
speed rather than row by row. Every rejected row is kept verbatim in
``raw.load_rejects`` with a reason that names the column and what was
expected, and every load is recorded in ``raw.loads``.

Conventions: comma-separated, first line is the header, UTF-8 (a BOM is
allowed), an empty field is NULL.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import psycopg
from psycopg import sql

from database.bulk import RAW_SCHEMA, raw_table

Mode = Literal["append", "upsert"]
MODES: tuple[Mode, ...] = ("append", "upsert")
#: Tables the loader may write; the bookkeeping tables are written by storecast only.
NOT_LOADABLE = frozenset({"loads", "load_rejects", "schema_versions"})
#: Longest field accepted, in characters (override with ``max_field_chars``).
DEFAULT_MAX_FIELD_CHARS = 1_000_000
#: Longest record (one CSV row, over all its physical lines) read into memory, in bytes:
#: a longer one is skipped unread and rejected with its line number, so memory stays
#: bounded whatever the file holds (override with ``max_record_bytes``).
DEFAULT_MAX_RECORD_BYTES = 16 * 2**20
#: Characters of an over-long record kept in ``raw.load_rejects`` (the rest is counted).
KEPT_OVERSIZED_CHARS = 1_000
#: Date/time inputs Postgres accepts that depend on when the load runs.
RELATIVE_DATE_WORDS = ("now", "today", "tomorrow", "yesterday")
#: Date/time inputs Postgres accepts that are not a day written out.
SPECIAL_DATE_WORDS = ("epoch", "infinity", "+infinity", "-infinity", "allballs")
#: Numeric inputs Postgres accepts that are not finite numbers.
NOT_FINITE_WORDS = ("nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf")
#: ISO 8601 dates, optionally with a time (``T`` or a space) and an offset.
ISO_8601 = (
    r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$"
)
#: Rejection reasons shown in the summary.
SUMMARY_REASONS = 5
_READ_CHUNK = 2**20
_LIKELY_DELIMITERS = (";", "\t", "|")


class LoadError(Exception):
    """The file as a whole cannot be loaded (no header, wrong columns, unknown table...)."""


@dataclass(frozen=True)
class TableColumn:
    """A column of the target table, as the catalog describes it."""

    name: str
    type: str
    not_null: bool
    has_default: bool

    @property
    def required(self) -> bool:
        """A value must come from the file: NOT NULL and no default."""
        return self.not_null and not self.has_default


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of the target table."""

    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableInfo:
    """What the loader needs to know about a raw table."""

    name: str
    columns: tuple[TableColumn, ...]
    primary_key: tuple[str, ...]
    checks: tuple[tuple[str, tuple[str, ...], str], ...]  # (name, columns, expression)
    foreign_keys: tuple[ForeignKey, ...]
    #: UNIQUE constraints other than the primary key: (name, columns).
    unique: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Exclusion constraints: (name, ((column, operator), ...)).
    exclusions: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    def column(self, name: str) -> TableColumn:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


@dataclass
class LoadResult:
    """Outcome of one load, as recorded in ``raw.loads``."""

    load_id: int
    table: str
    source_file: str
    mode: str
    rows_in: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    status: str = "running"
    message: str = ""
    first_rejects: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Record:
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

    def __init__(self, fh: BinaryIO, max_record_bytes: int) -> None:
        self._fh = fh
        self._max = max_record_bytes
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
        if self.line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        self.buffered += len(raw)
        if self.buffered > self._max or self.oversized is not None:
            return self._skip(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="backslashreplace")
            if self.bad_encoding is None:
                self.bad_encoding = (
                    f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at position {exc.start + 1} "
                    f"of line {self.line_no}"
                )
        self.buffer.append(text)
        return text

    def _skip(self, raw: bytes) -> str:
        """Count the rest of an over-long line without keeping it; keep its first characters."""
        kept = sum(len(t) for t in self.buffer)
        if kept < KEPT_OVERSIZED_CHARS:
            self.buffer.append(raw[: KEPT_OVERSIZED_CHARS - kept].decode("utf-8", errors="backslashreplace"))
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


def table_info(conn: psycopg.Connection[tuple[object, ...]], table: str) -> TableInfo:
    """Describe ``raw.<table>`` from the catalog.

    Raises
    ------
    LoadError
        If the table does not exist or is not loadable.
    """
    loadable = [
        str(r[0])
        for r in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = %s and table_type = 'BASE TABLE' order by 1",
            [RAW_SCHEMA],
        ).fetchall()
        if str(r[0]) not in NOT_LOADABLE
    ]
    if table not in loadable:
        raise LoadError(f"unknown table {table!r}; loadable raw tables are: {', '.join(loadable)}")
    oid_row = conn.execute("select %s::regclass::oid", [f"{RAW_SCHEMA}.{table}"]).fetchone()
    assert oid_row is not None
    oid = oid_row[0]
    columns = tuple(
        TableColumn(str(name), str(typ), bool(notnull), bool(hasdef) or bool(str(ident)))
        for name, typ, notnull, hasdef, ident in conn.execute(
            """
            select attname, format_type(atttypid, atttypmod), attnotnull, atthasdef, attidentity
            from pg_attribute where attrelid = %s and attnum > 0 and not attisdropped
            order by attnum
            """,
            [oid],
        ).fetchall()
    )

    def names(attnums: object, rel: object = oid) -> tuple[str, ...]:
        rows = conn.execute(
            "select attname from unnest(%s::int2[]) with ordinality k(n, i) "
            "join pg_attribute a on a.attrelid = %s and a.attnum = k.n order by k.i",
            [attnums, rel],
        ).fetchall()
        return tuple(str(r[0]) for r in rows)

    pk_row = conn.execute(
        "select conkey from pg_constraint where conrelid = %s and contype = 'p'", [oid]
    ).fetchone()
    checks = []
    foreign_keys = []
    unique = []
    exclusions = []
    for name, contype, conkey, confrelid, confkey, ref_name, definition, operators in conn.execute(
        """
        select conname, contype, conkey, confrelid, confkey, confrelid::regclass::text,
               pg_get_constraintdef(oid),
               (select array_agg(format('operator(%%I.%%s)', n.nspname, op.oprname) order by u.i)
                from unnest(conexclop) with ordinality u(o, i)
                join pg_operator op on op.oid = u.o join pg_namespace n on n.oid = op.oprnamespace)
        from pg_constraint where conrelid = %s and contype in ('c', 'f', 'u', 'x') order by conname
        """,
        [oid],
    ).fetchall():
        if contype == "c":
            expression = re.sub(r"^CHECK\s*", "", str(definition))
            checks.append((str(name), names(conkey), expression))
        elif contype == "u":
            unique.append((str(name), names(conkey)))
        elif contype == "x":
            ops = [str(o) for o in operators or []]  # type: ignore[attr-defined]
            cols = names(conkey)
            if len(cols) == len(ops):  # one on expressions is left to the insert to enforce
                exclusions.append((str(name), tuple(zip(cols, ops, strict=True))))
        else:
            foreign_keys.append(
                ForeignKey(str(name), names(conkey), str(ref_name), names(confkey, confrelid))
            )
    return TableInfo(
        name=table,
        columns=columns,
        primary_key=names(pk_row[0]) if pk_row else (),
        checks=tuple(checks),
        foreign_keys=tuple(foreign_keys),
        unique=tuple(unique),
        exclusions=tuple(exclusions),
    )


def _check_header(header: list[str], info: TableInfo, path: Path, delimiter: str) -> list[str]:
    names = [h.strip() for h in header]
    known = {c.name for c in info.columns}
    if len(names) == 1 and names[0] not in known:
        for candidate in _LIKELY_DELIMITERS:
            if candidate != delimiter and candidate in names[0]:
                shown = "\\t" if candidate == "\t" else candidate
                raise LoadError(
                    f"{path}: line 1 has a single column {names[0][:80]!r}; the file looks "
                    f"{shown!r}-delimited, not {delimiter!r}-delimited (pass --delimiter '{shown}')"
                )
    problems = []
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"columns named more than once: {', '.join(duplicates)}")
    by_lower = {c.name.lower(): c.name for c in info.columns}
    unknown = [n for n in names if n not in known]
    case_only = [n for n in unknown if n.lower() in by_lower]
    if case_only:
        problems.append(
            "column names differ from the table's only in case (names are case-sensitive): "
            + ", ".join(f"{n!r} should be {by_lower[n.lower()]!r}" for n in case_only)
        )
    other_unknown = [n for n in unknown if n not in case_only]
    if other_unknown:
        problems.append(f"unknown columns: {', '.join(repr(n) for n in other_unknown)}")
    lowered = {n.lower() for n in names}
    # A required column present with the wrong case is reported above, not twice.
    missing = [c.name for c in info.columns if c.required and c.name.lower() not in lowered]
    if missing:
        problems.append(f"missing required columns: {', '.join(missing)}")
    if problems:
        expected = ", ".join(c.name + ("" if c.required else "?") for c in info.columns)
        raise LoadError(
            f"{path}: header does not match raw.{info.name}: "
            + "; ".join(problems)
            + f". Expected columns ({RAW_SCHEMA}.{info.name}, ? = optional): {expected}"
        )
    return names


def _records(
    path: Path,
    delimiter: str,
    n_fields: int | None,
    max_field_chars: int,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Generator[_Record, None, None]:
    """Yield the header (line 1) and then every data record, with any problem found in Python."""
    # The parser's own limit stops a quoted field that runs over many short lines from
    # growing without bound; a field over max_field_chars is reported more precisely below.
    csv.field_size_limit(max(max_record_bytes, max_field_chars) + 1)
    with path.open("rb") as fh:
        lines = _PhysicalLines(fh, max_record_bytes)
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
            yield _Record(start, row, problem, raw, lines.bytes_read)


def _input_error_sql(
    conn: psycopg.Connection[tuple[object, ...]], version_num: int
) -> Callable[[sql.Composable, str], sql.Composable]:
    """SQL that yields a parse error message for a text value and type, or NULL."""
    if version_num >= 160000:
        return lambda value, typ: sql.SQL("(pg_input_error_info({}, {})).message").format(
            value, sql.Literal(typ)
        )
    # PostgreSQL 15 has no pg_input_error_info: try the cast in a subtransaction (slower).
    conn.execute(
        """
        create or replace function pg_temp.storecast_input_error(value text, typ text)
        returns text language plpgsql as $$
        begin
            execute format('select %L::%s', value, typ);
            return null;
        exception when others then
            return sqlerrm;
        end $$
        """
    )
    return lambda value, typ: sql.SQL("pg_temp.storecast_input_error({}, {})").format(value, sql.Literal(typ))


@dataclass(frozen=True)
class CsvFormat:
    """How the file is written and how much of it may be held in memory at once."""

    delimiter: str = ","
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    #: A PostgreSQL ``to_timestamp`` pattern for date and time columns, e.g. ``DD/MM/YYYY``;
    #: ``None`` reads ISO 8601 only.
    date_format: str | None = None

    def records(self, path: Path, n_fields: int | None) -> Generator[_Record, None, None]:
        """The file's records, parsed with this format."""
        return _records(path, self.delimiter, n_fields, self.max_field_chars, self.max_record_bytes)


def load_csv(
    conn: psycopg.Connection[tuple[object, ...]],
    table: str,
    path: Path | str,
    mode: Mode = "append",
    all_or_nothing: bool = False,
    delimiter: str = ",",
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
    progress: Callable[[int, int], None] | None = None,
    date_format: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> LoadResult:
    """Load ``path`` into ``raw.<table>``.

    Parameters
    ----------
    conn:
        An autocommit connection; the load runs in its own transaction.
    table:
        Raw table name without schema, e.g. ``orders``.
    path:
        CSV file with a header line.
    mode:
        ``append`` rejects rows whose key already exists; ``upsert`` updates them.
    all_or_nothing:
        Load nothing (but still record the rejects) if any row is rejected.
    delimiter:
        Field separator.
    max_field_chars:
        Reject rows with a longer field.
    progress:
        Called with (bytes read, total bytes) while the file is staged.
    date_format:
        A PostgreSQL ``to_timestamp`` pattern (``DD/MM/YYYY``, ``MM/DD/YYYY HH24:MI``) for
        the date and time columns; without it only ISO 8601 is read, so that ``01/02/2026``
        is rejected rather than guessed.
    max_record_bytes:
        Reject, unread, a record longer than this.

    Returns
    -------
    LoadResult
        Counts, status and the first few rejection reasons.

    Raises
    ------
    LoadError
        When the file as a whole cannot be loaded (the load is still recorded as failed).
    """
    if mode not in MODES:
        raise LoadError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    path = Path(path)
    started = time.perf_counter()
    info = table_info(conn, table)
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    fmt = CsvFormat(delimiter, max_field_chars, max_record_bytes, date_format)
    result = LoadResult(load_id=0, table=f"{RAW_SCHEMA}.{table}", source_file=str(path), mode=mode)
    abandon_dead_loads(conn)
    # Committed before the load starts, so a load that is killed still leaves its row
    # ('running' until the next load finds its backend gone and marks it abandoned).
    row = conn.execute(
        """
        insert into raw.loads (table_name, source_file, mode, all_or_nothing, status, backend_pid, backend_started_at)
        select %s, %s, %s, %s, 'running', pid, backend_start from pg_stat_activity where pid = pg_backend_pid()
        returning load_id
        """,
        [result.table, result.source_file, mode, all_or_nothing],
    ).fetchone()
    assert row is not None
    result.load_id = int(str(row[0]))
    try:
        with conn.transaction():
            _load(conn, info, path, mode, all_or_nothing, fmt, progress, result)
    except BaseException as exc:
        result.status = "failed"
        result.message = str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"
        result.rows_loaded = result.rows_rejected = 0
        if not conn.closed:
            _finish(conn, result)
        result.seconds = time.perf_counter() - started
        if isinstance(exc, LoadError) or not isinstance(exc, Exception):
            raise
        raise LoadError(
            f"{path}: load into {result.table} failed and was rolled back: {result.message}"
        ) from exc
    result.seconds = time.perf_counter() - started
    return result


def abandon_dead_loads(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Mark loads still ``running`` whose backend is gone as ``abandoned``; returns how many.

    A load killed with its client (or a server that went down) never reached its own
    status update; its transaction was rolled back, so nothing of it is in the table.
    """
    cur = conn.execute(
        """
        update raw.loads l set status = 'abandoned', finished_at = now(),
               message = 'the loading process died before finishing (found ' || now()::text
                         || '); nothing of it was committed'
        where status = 'running'
          and not exists (
              select 1 from pg_stat_activity a
              where a.pid = l.backend_pid and a.backend_start = l.backend_started_at
          )
        """
    )
    return cur.rowcount


def _finish(conn: psycopg.Connection[tuple[object, ...]], result: LoadResult) -> None:
    """Record the outcome on the load's row."""
    conn.execute(
        """
        update raw.loads set rows_in = %s, rows_loaded = %s, rows_rejected = %s,
               finished_at = now(), status = %s, message = %s
        where load_id = %s
        """,
        [
            result.rows_in,
            result.rows_loaded,
            result.rows_rejected,
            result.status,
            result.message,
            result.load_id,
        ],
    )


def _header(path: Path, info: TableInfo, fmt: CsvFormat) -> list[str]:
    """The file's column names, checked against the table."""
    records = fmt.records(path, None)
    header_record = next(records, None)
    records.close()  # the rows are read again later, knowing the header's field count
    expected = ", ".join(c.name for c in info.columns)
    if header_record is not None and header_record.problem:
        hint = ""
        if "\r" in header_record.raw.rstrip("\r\n"):
            hint = (
                "; the file seems to end its lines with a carriage return only (old Mac style): "
                "convert them to LF or CRLF"
            )
        raise LoadError(
            f"{path}: the header (line 1) cannot be read: {header_record.problem}{hint}. "
            f"Expected a header line with columns: {expected}"
        )
    if header_record is None or not any(f.strip() for f in header_record.fields):
        raise LoadError(f"{path}: file is empty; expected a header line with columns: {expected}")
    return _check_header(header_record.fields, info, path, fmt.delimiter)


def _load(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    path: Path,
    mode: Mode,
    all_or_nothing: bool,
    fmt: CsvFormat,
    progress: Callable[[int, int], None] | None,
    result: LoadResult,
) -> None:
    total_bytes = path.stat().st_size
    columns = _header(path, info, fmt)
    if mode == "upsert" and not set(info.primary_key) <= set(columns):
        raise LoadError(
            f"{path}: --mode upsert needs the key columns {', '.join(info.primary_key)} in the header"
        )

    version_row = conn.execute("select current_setting('server_version_num')::int").fetchone()
    assert version_row is not None
    input_error = _input_error_sql(conn, int(str(version_row[0])))

    # Staged fields are c0..cN; the line number column has a name no table column will have.
    stage_cols = [sql.Identifier(f"c{i}") for i in range(len(columns))]
    conn.execute(
        sql.SQL(
            "create temp table _load_stage (_storecast_line_no bigint primary key, {}) on commit drop"
        ).format(sql.SQL(", ").join(sql.SQL("{} text").format(c) for c in stage_cols))
    )
    conn.execute("create temp table _load_rejects (_storecast_line_no bigint, reason text) on commit drop")
    # Line numbers and reasons only: the rejected text is read again when it is written,
    # so memory does not grow with the rejects' size.
    rejects: dict[int, str] = {}
    rows_in = 0
    copy_sql = sql.SQL("copy _load_stage (_storecast_line_no, {}) from stdin").format(
        sql.SQL(", ").join(stage_cols)
    )
    # Re-parse with the header's field count so mismatched rows are caught.
    records = fmt.records(path, len(columns))
    next(records)
    with conn.cursor().copy(copy_sql) as copy:
        for rec in records:
            rows_in += 1
            if rec.problem is not None:
                rejects[rec.line_no] = rec.problem
            else:
                copy.write_row([rec.line_no, *[v if v != "" else None for v in rec.fields]])
            if progress is not None and rows_in % 20_000 == 0:
                progress(rec.offset, total_bytes)
    if progress is not None:
        progress(total_bytes, total_bytes)
    result.rows_in = rows_in

    _check_rows(conn, info, columns, mode, input_error, fmt.date_format)

    for line, reason in conn.execute(
        "select _storecast_line_no, string_agg(reason, '; ' order by reason) from _load_rejects group by 1"
    ).fetchall():
        rejects[int(str(line))] = str(reason)
    result.rows_rejected = len(rejects)
    result.first_rejects = [(line, rejects[line]) for line in sorted(rejects)[:SUMMARY_REASONS]]

    if rejects and all_or_nothing:
        result.status = "rejected"
        result.rows_loaded = 0
        result.message = f"{len(rejects)} of {rows_in} rows rejected; nothing loaded (--all-or-nothing)"
    else:
        result.rows_loaded = _insert(conn, info, columns, mode)
        if rejects and not result.rows_loaded:
            result.status = "rejected"
            result.message = f"every one of {rows_in} rows rejected; nothing loaded"
        else:
            result.status = "partial" if rejects else "loaded"
            result.message = f"{result.rows_loaded} of {rows_in} rows loaded, {len(rejects)} rejected"

    if rejects:
        with conn.cursor().copy(
            "copy raw.load_rejects (load_id, table_name, source_file, line_no, raw_line, reason) from stdin"
        ) as copy:
            for rec in fmt.records(path, len(columns)):
                reason = rejects.get(rec.line_no)
                if reason is not None:
                    raw = rec.raw.rstrip("\r\n").replace("\x00", "\\x00")
                    copy.write_row(
                        [result.load_id, result.table, result.source_file, rec.line_no, raw, reason]
                    )
    _finish(conn, result)


def _is_temporal(type_name: str) -> bool:
    return type_name.startswith(("date", "timestamp"))


def _is_floating(type_name: str) -> bool:
    return type_name.startswith(("numeric", "real", "double precision", "decimal"))


def _apply_date_format(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    columns: list[str],
    staged: Callable[[str], sql.Composable],
    date_format: str,
) -> None:
    """Rewrite staged date and time fields from ``date_format`` to ISO 8601, rejecting
    those that do not match it (in a subtransaction per value: the format is the exception)."""
    conn.execute(
        """
        create or replace function pg_temp.storecast_to_iso(value text, pattern text)
        returns text language plpgsql as $$
        begin
            return to_char(to_timestamp(value, pattern), 'YYYY-MM-DD"T"HH24:MI:SS.USOF');
        exception when others then
            return null;
        end $$
        """
    )
    for name in columns:
        if not _is_temporal(info.column(name).type):
            continue
        value = staged(name)
        conn.execute(
            sql.SQL(
                "insert into _load_rejects select _storecast_line_no, format({fmt}, left({v}, 80)) from _load_stage "
                "where {v} is not null and pg_temp.storecast_to_iso({v}, {p}) is null"
            ).format(
                v=value,
                p=sql.Literal(date_format),
                fmt=sql.Literal(
                    f"{name}: expected a date in the format {date_format} (--date-format), got %L"
                ),
            )
        )
        conn.execute(
            sql.SQL(
                "update _load_stage set {v} = coalesce(pg_temp.storecast_to_iso({v}, {p}), {v}) where {v} is not null"
            ).format(v=value, p=sql.Literal(date_format))
        )


def _one_of(value: sql.Composable, words: tuple[str, ...], message: str) -> sql.Composable:
    """A CASE branch giving ``message`` (``%L`` is the value) when the value is one of ``words``."""
    return sql.SQL("when lower(trim({v})) = any({words}) then format({fmt}, {v})").format(
        v=value, words=sql.Literal(list(words)), fmt=sql.Literal(message)
    )


def _parse_reasons(
    info: TableInfo,
    columns: list[str],
    staged: Callable[[str], sql.Composable],
    input_error: Callable[[sql.Composable, str], sql.Composable],
) -> list[sql.Composable]:
    """Per column, the reason a staged text value cannot become the column's value, or NULL."""
    reasons: list[sql.Composable] = []
    for name in columns:
        col = info.column(name)
        value = staged(name)
        whens: list[sql.Composable] = []
        if _is_temporal(col.type):
            # Postgres reads 'yesterday' or 'now' relative to the load time:
            # a raw file must say which day it means, so the load is reproducible.
            for words, what in (
                (RELATIVE_DATE_WORDS, "is relative to the load time"),
                (SPECIAL_DATE_WORDS, "is not a calendar date"),
            ):
                whens.append(_one_of(value, words, f"{name}: %L {what}; write the date itself"))
            # Postgres would read 01/02/2026 as 2 January (DateStyle MDY) and reject
            # 13/02/2026: half a European file would load wrong without a word.
            whens.append(
                sql.SQL("when {v} !~ {iso} then format({fmt}, left({v}, 80))").format(
                    v=value,
                    iso=sql.Literal(ISO_8601),
                    fmt=sql.Literal(
                        f"{name}: expected an ISO 8601 date (YYYY-MM-DD, optionally with a time and offset), "
                        "got %L; name another order with --date-format, e.g. DD/MM/YYYY"
                    ),
                )
            )
        if _is_floating(col.type):
            # The CHECK constraints pass NaN ('NaN' > 0 is true in Postgres) and it would
            # flow into every sum downstream.
            whens.append(_one_of(value, NOT_FINITE_WORDS, f"{name}: expected a finite number, got %L"))
        whens.append(
            sql.SQL("when {err} is not null then format({fmt}, {err}, left({v}, 80))").format(
                v=value,
                err=input_error(value, col.type),
                fmt=sql.Literal(f"{name}: expected {col.type}, got %2$L (%1$s)"),
            )
        )
        null = (
            sql.SQL("when {v} is null then {msg}").format(
                v=value, msg=sql.Literal(f"{name}: a value is required")
            )
            if col.required
            else sql.SQL("when {v} is null then null").format(v=value)
        )
        reasons.append(sql.SQL("case {} {} end").format(null, sql.SQL(" ").join(whens)))
    return reasons


def _check_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    columns: list[str],
    mode: Mode,
    input_error: Callable[[sql.Composable, str], sql.Composable],
    date_format: str | None = None,
) -> None:
    """Fill ``_load_rejects`` and build ``_load_typed`` from the staged text rows."""
    position = {name: i for i, name in enumerate(columns)}

    def staged(name: str) -> sql.Composable:
        return sql.Identifier(f"c{position[name]}")

    # 0. Dates in another order than ISO 8601, when the user named it.
    if date_format:
        _apply_date_format(conn, info, columns, staged, date_format)

    # 1. Required values and type parsing, reported for every failing column.
    conn.execute(
        sql.SQL(
            "insert into _load_rejects select _storecast_line_no, reason from ("
            "select _storecast_line_no, unnest(array[{}]) as reason from _load_stage) r where reason is not null"
        ).format(sql.SQL(", ").join(_parse_reasons(info, columns, staged, input_error)))
    )
    conn.execute(
        sql.SQL(
            "create temp table _load_typed on commit drop as select s._storecast_line_no, {} from _load_stage s "
            "where not exists (select 1 from _load_rejects r where r._storecast_line_no = s._storecast_line_no)"
        ).format(
            sql.SQL(", ").join(
                sql.SQL("{}::{} as {}").format(staged(n), sql.SQL(info.column(n).type), sql.Identifier(n))
                for n in columns
            )
        )
    )

    # 2. The table's own CHECK constraints, evaluated on the typed rows.
    for name, check_columns, expression in info.checks:
        absent = [info.column(c) for c in check_columns if c not in columns]
        if any(c.has_default for c in absent):
            continue  # depends on a default the insert will fill in; the insert enforces it
        # Columns the file leaves out will be NULL in the table, so check them as NULL.
        rows = sql.SQL("(select t.*{} from _load_typed t)").format(
            sql.SQL("").join(
                sql.SQL(", null::{} as {}").format(sql.SQL(c.type), sql.Identifier(c.name)) for c in absent
            )
        )
        shown = sql.SQL(" || ', ' || ").join(
            sql.SQL("{} || '=' || coalesce({}::text, 'NULL')").format(sql.Literal(c), sql.Identifier(c))
            for c in check_columns
        )
        conn.execute(
            sql.SQL(
                "insert into _load_rejects select _storecast_line_no, {} || {} from {} t where not ({})"
            ).format(sql.Literal(f"violates {name} {expression}: "), shown, rows, sql.SQL(expression))
        )

    # 3. Keys: the primary key and every UNIQUE constraint, within the file and against the table.
    _check_keys(conn, info, columns, mode)
    _check_exclusions(conn, info, columns, mode)

    # 4. Foreign keys: referenced rows must exist.
    for fk in info.foreign_keys:
        if not set(fk.columns) <= set(columns):
            continue
        fk_text = sql.SQL(" || ', ' || ").join(
            sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in fk.columns
        )
        conn.execute(
            sql.SQL(
                "insert into _load_rejects select t._storecast_line_no, format({fmt}, {kt}) from _load_typed t"
                " where {notnull} and not exists (select 1 from {ref} r where {match})"
            ).format(
                fmt=sql.Literal(
                    f"{', '.join(fk.columns)}=%s not found in {fk.ref_table} ({', '.join(fk.ref_columns)})"
                ),
                kt=fk_text,
                notnull=sql.SQL(" and ").join(
                    sql.SQL("t.{} is not null").format(sql.Identifier(c)) for c in fk.columns
                ),
                ref=sql.SQL(fk.ref_table),
                match=sql.SQL(" and ").join(
                    sql.SQL("r.{} = t.{}").format(sql.Identifier(rc), sql.Identifier(c))
                    for c, rc in zip(fk.columns, fk.ref_columns, strict=True)
                ),
            )
        )


#: Rows of ``_load_typed`` not rejected so far: a rejected row never wins a key.
_ACCEPTED = sql.SQL(
    "(select * from _load_typed a where not exists "
    "(select 1 from _load_rejects r where r._storecast_line_no = a._storecast_line_no))"
)


def _check_keys(
    conn: psycopg.Connection[tuple[object, ...]], info: TableInfo, columns: list[str], mode: Mode
) -> None:
    """Reject duplicates of the primary key and of each UNIQUE constraint: within the file
    the first occurrence wins; against the table, append mode rejects an existing key and
    upsert mode a UNIQUE value held by another row."""
    pk = info.primary_key
    keys = ([("primary key", pk)] if pk else []) + [(f"unique constraint {n}", c) for n, c in info.unique]
    for what, key in keys:
        if not set(key) <= set(columns):
            continue  # the table fills a missing key column (identity) or leaves it NULL
        ids = sql.SQL(", ").join(sql.Identifier(k) for k in key)
        text = sql.SQL(" || ', ' || ").join(sql.SQL("t.{}::text").format(sql.Identifier(k)) for k in key)
        label = f"({', '.join(key)})"
        # NULLs never collide under UNIQUE, so only complete keys are compared.
        complete = sql.SQL(" and ").join(sql.SQL("t.{} is not null").format(sql.Identifier(k)) for k in key)
        conn.execute(
            sql.SQL(
                "insert into _load_rejects select _storecast_line_no, format({fmt}, key_text, first_line) from ("
                " select t._storecast_line_no, {kt} as key_text, first_value(t._storecast_line_no)"
                " over (partition by {k} order by t._storecast_line_no) as first_line"
                " from {rows} t where {complete}) d where _storecast_line_no <> first_line"
            ).format(
                fmt=sql.Literal(f"duplicate {label}=(%s) within the file ({what}): first seen on line %s"),
                kt=text,
                k=ids,
                rows=_ACCEPTED,
                complete=complete,
            )
        )
        is_pk = key == pk
        if is_pk and mode == "upsert":
            continue  # an existing key is updated
        match = sql.SQL(" and ").join(sql.SQL("x.{k} = t.{k}").format(k=sql.Identifier(k)) for k in key)
        if is_pk:
            fmt = (
                f"key {label}=(%s) already exists in {RAW_SCHEMA}.{info.name}; use --mode upsert to update it"
            )
        else:
            fmt = f"{label}=(%s) already exists in {RAW_SCHEMA}.{info.name} ({what})"
            if mode == "upsert" and pk and set(pk) <= set(columns):
                # The row being updated may keep its own value.
                fmt += " on another row"
                match = sql.SQL("{} and ({}) is distinct from ({})").format(
                    match,
                    sql.SQL(", ").join(sql.SQL("x.{}").format(sql.Identifier(k)) for k in pk),
                    sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in pk),
                )
        conn.execute(
            sql.SQL(
                "insert into _load_rejects select t._storecast_line_no, format({fmt}, {kt}) from {rows} t"
                " where {complete} and exists (select 1 from {tbl} x where {match})"
            ).format(
                fmt=sql.Literal(fmt),
                kt=text,
                rows=_ACCEPTED,
                complete=complete,
                tbl=raw_table(info.name),
                match=match,
            )
        )


def _conflict(parts: tuple[tuple[str, str], ...], left: str, right: str) -> sql.Composable:
    """Two rows conflict under an exclusion constraint when every operator holds."""
    return sql.SQL(" and ").join(
        sql.SQL("{}.{} {} {}.{}").format(
            sql.Identifier(left), sql.Identifier(c), sql.SQL(op), sql.Identifier(right), sql.Identifier(c)
        )
        for c, op in parts
    )


def _check_exclusions(
    conn: psycopg.Connection[tuple[object, ...]], info: TableInfo, columns: list[str], mode: Mode
) -> None:
    """Reject rows that conflict under an exclusion constraint: with an earlier row of the
    file (the first wins) or with a row already in the table."""
    for name, parts in info.exclusions:
        if not {c for c, _ in parts} <= set(columns):
            continue

        conn.execute(
            sql.SQL(
                "insert into _load_rejects select t._storecast_line_no, format({fmt}, min(e._storecast_line_no))"
                " from {rows} t join {rows} e on e._storecast_line_no < t._storecast_line_no and {c}"
                " group by t._storecast_line_no"
            ).format(
                fmt=sql.Literal(f"conflicts with line %s under exclusion constraint {name}"),
                rows=_ACCEPTED,
                c=_conflict(parts, "e", "t"),
            )
        )
        conn.execute(
            sql.SQL(
                "insert into _load_rejects select t._storecast_line_no, {msg} from {rows} t"
                " where exists (select 1 from {tbl} x where {c})"
            ).format(
                msg=sql.Literal(
                    f"conflicts with a row already in {RAW_SCHEMA}.{info.name} under exclusion constraint {name}"
                ),
                rows=_ACCEPTED,
                tbl=raw_table(info.name),
                c=_conflict(parts, "x", "t"),
            )
        )


def _insert(
    conn: psycopg.Connection[tuple[object, ...]], info: TableInfo, columns: list[str], mode: Mode
) -> int:
    """Move the accepted typed rows into the target table; returns rows written."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    statement = sql.SQL(
        "insert into {tbl} ({cols}) select {cols} from _load_typed t"
        " where not exists (select 1 from _load_rejects r where r._storecast_line_no = t._storecast_line_no)"
        " order by t._storecast_line_no"
    ).format(tbl=raw_table(info.name), cols=cols)
    if mode == "upsert":
        updates = [c for c in columns if c not in info.primary_key]
        conflict = sql.SQL(", ").join(sql.Identifier(k) for k in info.primary_key)
        if updates:
            statement = sql.SQL("{} on conflict ({}) do update set {}").format(
                statement,
                conflict,
                sql.SQL(", ").join(
                    sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in updates
                ),
            )
        else:
            statement = sql.SQL("{} on conflict ({}) do nothing").format(statement, conflict)
    cur = conn.execute(statement)
    return cur.rowcount
