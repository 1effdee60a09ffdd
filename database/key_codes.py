"""Keys written as codes (SKU ``85123A``, store ``S01``): the setting ``coded_keys``.

Every raw table keys its rows by numbers (``bigint``), and features, models, scores and
marts join on them. A retailer whose files write a key as a code names that key in
``coded_keys``; the loader then reads every value of such a column as a code:

* in the file of the table the key belongs to (``product_id`` in ``products``), a code
  not seen before is **numbered** in ``raw.key_codes``, from one past the highest key
  already there or in the table, in the order the file first writes the codes;
* everywhere (that file and every file referring to the key by its name), a code
  **reads as its number**; a code with no number is rejected, naming the table to load
  first, so an unknown code can never pass as a number that happens to be a key;
* codes numbered for rows that were then rejected are **not kept**, so that a later
  file referring to one is told the code is unknown (and the HTTP service, which may
  add rows but never delete them, loads codes too).

Codes are text as written: ``00123`` and ``123`` are two codes. The marts show each
code beside its number (``product_code``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from storecast.database.bulk import raw_table
from storecast.database.load_catalogue import TableInfo

#: Keys a file may write as codes (the values the setting ``coded_keys`` may list): each
#: names the key column of the raw table it keys (``product_id`` of ``raw.products``) and
#: every column that refers to it by the same name.
KEY_COLUMNS = (
    "product_id",
    "store_id",
    "customer_id",
    "order_id",
    "promotion_id",
    "price_id",
    "offer_id",
    "impression_id",
    "redemption_id",
)
#: The table of codes and their numbers.
KEY_CODES = sql.SQL("raw.key_codes")


def code_field(key_column: str) -> str:
    """The name a key takes as the files write it: ``product_code`` for ``product_id``."""
    return key_column.removesuffix("_id") + "_code"


def as_written(key_column: str, key: str = "") -> str:
    """SQL for a key as the files write it: its code in ``raw.key_codes``, else the number as
    text (``key`` is the SQL of the number, by default the column ``key_column`` itself)."""
    key = key or key_column
    return (
        f"coalesce((select k.code from raw.key_codes k where k.key_column = '{key_column}' "
        f"and k.key_value = {key}), {key}::text)"
    )


def coded_columns(info: TableInfo, columns: Sequence[str], coded_keys: Sequence[str]) -> dict[str, str]:
    """The file's columns read as codes, each with the table that numbers its codes (its
    own table for the table's key, the referenced table for a foreign key)."""
    references = {c: fk.ref_table for fk in info.foreign_keys for c in fk.columns}
    return {
        name: references.get(name, f"raw.{info.name}")
        for name in columns
        if name in coded_keys and info.column(name).type == "bigint"
    }


def _numbers_its_codes(info: TableInfo, coded: dict[str, str], name: str) -> bool:
    return coded[name] == f"raw.{info.name}" and info.primary_key == (name,)


def stage_codes(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    coded: dict[str, str],
    staged: Callable[[str], sql.Composable],
) -> None:
    """The staged file's codes and their numbers in ``_load_codes``: those ``raw.key_codes``
    holds, and for the table's own key the new ones, numbered (kept by :func:`keep_loaded_codes`)."""
    if not coded:
        return
    conn.execute(
        "create temp table _load_codes (key_column text, code text, key_value bigint, is_new boolean,"
        " primary key (key_column, code)) on commit drop"
    )
    for name in coded:
        known = {"codes": KEY_CODES, "key": sql.Literal(name), "v": staged(name)}
        conn.execute(
            sql.SQL(
                "insert into _load_codes select {key}, k.code, k.key_value, false from {codes} k"
                " where k.key_column = {key} and k.code in (select {v} from _load_stage)"
            ).format(**known)
        )
        if not _numbers_its_codes(info, coded, name):
            continue
        # Until this load commits, no other may number codes: two would give two codes one number.
        conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(KEY_CODES))
        conn.execute(
            sql.SQL(
                """
                insert into _load_codes
                select {key}, new.code, base.highest + row_number() over (order by new.first_line), true
                from (
                    select {v} as code, min(_storecast_line_no) as first_line
                    from _load_stage
                    where {v} is not null
                    group by 1
                ) as new
                cross join (
                    select greatest(
                        (select max(key_value) from {codes} where key_column = {key}),
                        (select max({column}) from {table}),
                        0
                    ) as highest
                ) as base
                where not exists (select 1 from _load_codes k where k.key_column = {key} and k.code = new.code)
                """
            ).format(**known, column=sql.Identifier(name), table=raw_table(info.name))
        )


def number_of(name: str, value: sql.Composable) -> sql.Composable:
    """The number of the staged code ``value`` of key ``name`` (NULL for an unknown code)."""
    return sql.SQL(
        "(select k.key_value from _load_codes k where k.key_column = {key} and k.code = {v})"
    ).format(key=sql.Literal(name), v=value)


def unknown_code(name: str, value: sql.Composable, numbered_by: str) -> tuple[sql.Composable, str]:
    """When the staged code ``value`` has no number, and the reason (``%L`` is the code)."""
    return (
        sql.SQL("{number} is null").format(number=number_of(name, value)),
        f"{name}: no code %L in {numbered_by}; load {numbered_by} with it first (setting coded_keys)",
    )


def keep_loaded_codes(
    conn: psycopg.Connection[tuple[object, ...]], info: TableInfo, coded: dict[str, str], load_id: int
) -> None:
    """Write the codes this load numbered to ``raw.key_codes``, those whose rows were loaded
    (not a rejected row's, nor any under ``--all-or-nothing`` with a reject)."""
    for name in coded:
        if not _numbers_its_codes(info, coded, name):
            continue
        conn.execute(
            sql.SQL(
                "insert into {codes} (key_column, code, key_value, first_load)"
                " select c.key_column, c.code, c.key_value, {load} from _load_codes c"
                " where c.key_column = {key} and c.is_new"
                " and exists (select 1 from {table} t where t.{column} = c.key_value)"
                " order by c.key_value"
            ).format(
                codes=KEY_CODES,
                key=sql.Literal(name),
                load=sql.Literal(load_id),
                table=raw_table(info.name),
                column=sql.Identifier(name),
            )
        )
