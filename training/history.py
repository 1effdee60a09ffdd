"""Whether a setting, not the data, holds a model's history short: advice that names it.

A label matures only on as-of dates at least its length before the end of the data, so a
short history leaves a model few dates (or none) to train on. The usual advice is to load
more history, but a retailer with years of data may have set ``history_weeks`` or
``demand_history_weeks`` below what a label needs: then the feature table starts well
after the first order, at the date the setting allows, and the advice names the setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from psycopg import sql
from psycopg.rows import class_row

from storecast.config import HISTORY_LENGTHS
from storecast.db import Conn, relation_columns, scalar
from storecast.training.spec import ModelSpec

#: A feature table's first as-of date within this many days of the first order, or of
#: the first date a setting allows, is where that bound lies: the first week start or
#: month's first day after a date is at most a month later.
SLACK_DAYS = 35


@dataclass(frozen=True)
class _Bounds:
    first: date | None
    latest: date | None
    first_order: date | None


def _bounds(conn: Conn, spec: ModelSpec) -> _Bounds | None:
    """The spec's relation's first and latest as-of dates and the first order's date."""
    schema, table = spec.relation.split(".", 1)
    return (
        conn.cursor(row_factory=class_row(_Bounds))
        .execute(
            sql.SQL(
                "select min({t}) as first, max({t}) as latest, "
                "(select min(first_order_date) from features.as_of_dates) as first_order from {r}"
            ).format(t=sql.Identifier(spec.time_column), r=sql.Identifier(schema, table))
        )
        .fetchone()
    )


def _built_with(conn: Conn, table: str) -> dict[str, int]:
    """The history settings the table was last built with (none for a table not recorded)."""
    settings = scalar(conn, "select settings from ml.build_settings where model = %s", [table]) or {}
    return {name: value for name in HISTORY_LENGTHS if isinstance(value := settings.get(name), int)}


def setting_advice(conn: Conn, spec: ModelSpec) -> str | None:
    """Which history setting to raise to give ``spec`` more as-of dates, with its value and
    the dates it cut; None when the data itself starts near the first as-of date (or the
    relation has no as-of dates), where the advice is to load more history."""
    if spec.time_column != "as_of_date" or spec.time_column not in relation_columns(conn, spec.relation):
        return None
    # as_of_dates built by a storecast before first_order_date: no advice until a build.
    if "first_order_date" not in relation_columns(conn, "features.as_of_dates"):
        return None
    bounds = _bounds(conn, spec)
    if bounds is None or bounds.first is None or bounds.latest is None or bounds.first_order is None:
        return None
    first, latest, first_order = bounds.first, bounds.latest, bounds.first_order
    if first - first_order <= timedelta(days=SLACK_DAYS):
        return None
    table = spec.relation.split(".", 1)[1]
    binding = {
        name: weeks
        for name, weeks in _built_with(conn, table).items()
        # Only one whose bound is the first date: a build deletes the dates a setting
        # leaves out, so a setting whose bound lies elsewhere (the data, the row budget)
        # did not cut it.
        if abs(first - (latest - timedelta(weeks=weeks))) <= timedelta(days=SLACK_DAYS)
    }
    if not binding:
        return None
    names = " and ".join(f"--var {name}, now {weeks}" for name, weeks in binding.items())
    return f"raise {names} (the as-of dates kept start on {first}, the orders on {first_order})"
