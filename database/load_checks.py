"""The loader's checks in SQL, over the whole staged file at once: required values,
types (finite numbers, ISO 8601 or a named date format, keys written as codes), CHECK constraints, the
primary key, UNIQUE and exclusion constraints, and foreign keys. Each failing row gets
a reason naming the column (or constraint) and what was expected in ``_load_rejects``."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from storecast.database import key_codes
from storecast.database.bulk import RAW_SCHEMA, raw_table
from storecast.database.load_catalogue import TableInfo

Mode = Literal["append", "upsert"]
#: Date/time inputs Postgres accepts that depend on when the load runs.
RELATIVE_DATE_WORDS = ("now", "today", "tomorrow", "yesterday")
#: Date/time inputs Postgres accepts that are not a day written out.
SPECIAL_DATE_WORDS = ("epoch", "infinity", "+infinity", "-infinity", "allballs")
#: Numeric inputs Postgres accepts that are not finite numbers.
NOT_FINITE_WORDS = ("nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf")
#: Relative difference below which a value's decimals beyond its column's scale are a
#: binary float's last digits, not data (doubles hold about 16 significant digits).
FLOAT_DIGITS_TOLERANCE = "1e-12"
#: ISO 8601 dates, optionally with a time (``T`` or a space) and an offset.
ISO_8601 = (
    r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?\s*(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?\s*$"
)
#: What to do about a blank event name, in the chain's calendar or a store's.
EVENT_HINT = "an event is named, the same every year it recurs (e.g. easter): leave out a day without one"
#: What to do about a value a column rejects, where its type or CHECK constraint alone
#: does not say: the mistakes real exports make (refunds as negative prices, percentages
#: for fractions), by table and column.
VALUE_HINTS = {
    ("order_items", "unit_price"): "a price is 0 or more: write a return as a negative quantity "
    "at the price it was sold at",
    ("promotions", "discount_pct"): "a discount is a fraction of the price: 20 % is 0.2",
    ("offers", "discount_depth"): "a discount is a fraction of the price: 20 % is 0.2",
    ("shelf_prices", "shelf_price"): "a shelf price is above 0: leave out a period without a price "
    "(it is forecast at the regular price)",
    ("calendar_events", "event"): EVENT_HINT,
    ("store_calendar_events", "event"): EVENT_HINT,
}
#: A number written with a decimal comma: points group thousands (1.234,56) or are absent (1234,56).
DECIMAL_COMMA = r"^\s*[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?\s*$"
#: A number whose commas group thousands (1,234.56, 12,345).
THOUSANDS_COMMA = r"^\s*[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?\s*$"
#: A whole number written with one or two zero decimals (1.0, as pandas writes an integer
#: column that has a blank in it; 1.00). Three zeros are not read: 1.000 groups thousands
#: in much of Europe.
WHOLE_WITH_ZERO_DECIMALS = r"^\s*([+-]?[0-9]+)\.0{1,2}\s*$"
#: A number with decimals, as a key column rejects it.
DECIMAL_NUMBER = r"^\s*[+-]?[0-9]*\.[0-9]+\s*$"


@dataclass(frozen=True)
class NumberStyle:
    """A way of writing numbers other than Postgres's own (``1234.56``), named by the user."""

    #: The option that names it.
    flag: str
    #: How a number is written in it, as the reason says (``with a decimal comma``).
    described: str
    example: str
    #: A whole value written in it.
    pattern: str
    #: Characters that make a value need the rewrite (or be rejected).
    marks: str
    #: SQL turning ``{v}`` into Postgres's form.
    rewrite: str


#: Number styles by the name ``load_csv`` and the CSV format give them.
NUMBER_STYLES = {
    "decimal_comma": NumberStyle(
        "--decimal-comma",
        "with a decimal comma",
        "1.234,56",
        DECIMAL_COMMA,
        "[.,]",
        "replace(replace({v}, '.', ''), ',', '.')",
    ),
    "thousands_comma": NumberStyle(
        "--thousands-comma",
        "with commas grouping thousands",
        "1,234.56",
        THOUSANDS_COMMA,
        ",",
        "replace({v}, ',', '')",
    ),
}


