"""Bulk-load helpers shared by the sample loader and the CSV loader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg import sql

RAW_SCHEMA = "raw"


def raw_table(name: str) -> sql.Composed:
    """``raw.<name>`` as a safely quoted identifier."""
    return sql.SQL("{}.{}").format(sql.Identifier(RAW_SCHEMA), sql.Identifier(name))


@contextmanager
def foreign_keys_deferred_to_end(
    conn: psycopg.Connection[tuple[object, ...]], tables: Sequence[str]
) -> Iterator[None]:
    """Drop the foreign keys of ``raw.<tables>`` for the block and add them back after.

    Row-by-row foreign-key triggers dominate a multi-million-row COPY; adding
    the constraint back validates every row with one join instead (the
    "Populating a Database" advice in the PostgreSQL manual). Must run inside a
    transaction, so a failed validation rolls the whole load back. Constraint
    definitions come from the catalog, so nothing is written down twice.
    """
    rows = conn.execute(
        """
        select c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        from pg_constraint c
        join pg_class t on t.oid = c.conrelid
        join pg_namespace n on n.oid = t.relnamespace
        where c.contype = 'f' and n.nspname = %s and t.relname = any(%s)
        order by c.conname
        """,
        [RAW_SCHEMA, list(tables)],
    ).fetchall()
    for table, name, _ in rows:
        conn.execute(
            sql.SQL("alter table {} drop constraint {}").format(
                sql.SQL(str(table)), sql.Identifier(str(name))
            )
        )
    yield
    for table, name, definition in rows:
        conn.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                sql.SQL(str(table)), sql.Identifier(str(name)), sql.SQL(str(definition))
            )
        )
