"""Overrides of labels and projections by people: ``raw.overrides``, kept with history.

Nothing is updated or deleted: each override is a new row, the latest row per key
(kind, product, store, demand period) is in force, and a row without a value
withdraws the one before it. The feature layer applies them (``stg_raw__overrides``):
a ``sell_through`` override is the item's label once its window has closed, a
``demand`` override replaces a period's units in the demand label and, for a period
still ahead, the forecast in ``marts.demand_forecast`` (and so the inventory plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from storecast.database.key_codes import as_written, code_field
from storecast.db import Conn

Kind = Literal["sell_through", "demand"]
#: What each kind is keyed by, besides the product; the one place the API and its checks read.
KINDS: dict[str, tuple[str, ...]] = {"sell_through": (), "demand": ("store_id", "period_start")}


class OverrideError(ValueError):
    """An override that cannot be recorded: says which field and what was expected."""


@dataclass(frozen=True)
class Override:
    """One override as recorded; ``value`` ``None`` withdraws the earlier one of its key."""

    kind: Kind
    product_id: int
    author: str
    reason: str
    value: float | None
    store_id: int | None = None
    period_start: date | None = None


def check_override(override: Override) -> None:
    """Raise :class:`OverrideError` naming the field when ``override`` does not fit its kind."""
    if override.kind not in KINDS:
        raise OverrideError(f"kind must be one of {', '.join(KINDS)}, not {override.kind!r}")
    keyed_by = KINDS[override.kind]
    for name in ("store_id", "period_start"):
        given = getattr(override, name) is not None
        if given and name not in keyed_by:
            raise OverrideError(f"{name} is not part of a {override.kind} override; leave it out")
        if not given and name in keyed_by:
            raise OverrideError(f"a {override.kind} override needs {name}")
    if override.kind == "sell_through" and override.value not in (None, 0, 1):
        raise OverrideError(
            f"value of a sell_through override is 1 (sells through) or 0, not {override.value}"
        )
    if override.value is not None and override.value < 0:
        raise OverrideError(f"value must be 0 or more, not {override.value}")
    for name in ("author", "reason"):
        if not getattr(override, name).strip():
            raise OverrideError(f"{name} must not be empty: say who records the override and why")


def key_of(conn: Conn, key_column: str, code: str) -> int:
    """The key a person names as the files write it (the marts' ``product_code``): its
    number in ``raw.key_codes``, or, for a key that no file wrote as a code, the number
    itself. Raises :class:`OverrideError` naming the field for an unknown code."""
    row = conn.execute(
        "select key_value, exists (select 1 from raw.key_codes where key_column = %(k)s) from "
        "(select 1) as one left join raw.key_codes on key_column = %(k)s and code = %(c)s",
        {"k": key_column, "c": code},
    ).fetchone()
    assert row is not None
    number, coded = row
    if number is not None:
        return int(str(number))
    if not coded and code.strip().isdigit():
        return int(code)
    raise OverrideError(f"{code_field(key_column)}: no code {code!r} in raw.key_codes (setting coded_keys)")


def override_from(conn: Conn, fields: dict[str, Any]) -> Override:
    """The override a request's ``fields`` describe, a product or store named by its number
    (``product_id``) or as the files write it (``product_code``: :func:`key_of`)."""
    fields = dict(fields)
    for key in ("product_id", "store_id"):
        code = fields.pop(code_field(key), None)
        if code is not None and fields.get(key) is not None:
            raise OverrideError(f"give {key} or its code, not both")
        if code is not None:
            fields[key] = key_of(conn, key, code)
    if fields.get("product_id") is None:
        raise OverrideError("product_id (or product_code) is required")
    return Override(**fields)


def record_override(conn: Conn, override: Override) -> dict[str, Any]:
    """Insert ``override`` into ``raw.overrides``; returns the row as stored.

    Raises :class:`OverrideError` naming the field when it does not fit its kind or
    names a product or store that is not in the raw tables.
    """
    check_override(override)
    try:
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                """
                insert into raw.overrides (kind, product_id, store_id, period_start, value, author, reason)
                values (%s, %s, %s, %s, %s, %s, %s)
                returning *
                """,
                [
                    override.kind,
                    override.product_id,
                    override.store_id,
                    override.period_start,
                    override.value,
                    override.author.strip(),
                    override.reason.strip(),
                ],
            ).fetchone()
    except psycopg.errors.ForeignKeyViolation as exc:
        column = "store_id" if "store_id" in str(exc.diag.message_detail) else "product_id"
        raise OverrideError(f"{column}: {exc.diag.message_detail}") from None
    assert row is not None
    return dict(row)


def list_overrides(
    conn: Conn,
    kind: str | None = None,
    product_id: int | None = None,
    store_id: int | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Overrides with their history, newest first, each marked ``in_force`` when it is
    the latest of its key and not a withdrawal; every filter is optional."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""
            with ranked as (
                select *,
                       row_number() over (
                           partition by kind, product_id, store_id, period_start
                           order by recorded_at desc, override_id desc
                       ) = 1 as latest
                from raw.overrides
            )
            select override_id, kind, product_id, store_id,
                   {as_written("product_id")} as product_code, {as_written("store_id")} as store_code,
                   period_start, value, author, reason, recorded_at, latest and value is not null as in_force
            from ranked
            where (%(kind)s::text is null or kind = %(kind)s)
              and (%(product_id)s::bigint is null or product_id = %(product_id)s)
              and (%(store_id)s::bigint is null or store_id = %(store_id)s)
              and (%(since)s::timestamptz is null or recorded_at >= %(since)s)
            order by recorded_at desc, override_id desc
            limit %(limit)s
            """,
            {"kind": kind, "product_id": product_id, "store_id": store_id, "since": since, "limit": limit},
        ).fetchall()
    return [dict(r) for r in rows]
