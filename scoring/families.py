"""The score tables, one family each: the table, its keys, and the champion models
whose predictions fill its columns (an explicit registry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from psycopg import sql

from storecast.config import PERIOD_DAYS
from storecast.database.key_codes import as_written
from storecast.db import Conn, scalar
from storecast.training.spec import ModelSpec


class ScoringError(RuntimeError):
    """Scoring cannot run: no champion, a changed model, mismatched features, a concurrent run."""


@dataclass(frozen=True)
class Output:
    """One model's prediction column in a family's score table."""

    model: str
    column: str
    version_column: str | None = None  # wide tables keep one version column per model
    reasons_column: str = "reasons"  # the prediction's top reasons (storecast.training.explain)

    def version_sql(self, alias: str = "s") -> tuple[sql.Composable, sql.Composable]:
        """The score table's column holding this model's version, and the condition that
        picks this model's rows (of table alias ``alias``)."""
        if self.version_column:
            return sql.Identifier(self.version_column), sql.SQL("true")
        return sql.Identifier("model_version"), sql.SQL("{}.model_name = {}").format(
            sql.Identifier(alias), sql.Literal(self.model)
        )


@dataclass(frozen=True)
class Family:
    """A score table and the champion models that fill it."""

    name: str
    table: str
    keys: list[str]
    outputs: list[Output]
    rows: Callable[[Conn, ModelSpec, date], list[date]] = field(
        default=lambda conn, spec, as_of: [as_of], repr=False
    )
    #: Forecast tables also hold the target date and an interval per level (e.g. 80 -> lower_80, upper_80).
    interval_levels: tuple[int, ...] = ()
    #: What scoring should tell about the date: rows it did not score, inputs they lack
    #: ('' when nothing).
    note: Callable[[Conn, date], str] = field(default=lambda conn, as_of: "", repr=False)

    def columns(self) -> list[str]:
        """The columns of the score table, as scoring writes them: the one definition that
        ``database/init.sql`` and the ``stg_scores__*`` views are tested against."""
        columns = [*self.keys, "as_of_date"]
        if self.interval_levels:
            columns.append("target_date")
        for output in self.outputs:
            columns.append(output.column)
            columns += [output.version_column] if output.version_column else ["model_name", "model_version"]
        for level in self.interval_levels:
            columns += [f"lower_{level}", f"upper_{level}"]
        columns += [output.reasons_column for output in self.outputs]
        return [*dict.fromkeys([*columns, "run_id", "scored_at"])]


def _launch_dates(conn: Conn, spec: ModelSpec, as_of: date) -> list[date]:
    """Items still within their sell-through horizon on ``as_of``, or planned for later."""
    rows = conn.execute(
        sql.SQL("select distinct {t} from {rel} where {t} > %s").format(
            t=sql.Identifier(spec.time_column), rel=sql.Identifier(*spec.relation.split(".", 1))
        ),
        [as_of - timedelta(days=spec.horizon_days)],
    ).fetchall()
    return [r[0] for r in rows]  # type: ignore[misc]


def _built_setting(conn: Conn, table: str, name: str) -> str | None:
    """The value of setting ``name`` a feature table was last built with, as text (None
    when the table or the setting is not recorded)."""
    value: str | None = scalar(
        conn, "select settings ->> %s from ml.build_settings where model = %s", [name, table]
    )
    return value


#: Series named in the note on series off sale.
OFF_SALE_SHOWN = 3


def _series_off_sale(conn: Conn, as_of: date) -> str:
    """The series with a sales row in the year before ``as_of`` that have no forecast row on
    it: with demand_missing_periods 'unobserved', those not reported for demand_dormant_days
    (off sale; 'zero' keeps every series of that year)."""
    rows = conn.execute(
        f"""
        with recent as (
            select product_id, store_id, max(period_start) as last_reported
            from features.demand_sales
            where period_start < %(as_of)s and period_start >= %(as_of)s - 365
            group by product_id, store_id
        )
        select {as_written("product_id", "recent.product_id")}, {as_written("store_id", "recent.store_id")},
            recent.last_reported
        from recent
        where not exists (
            select 1 from features.demand_history as history
            where history.as_of_date = %(as_of)s
                and history.product_id = recent.product_id
                and history.store_id = recent.store_id
        )
        order by recent.last_reported desc, recent.product_id, recent.store_id
        """,
        {"as_of": as_of},
    ).fetchall()
    if not rows:
        return ""
    # The value demand_history was built with, which may not be today's setting.
    dormant = _built_setting(conn, "demand_history", "demand_dormant_days")
    days = f"{dormant} days" if dormant else "days"
    shown = ", ".join(f"product {p} at store {s} (last reported {d})" for p, s, d in rows[:OFF_SALE_SHOWN])
    more = f" and {len(rows) - OFF_SALE_SHOWN:,} more" if len(rows) > OFF_SALE_SHOWN else ""
    return (
        f"{len(rows):,} series off sale, not forecast: no sales row in the {days} before {as_of} "
        f"(setting demand_dormant_days): {shown}{more}"
    )


