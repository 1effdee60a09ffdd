"""Writing one as-of date's scores: COPY into a staging table created in the
transaction, then swap it in as that date's partition of the score table, so a
failure anywhere leaves the previous rows as they were."""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import date

from psycopg import sql

from storecast.database.pgbinary import Column, copy_columns
from storecast.db import Conn, sibling
from storecast.scoring.inference import pipelined
from storecast.training.data import Frame


def write_scores(
    conn: Conn,
    table: str,
    as_of: date,
    frames: Callable[[Conn], Generator[Frame]],
    columns_for: Callable[[Frame], list[Column]],
) -> int:
    """Score rows chunk by chunk into a staging table and swap it in as ``as_of``'s
    partition of ``table``, in one transaction; returns the rows written.

    ``frames`` streams the rows to score from the connection it is given (a second
    one, so reading overlaps with writing); ``columns_for`` scores a chunk into the
    score table's columns. Everything is written in one transaction under an
    advisory lock: a failure anywhere leaves ``table`` as it was.
    """
    schema, name = table.split(".", 1)
    with sibling(conn) as reader, conn.transaction():
        # Score() holds the pipeline lock; this one also serialises direct writers of one table.
        conn.execute("select pg_advisory_xact_lock(hashtext('storecast.score.' || %s))", [table])
        # Created in this transaction, so no one else sees it before it is swapped in. The
        # check constraint lets the attach skip scanning it, and with the primary key in
        # place the attach has no index to build: it is maintained while rows stream in.
        staging = f"_staging_{name}"
        conn.execute(
            sql.SQL(
                "create table {} (like {} including defaults including constraints including indexes, "
                "check (as_of_date = {}))"
            ).format(sql.Identifier(schema, staging), sql.Identifier(schema, name), sql.Literal(as_of))
        )
        total = pipelined(
            frames(reader),
            columns_for,
            lambda columns: copy_columns(conn, sql.Identifier(schema, staging), columns),
        )
        replace_partition(conn, table, as_of, staging)
    return total


def replace_partition(conn: Conn, table: str, as_of: date, staging: str) -> None:
    """Make table ``staging`` (same schema as ``table``) the partition of ``table`` for ``as_of``.

    Call it inside the transaction that filled ``staging``: the previous partition is
    dropped and the new one attached at the same commit.
    """
    schema, name = table.split(".", 1)
    row = conn.execute("select ml.score_partition(%s, %s)", [name, as_of]).fetchone()
    assert row is not None
    partition = str(row[0])
    conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(schema, partition)))
    conn.execute(
        sql.SQL("alter table {} rename to {}").format(
            sql.Identifier(schema, staging), sql.Identifier(partition)
        )
    )
    # The primary key keeps the staging table's name through the rename; name it for the partition.
    for (constraint,) in conn.execute(
        "select conname from pg_constraint where conrelid = %s::regclass and contype = 'p'",
        [f'"{schema}"."{partition}"'],
    ).fetchall():
        conn.execute(
            sql.SQL("alter table {} rename constraint {} to {}").format(
                sql.Identifier(schema, partition),
                sql.Identifier(str(constraint)),
                sql.Identifier(f"{partition}_pkey"),
            )
        )
    conn.execute(
        sql.SQL("alter table {} attach partition {} for values in ({})").format(
            sql.Identifier(schema, name), sql.Identifier(schema, partition), sql.Literal(as_of)
        )
    )
    # The marts join and rank these rows next; give the planner their statistics now.
    conn.execute(sql.SQL("analyze {}").format(sql.Identifier(schema, partition)))
