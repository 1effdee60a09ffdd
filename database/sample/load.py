"""Write a generated sample retailer into the raw tables in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from storecast.database.bulk import foreign_keys_deferred_to_end, raw_table
from storecast.database.load_catalogue import loadable_tables
from storecast.database.pgbinary import copy_columns
from storecast.database.sample.generate import SampleData


@dataclass(frozen=True)
class LoadedTable:
    """Rows written to one raw table and how long it took."""

    table: str
    rows: int
    seconds: float


def load_sample(
    conn: psycopg.Connection[tuple[object, ...]],
    data: SampleData,
    source: str,
    on_table: Callable[[LoadedTable], None] | None = None,
) -> list[LoadedTable]:
    """Replace the contents of the raw tables with ``data``.

    All tables are truncated and reloaded in one transaction: a failure leaves
    the previous data as it was. Each table gets a ``raw.loads`` row with mode
    ``replace``. A raw table the sample has no rows for (``raw.shelf_prices``: it sets no
    prices ahead), overrides of the replaced data (``raw.overrides``) and the codes of its
    keys (``raw.key_codes``: the sample's keys are numbers) are emptied with it.
    """
    names = list(data.tables)
    done: list[LoadedTable] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('storecast.raw_load'))")
        replaced = sorted({*names, *loadable_tables(conn), "overrides", "key_codes"})
        conn.execute(sql.SQL("truncate {}").format(sql.SQL(", ").join(raw_table(name) for name in replaced)))
        with foreign_keys_deferred_to_end(conn, names):
            for name in names:
                started = time.perf_counter()
                rows = copy_columns(conn, raw_table(name), data.tables[name])
                loaded = LoadedTable(f"raw.{name}", rows, time.perf_counter() - started)
                done.append(loaded)
                if on_table is not None:
                    on_table(loaded)
        for loaded in done:
            conn.execute(
                """
                insert into raw.loads (table_name, source_file, mode, rows_in, rows_loaded,
                                       rows_rejected, finished_at, status, message)
                values (%s, %s, 'replace', %s, %s, 0, now(), 'loaded', 'sample data')
                """,
                [loaded.table, source, loaded.rows, loaded.rows],
            )
    conn.execute(sql.SQL("analyze {}").format(sql.SQL(", ").join(raw_table(name) for name in names)))
    return done