#: How far an event's day a year back may stand from the periods forecast and still be
#: theirs (52 weeks are 364 days; a week's start moves a day or two a year).
YEAR_SLACK_DAYS = 7
#: How far from the periods forecast a recurring event may move from one year to the next:
#: Easter by up to five weeks, a lunar festival by 11 days.
EVENT_DRIFT_DAYS = 60
#: Events named in the note on events not planned.
EVENTS_SHOWN = 5


def _events_not_planned(conn: Conn, as_of: date) -> str:
    """The events (the chain's calendar and the stores' own) that fell in the periods
    forecast a year earlier and have no day loaded near those periods now: a calendar not
    kept up to date. Their forecasts read no event where the model learnt one. Nothing
    before the first build that makes the calendars' staging views (an upgraded database)."""
    views = conn.execute(
        "select to_regclass('staging.stg_raw__calendar_events') is not null "
        "and to_regclass('staging.stg_raw__store_calendar_events') is not null"
    ).fetchone()
    if not views or not views[0]:
        return ""
    period = PERIOD_DAYS.get(
        _built_setting(conn, "demand_features", "demand_grain") or "", PERIOD_DAYS["week"]
    )
    rows = conn.execute(
        """
        with forecast as (
            select min(target_date) as first_day, max(target_date) + %(period)s - 1 as last_day
            from scores.demand_forecast
            where as_of_date = %(as_of)s
        ),
        events as (
            select event_date, event from staging.stg_raw__calendar_events
            union all
            select event_date, event from staging.stg_raw__store_calendar_events
        ),
        a_year_before as (
            select events.event, max(events.event_date) as event_date
            from events
            cross join forecast
            where events.event_date between forecast.first_day - 365 - %(slack)s
                and forecast.last_day - 365 + %(slack)s
            group by events.event
        )
        select a_year_before.event, a_year_before.event_date
        from a_year_before
        cross join forecast
        where not exists (
            select 1 from events
            where events.event = a_year_before.event
                and events.event_date between forecast.first_day - %(drift)s and forecast.last_day + %(drift)s
        )
        order by a_year_before.event_date, a_year_before.event
        """,
        {"as_of": as_of, "period": period, "slack": YEAR_SLACK_DAYS, "drift": EVENT_DRIFT_DAYS},
    ).fetchall()
    if not rows:
        return ""
    shown = ", ".join(f"{event} ({day})" for event, day in rows[:EVENTS_SHOWN])
    more = f" and {len(rows) - EVENTS_SHOWN:,} more" if len(rows) > EVENTS_SHOWN else ""
    return (
        f"{len(rows):,} event{'s' if len(rows) > 1 else ''} of the periods forecast a year ago "
        f"with no day loaded within {EVENT_DRIFT_DAYS} days of them now, so these forecasts read none: "
        f"{shown}{more}; if they recur, load their coming days (raw.calendar_events, "
        "raw.store_calendar_events)"
    )


def _demand_notes(conn: Conn, as_of: date) -> str:
    """What a demand forecast should tell: the series it left out, the events it lacks."""
    return "; ".join(
        note for note in (_series_off_sale(conn, as_of), _events_not_planned(conn, as_of)) if note
    )


#: The score tables, by family (explicit registry, one entry per table).
FAMILIES: dict[str, Family] = {
    "customer": Family(
        "customer",
        "scores.customer",
        ["customer_id"],
        [
            Output("purchase_30d", "purchase_probability", "purchase_model_version", "purchase_reasons"),
            Output("churn_90d", "churn_probability", "churn_model_version", "churn_reasons"),
            Output("clv_365d", "expected_spend", "clv_model_version", "clv_reasons"),
        ],
    ),
    "offer_redemption": Family(
        "offer_redemption",
        "scores.offer_redemption",
        ["customer_id", "offer_id"],
        [Output("offer_redemption_7d", "probability")],
    ),
    "sell_through": Family(
        "sell_through",
        "scores.sell_through",
        ["product_id"],
        [Output("sell_through", "probability")],
        _launch_dates,
    ),
    "demand": Family(
        "demand",
        "scores.demand_forecast",
        ["product_id", "store_id", "horizon"],
        [Output("demand", "units")],
        interval_levels=(80, 95),
        note=_demand_notes,
    ),
}
