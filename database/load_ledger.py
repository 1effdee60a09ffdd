"""The load ledger: ``raw.loads`` (one row per load, committed before the load starts
and finished, failed or abandoned after) and ``raw.load_rejects`` (every rejected row
with its reason)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg

from storecast.db import scalar

#: Rejection reasons shown in the summary.
SUMMARY_REASONS = 5


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


def finish(conn: psycopg.Connection[tuple[object, ...]], result: LoadResult) -> None:
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


def start(conn: psycopg.Connection[tuple[object, ...]], result: LoadResult, all_or_nothing: bool) -> None:
    """Record the load as ``running``, committed before it starts: a load that is killed
    still leaves its row (until the next load finds its backend gone and marks it
    abandoned). Sets ``result.load_id``."""
    result.load_id = scalar(
        conn,
        """
        insert into raw.loads (table_name, source_file, mode, all_or_nothing, status, backend_pid, backend_started_at)
        select %s, %s, %s, %s, 'running', pid, backend_start from pg_stat_activity where pid = pg_backend_pid()
        returning load_id
        """,
        [result.table, result.source_file, result.mode, all_or_nothing],
    )


def write_rejects(
    conn: psycopg.Connection[tuple[object, ...]], result: LoadResult, rows: Iterable[tuple[int, str, str]]
) -> None:
    """Keep each rejected row, ``(line number, raw text, reason)``, in ``raw.load_rejects``
    (NUL bytes, which Postgres text cannot hold, written as ``\\x00``)."""
    with conn.cursor().copy(
        "copy raw.load_rejects (load_id, table_name, source_file, line_no, raw_line, reason) from stdin"
    ) as copy:
        for line, raw, reason in rows:
            text = raw.rstrip("\r\n").replace("\x00", "\\x00")
            copy.write_row([result.load_id, result.table, result.source_file, line, text, reason])