def input_error_sql(
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


def _is_temporal(type_name: str) -> bool:
    return type_name.startswith(("date", "timestamp"))


def _is_floating(type_name: str) -> bool:
    return type_name.startswith(("numeric", "real", "double precision", "decimal"))


def _is_integer(type_name: str) -> bool:
    return type_name in ("smallint", "integer", "bigint")


def _is_number(type_name: str) -> bool:
    """Whether the type holds numbers, written with digits, a point and perhaps a comma."""
    return _is_floating(type_name) or _is_integer(type_name)


def _reject_then_rewrite(
    conn: psycopg.Connection[tuple[object, ...]],
    value: sql.Composable,
    invalid: sql.Composable,
    valid: sql.Composable,
    rewritten: sql.Composable,
    message: str,
) -> None:
    """Keep the staged rows whose ``value`` is ``invalid`` as rejects with ``message`` (``%L``
    is the value), then rewrite the ``valid`` values as ``rewritten``: a format the user
    named, turned into the one Postgres reads before the types are checked."""
    conn.execute(
        sql.SQL(
            "insert into _load_rejects select _storecast_line_no, format({fmt}, left({v}, 80)) from _load_stage "
            "where {invalid}"
        ).format(fmt=sql.Literal(message), v=value, invalid=invalid)
    )
    conn.execute(
        sql.SQL("update _load_stage set {v} = {rewritten} where {valid}").format(
            v=value, rewritten=rewritten, valid=valid
        )
    )


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
        as_iso = sql.SQL("pg_temp.storecast_to_iso({v}, {p})").format(v=value, p=sql.Literal(date_format))
        _reject_then_rewrite(
            conn,
            value,
            invalid=sql.SQL("{v} is not null and {iso} is null").format(v=value, iso=as_iso),
            valid=sql.SQL("{v} is not null").format(v=value),
            rewritten=sql.SQL("coalesce({iso}, {v})").format(iso=as_iso, v=value),
            message=f"{name}: expected a date in the format {date_format} (--date-format), got %L",
        )


def _apply_number_style(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    columns: list[str],
    staged: Callable[[str], sql.Composable],
    style: NumberStyle,
) -> None:
    """Rewrite staged numbers written in ``style`` (``1.234,56``, ``1,234.56``) as Postgres
    reads them (``1234.56``), rejecting a number whose points and commas do not fit it: with
    a decimal comma ``1.5`` is no number (a point only groups thousands), with commas
    grouping thousands ``2,50`` is none."""
    for name in columns:
        if not _is_number(info.column(name).type):
            continue
        value = staged(name)
        marked = sql.SQL("{v} ~ {m}").format(v=value, m=sql.Literal(style.marks))
        pattern = sql.Literal(style.pattern)
        _reject_then_rewrite(
            conn,
            value,
            invalid=sql.SQL("{m} and {v} !~ {p}").format(m=marked, v=value, p=pattern),
            valid=sql.SQL("{m} and {v} ~ {p}").format(m=marked, v=value, p=pattern),
            rewritten=sql.SQL(style.rewrite).format(v=value),
            message=f"{name}: expected a number {style.described} ({style.flag}), e.g. {style.example}, got %L",
        )


def _apply_whole_numbers(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    columns: list[str],
    staged: Callable[[str], sql.Composable],
) -> None:
    """Rewrite whole numbers written with zero decimals (``1.0``) in the integer columns as
    integers, in one pass over the staged rows: a key column with a blank in it comes out
    of pandas as floats, and ``1.0`` can mean nothing but 1."""
    integers = [staged(n) for n in columns if _is_integer(info.column(n).type)]
    if not integers:
        return
    pattern = sql.Literal(WHOLE_WITH_ZERO_DECIMALS)
    conn.execute(
        sql.SQL("update _load_stage set {sets} where {any}").format(
            sets=sql.SQL(", ").join(
                sql.SQL("{v} = case when {v} ~ {p} then regexp_replace({v}, {p}, '\\1') else {v} end").format(
                    v=v, p=pattern
                )
                for v in integers
            ),
            any=sql.SQL(" or ").join(sql.SQL("{v} ~ {p}").format(v=v, p=pattern) for v in integers),
        )
    )


def _when(value: sql.Composable, condition: sql.Composable, message: str) -> sql.Composable:
    """A CASE branch giving ``message`` (``%L`` is the value, cut to 80 characters) when ``condition`` holds."""
    return sql.SQL("when {c} then format({fmt}, left({v}, 80))").format(
        c=condition, fmt=sql.Literal(message), v=value
    )


def _one_of(value: sql.Composable, words: tuple[str, ...], message: str) -> sql.Composable:
    """A CASE branch giving ``message`` (``%L`` is the value) when the value is one of ``words``."""
    return sql.SQL("when lower(trim({v})) = any({words}) then format({fmt}, {v})").format(
        v=value, words=sql.Literal(list(words)), fmt=sql.Literal(message)
    )


def _hint(info: TableInfo, *columns: str) -> str:
    """``; what to do`` about a value of these columns that is rejected, or nothing."""
    hints = [VALUE_HINTS[info.name, c] for c in columns if (info.name, c) in VALUE_HINTS]
    return "".join(f"; {h}" for h in hints)


def _type_reasons(
    name: str,
    type_name: str,
    value: sql.Composable,
    input_error: Callable[[sql.Composable, str], sql.Composable],
    hint: str = "",
) -> list[sql.Composable]:
    """CASE branches giving the reason a staged text ``value`` is not of ``type_name``."""
    whens: list[sql.Composable] = []
    if _is_temporal(type_name):
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
            _when(
                value,
                sql.SQL("{v} !~ {iso}").format(v=value, iso=sql.Literal(ISO_8601)),
                f"{name}: expected an ISO 8601 date (YYYY-MM-DD, optionally with a time and offset), "
                "got %L; name another order with --date-format, e.g. DD/MM/YYYY",
            )
        )
    if _is_floating(type_name):
        # The CHECK constraints pass NaN ('NaN' > 0 is true in Postgres) and it would
        # flow into every sum downstream.
        whens.append(_one_of(value, NOT_FINITE_WORDS, f"{name}: expected a finite number, got %L"))
    if _is_number(type_name):
        # 2,50 is two and a half in much of Europe and no number to Postgres; 1,234 is a
        # thousand in the US: neither is guessed.
        styles = NUMBER_STYLES.values()
        whens.append(
            _when(
                value,
                sql.SQL("{v} ~ ',' and ({fits})").format(
                    v=value,
                    fits=sql.SQL(" or ").join(
                        sql.SQL("{v} ~ {p}").format(v=value, p=sql.Literal(st.pattern)) for st in styles
                    ),
                ),
                f"{name}: expected {type_name}, got %L: a comma is read neither as decimals nor as "
                "thousands; load the file with " + " or ".join(f"{st.flag} ({st.example})" for st in styles),
            )
        )
    if name in key_codes.KEY_COLUMNS:
        # A key written as a decimal (1.5, 1.000) is no code: setting coded_keys would load
        # it as one.
        whens.append(
            _when(
                value,
                sql.SQL("{v} ~ {p}").format(v=value, p=sql.Literal(DECIMAL_NUMBER)),
                f"{name}: expected a whole number ({type_name}), got %L",
            )
        )
        # A key written with letters is a code: say how to load it as one.
        hint += f"; for keys written as codes set coded_keys: [{name}]"
    whens.append(
        sql.SQL("when {err} is not null then format({fmt}, {err}, left({v}, 80))").format(
            v=value,
            err=input_error(value, type_name),
            fmt=sql.Literal(f"{name}: expected {type_name}, got %2$L (%1$s){hint.replace('%', '%%')}"),
        )
    )
    scale = re.fullmatch(r"numeric\(\d+,\s*(\d+)\)", type_name)
    if scale:
        # Postgres rounds a value with more decimals than the column keeps without a word
        # (1.799 a litre stored as 1.80): the file's value is not what would be kept. A
        # binary float's last digits (0.30000000000000004, as a program wrote 0.1 + 0.2)
        # are no data, and round as they would.
        whens.append(
            _when(
                value,
                sql.SQL(
                    "abs({v}::numeric - round({v}::numeric, {s})) > {tolerance}::numeric * greatest(abs({v}::numeric), 1)"
                ).format(
                    v=value, s=sql.Literal(int(scale[1])), tolerance=sql.Literal(FLOAT_DIGITS_TOLERANCE)
                ),
                f"{name}: expected at most {scale[1]} decimals ({type_name}), got %L; round it in the file",
            )
        )
    return whens


