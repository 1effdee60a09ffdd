"""Load a CSV file into a raw table without losing a row.

A load is one transaction. The file is parsed in Python (header check, UTF-8,
field count, field size) and staged with COPY into a temporary table of text
columns; types, CHECK constraints, keys and foreign keys are then checked in SQL
over the whole file at once, so a large file loads at COPY speed rather than row
by row. Every rejected row is kept verbatim in ``raw.load_rejects`` with a reason
that names the column and what was expected, and every load is recorded in
``raw.loads``.

This module runs a load; its parts have modules of their own:
:mod:`storecast.database.load_catalogue` (what the table is, whether the header fits it),
:mod:`storecast.database.csv_records` (reading records in bounded memory),
:mod:`storecast.database.load_checks` (the SQL checks), :mod:`storecast.database.key_codes`
(keys written as codes, the setting ``coded_keys``) and :mod:`storecast.database.load_ledger`
(``raw.loads`` and ``raw.load_rejects``).

Conventions: comma-separated, first line is the header, UTF-8 (a BOM is
allowed), an empty field is NULL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import args_row

from storecast.database import key_codes
from storecast.database.bulk import RAW_SCHEMA, raw_table
from storecast.database.csv_records import (
    DEFAULT_MAX_FIELD_CHARS,
    DEFAULT_MAX_RECORD_BYTES,
    CsvFormat,
    check_encoding,
)
from storecast.database.load_catalogue import LoadError, TableInfo, check_header, table_info
from storecast.database.load_checks import ACCEPTED_ROWS, NUMBER_STYLES, Mode, check_rows, input_error_sql
from storecast.database.load_ledger import (
    SUMMARY_REASONS,
    LoadResult,
    abandon_dead_loads,
    finish,
    start,
    write_rejects,
)
from storecast.db import scalar

MODES: tuple[Mode, ...] = ("append", "upsert")


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
    decimal_comma: bool = False,
    thousands_comma: bool = False,
    coded_keys: Sequence[str] = (),
    encoding: str = "utf-8",
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
    decimal_comma:
        Numbers are written with a decimal comma (``1.234,56``, ``0,95``); without it (or
        ``thousands_comma``) a comma in a number is rejected rather than guessed.
    thousands_comma:
        Commas group the thousands of numbers (``1,234.56``, ``12,345``).
    coded_keys:
        Keys written as codes (the setting ``coded_keys``): their values are read through
        ``raw.key_codes`` (:mod:`storecast.database.key_codes`).
    encoding:
        The file's text encoding (``cp1252``, ``latin-1``): one that writes ASCII as ASCII.
        A line with bytes the encoding does not read is rejected with the byte's position.

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
    if decimal_comma and thousands_comma:
        raise LoadError(
            "--decimal-comma (1.234,56) and --thousands-comma (1,234.56) exclude each other: "
            "name the one the file is written in"
        )
    try:
        codec = check_encoding(encoding)
    except ValueError as exc:
        raise LoadError(f"--encoding: {exc}") from None
    style = "decimal_comma" if decimal_comma else "thousands_comma" if thousands_comma else None
    fmt = CsvFormat(delimiter, max_field_chars, max_record_bytes, date_format, style, codec)
    result = LoadResult(load_id=0, table=f"{RAW_SCHEMA}.{table}", source_file=str(path), mode=mode)
    abandon_dead_loads(conn)
    start(conn, result, all_or_nothing)
    try:
        with conn.transaction():
            _load(conn, info, path, mode, all_or_nothing, fmt, progress, result, coded_keys)
    except BaseException as exc:
        result.status = "failed"
        result.message = str(exc) if isinstance(exc, LoadError) else f"{type(exc).__name__}: {exc}"
        result.rows_loaded = result.rows_rejected = 0
        if not conn.closed:
            finish(conn, result)
        result.seconds = time.perf_counter() - started
        if isinstance(exc, LoadError) or not isinstance(exc, Exception):
            raise
        raise LoadError(
            f"{path}: load into {result.table} failed and was rolled back: {result.message}"
        ) from exc
    result.seconds = time.perf_counter() - started
    return result


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
    return check_header(header_record.fields, info, path, fmt.delimiter)


def _load(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    path: Path,
    mode: Mode,
    all_or_nothing: bool,
    fmt: CsvFormat,
    progress: Callable[[int, int], None] | None,
    result: LoadResult,
    coded_keys: Sequence[str],
) -> None:
    total_bytes = path.stat().st_size
    columns = _header(path, info, fmt)
    coded = key_codes.coded_columns(info, columns, coded_keys)
    if mode == "upsert" and not set(info.primary_key) <= set(columns):
        raise LoadError(
            f"{path}: --mode upsert needs the key columns {', '.join(info.primary_key)} in the header"
        )

    input_error = input_error_sql(conn, scalar(conn, "select current_setting('server_version_num')::int"))

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

    style = None if fmt.number_style is None else NUMBER_STYLES[fmt.number_style]
    check_rows(conn, info, columns, mode, input_error, fmt.date_format, style, coded)

    rejects.update(
        conn.cursor(row_factory=args_row(lambda line, reason: (int(line), str(reason))))
        .execute(
            "select _storecast_line_no, string_agg(reason, '; ' order by reason) from _load_rejects group by 1"
        )
        .fetchall()
    )
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

    key_codes.keep_loaded_codes(conn, info, coded, result.load_id)
    if rejects:
        # The rejected text is read again here, so memory does not grow with its size.
        again = fmt.records(path, len(columns))
        write_rejects(
            conn, result, ((r.line_no, r.raw, rejects[r.line_no]) for r in again if r.line_no in rejects)
        )
    finish(conn, result)


def _insert(
    conn: psycopg.Connection[tuple[object, ...]], info: TableInfo, columns: list[str], mode: Mode
) -> int:
    """Move the accepted typed rows into the target table; returns rows written."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    statement = sql.SQL(
        "insert into {tbl} ({cols}) select {cols} from {rows} t order by t._storecast_line_no"
    ).format(tbl=raw_table(info.name), cols=cols, rows=ACCEPTED_ROWS)
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
            # Every column is the key (a calendar): a row already there is the row as the
            # file writes it, so it counts as loaded, though "do nothing" writes 0 rows for it.
            conn.execute(sql.SQL("{} on conflict ({}) do nothing").format(statement, conflict))
            accepted = conn.execute(sql.SQL("select count(*) from {}").format(ACCEPTED_ROWS)).fetchone()
            return int(str(accepted[0])) if accepted else 0
    cur = conn.execute(statement)
    return cur.rowcount
