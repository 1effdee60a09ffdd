"""Open connections to the configured server, starting the embedded one when needed."""

from __future__ import annotations

import sys
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import scalar_row

from storecast.database import server
from storecast.settings import Settings, embedded_status

#: A storecast connection (autocommit unless asked otherwise; rows as tuples).
Conn = psycopg.Connection[tuple[object, ...]]


def ensure_running(settings: Settings, quiet: bool = False) -> None:
    """Start the embedded server if storecast manages it and it is down."""
    if settings.embedded and not embedded_status(settings).running:
        if not quiet:
            print(f"starting the embedded Postgres in {settings.pgdata} ...", file=sys.stderr)
        server.start(settings)


def connect(settings: Settings, autocommit: bool = True) -> Conn:
    """Connect to the configured server (starting the embedded one if needed).

    Connections are autocommit by default; code that needs atomicity opens an
    explicit ``conn.transaction()`` block, which makes the unit of work visible.
    """
    ensure_running(settings)
    return psycopg.connect(settings.conninfo, autocommit=autocommit)


def sibling(conn: Conn) -> Conn:
    """A second autocommit connection to the server and database of ``conn``, as the same user."""
    return psycopg.connect(conn.info.dsn, password=conn.info.password, autocommit=True)


def scalar(conn: Conn, query: str | sql.SQL | sql.Composed, params: Params | None = None) -> Any:
    """The first column of the query's first row (None without a row), as psycopg decoded
    it: an ``int`` for an integer column, with no round trip through text."""
    return conn.cursor(row_factory=scalar_row).execute(query, params).fetchone()


def relation_columns(conn: Conn, relation: str) -> dict[str, str]:
    """Column name -> data type of ``schema.table``; empty when it does not exist."""
    schema, table = relation.split(".", 1)
    rows = conn.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        [schema, table],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}