def _parse_reasons(
    info: TableInfo,
    columns: list[str],
    staged: Callable[[str], sql.Composable],
    input_error: Callable[[sql.Composable, str], sql.Composable],
    coded: dict[str, str],
) -> list[sql.Composable]:
    """Per column, the reason a staged text value cannot become the column's value, or NULL."""
    reasons: list[sql.Composable] = []
    for name in columns:
        col = info.column(name)
        value = staged(name)
        if name in coded:
            unknown, message = key_codes.unknown_code(name, value, coded[name])
            whens = [_when(value, unknown, message)]
        else:
            whens = _type_reasons(name, col.type, value, input_error, _hint(info, name))
        null = (
            sql.SQL("when {v} is null then {msg}").format(
                v=value, msg=sql.Literal(f"{name}: a value is required")
            )
            if col.required
            else sql.SQL("when {v} is null then null").format(v=value)
        )
        reasons.append(sql.SQL("case {} {} end").format(null, sql.SQL(" ").join(whens)))
    return reasons


def check_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    columns: list[str],
    mode: Mode,
    input_error: Callable[[sql.Composable, str], sql.Composable],
    date_format: str | None = None,
    number_style: NumberStyle | None = None,
    coded: dict[str, str] | None = None,
) -> None:
    """Fill ``_load_rejects`` and build ``_load_typed`` from the staged text rows; ``coded``
    names the columns read as codes (:func:`storecast.database.key_codes.coded_columns`)."""
    position = {name: i for i, name in enumerate(columns)}
    coded = coded or {}

    def staged(name: str) -> sql.Composable:
        return sql.Identifier(f"c{position[name]}")

    def typed(name: str) -> sql.Composable:
        if name in coded:
            return key_codes.number_of(name, staged(name))
        column = info.column(name)
        value = sql.SQL("{}::{}").format(staged(name), sql.SQL(column.type))
        if column.not_null and column.default is not None:
            # An empty field where the column may not be NULL says what leaving the column
            # out says: the default (a line's promo_flag false, a promotion's discount 0).
            return sql.SQL("coalesce({}, {})").format(value, sql.SQL(column.default))
        return value

    # 0. Dates in another order than ISO 8601, when the user named it.
    if date_format:
        _apply_date_format(conn, info, columns, staged, date_format)
    # 0b. Numbers with a decimal comma or commas grouping thousands, when the user said so.
    if number_style is not None:
        _apply_number_style(conn, info, columns, staged, number_style)
    # 0c. Whole numbers written with zero decimals, in integer columns not read as codes.
    _apply_whole_numbers(conn, info, [c for c in columns if c not in coded], staged)
    # 0d. Keys written as codes: their numbers, the table's own new codes numbered.
    key_codes.stage_codes(conn, info, coded, staged)

    # 1. Required values and type parsing, reported for every failing column.
    conn.execute(
        sql.SQL(
            "insert into _load_rejects select _storecast_line_no, reason from ("
            "select _storecast_line_no, unnest(array[{}]) as reason from _load_stage) r where reason is not null"
        ).format(sql.SQL(", ").join(_parse_reasons(info, columns, staged, input_error, coded)))
    )
    conn.execute(
        sql.SQL(
            "create temp table _load_typed on commit drop as select s._storecast_line_no, {} from _load_stage s "
            "where not exists (select 1 from _load_rejects r where r._storecast_line_no = s._storecast_line_no)"
        ).format(sql.SQL(", ").join(sql.SQL("{} as {}").format(typed(n), sql.Identifier(n)) for n in columns))
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
            ).format(
                sql.Literal(f"violates {name} {expression}: "),
                sql.SQL("{} || {}").format(shown, sql.Literal(_hint(info, *check_columns))),
                rows,
                sql.SQL(expression),
            )
        )

    # 3. Keys: the primary key and every UNIQUE constraint, within the file and against the table.
    _check_keys(conn, info, columns, mode, {name: staged(name) for name in coded})
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


#: Rows of ``_load_typed`` not rejected so far: a rejected row never wins a key, and after
#: the checks they are what a load writes to its table.
ACCEPTED_ROWS = sql.SQL(
    "(select * from _load_typed a where not exists "
    "(select 1 from _load_rejects r where r._storecast_line_no = a._storecast_line_no))"
)


def _check_keys(
    conn: psycopg.Connection[tuple[object, ...]],
    info: TableInfo,
    columns: list[str],
    mode: Mode,
    codes: dict[str, sql.Composable],
) -> None:
    """Reject duplicates of the primary key and of each UNIQUE constraint: within the file
    the first occurrence wins; against the table, append mode rejects an existing key and
    upsert mode a UNIQUE value held by another row. A key read from a code (``codes``: its
    staged column) is named by the code the file wrote."""

    def shown(column: str) -> sql.Composable:
        if column in codes:
            return sql.SQL(
                "(select s.{c} from _load_stage s where s._storecast_line_no = t._storecast_line_no)"
            ).format(c=codes[column])
        return sql.SQL("t.{}::text").format(sql.Identifier(column))

    pk = info.primary_key
    keys = ([("primary key", pk)] if pk else []) + [(f"unique constraint {n}", c) for n, c in info.unique]
    for what, key in keys:
        if not set(key) <= set(columns):
            continue  # the table fills a missing key column (identity) or leaves it NULL
        ids = sql.SQL(", ").join(sql.Identifier(k) for k in key)
        text = sql.SQL(" || ', ' || ").join(shown(k) for k in key)
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
                rows=ACCEPTED_ROWS,
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
                rows=ACCEPTED_ROWS,
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
                rows=ACCEPTED_ROWS,
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
                rows=ACCEPTED_ROWS,
                tbl=raw_table(info.name),
                c=_conflict(parts, "x", "t"),
            )
        )
