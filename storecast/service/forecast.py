"""``POST /forecast``: the latest forecast and inventory plan of the product x store
series a filter selects, read from the marts in one SQL statement that also writes
the JSON answer (building it row by row in Python cost most of a request's time).

Every filter is a bound parameter. Product, store (by key or as the files write it:
``product_code``), category and region select series;
horizon, price and discount select the periods of a series (a series without a
matching period is left out). The inventory figures are those of
``marts.inventory_plan``, which plans over the whole lead time whatever the horizon
asked for.
"""

from __future__ import annotations

from typing import TypeVar

from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field

from storecast.db import Conn, scalar

#: A key as a filter gives it: a number, or a code as the files write it.
Key = TypeVar("Key", int, str)
#: Columns of marts.inventory_plan returned per series.
INVENTORY_COLUMNS = (
    "on_hand",
    "stock_counted_on",
    "stock_status",
    "lead_time_demand",
    "safety_stock",
    "reorder_point",
    "min_level",
    "max_level",
    "suggested_order_units",
)
#: Columns of marts.demand_forecast returned per period.
PERIOD_COLUMNS = (
    "target_date",
    "horizon",
    "forecast_units",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "planned_price",
    "promo_discount_pct",
    "is_overridden",
    "model_forecast_units",
)
#: Columns of the series itself.
SERIES_COLUMNS = (
    "product_id",
    "store_id",
    "product_code",
    "store_code",
    "product_title",
    "category",
    "store_name",
    "store_region",
)
#: Stock statuses that are a warning in themselves (besides the plan's own warning text).
STATUS_WARNINGS = {
    "no stock count": "no stock count: load raw.inventory_snapshots to plan orders",
    "stock count too old": "the latest stock count is too old to plan an order on",
    "forecast shorter than the lead time": "the forecast does not reach over the whole lead time",
}


def _object(alias: str, columns: tuple[str, ...]) -> sql.Composed:
    """``json_build_object('c', alias.c, ...)`` for constant column names."""
    return sql.SQL("json_build_object({})").format(
        sql.SQL(", ").join(
            sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier(alias, c)) for c in columns
        )
    )


#: The whole answer as one JSON document, built by PostgreSQL: filters are bound
#: parameters, column names come from the constants above.
QUERY = sql.SQL("""
with periods as (
    select f.*
    from marts.demand_forecast f
    where (%(products)s::bigint[] is null or f.product_id = any(%(products)s))
      and (%(stores)s::bigint[] is null or f.store_id = any(%(stores)s))
      and (%(product_codes)s::text[] is null or f.product_code = any(%(product_codes)s))
      and (%(store_codes)s::text[] is null or f.store_code = any(%(store_codes)s))
      and (%(category)s::text is null or f.category = %(category)s)
      and (%(region)s::text is null or f.store_region = %(region)s)
      and (%(horizon)s::integer is null or f.horizon <= %(horizon)s)
      and (%(min_price)s::float8 is null or f.planned_price >= %(min_price)s)
      and (%(max_price)s::float8 is null or f.planned_price <= %(max_price)s)
      and (%(min_discount)s::float8 is null or f.promo_discount_pct >= %(min_discount)s)
),
chosen as (
    select distinct product_id, store_id from periods
    order by product_id, store_id
    limit %(limit)s + 1
),
series as (
    select
        {series_columns},
        min(periods.as_of_date) as as_of_date,
        json_agg({period} order by periods.horizon) as forecast,
        count(*) filter (where periods.is_overridden) as overridden
    from periods
    inner join chosen using (product_id, store_id)
    group by {series_columns}
),
documents as (
    select
        series.product_id,
        series.store_id,
        series.as_of_date,
        json_build_object(
            {series_fields},
            'forecast', series.forecast,
            'inventory', {inventory},
            'warnings', to_json(array_remove(array[
                plan.warning,
                case plan.stock_status {status_cases} end,
                case when series.overridden > 0
                    then series.overridden || ' period(s) use a person''s override instead of the model''s forecast'
                end
            ], null))
        ) as document
    from series
    left join marts.inventory_plan plan
        on plan.product_id = series.product_id and plan.store_id = series.store_id
        and plan.as_of_date = series.as_of_date
),
numbered as (
    select *, row_number() over (order by product_id, store_id) as n from documents
)
select json_build_object(
    'as_of_date', (select min(as_of_date) from numbered),
    'series', coalesce((select json_agg(document order by n) from numbered where n <= %(limit)s), '[]'::json),
    'truncated', (select count(*) > %(limit)s from numbered)
)::text
""").format(
    period=_object("periods", PERIOD_COLUMNS),
    series_columns=sql.SQL(", ").join(sql.Identifier("periods", c) for c in SERIES_COLUMNS),
    series_fields=sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(c), sql.Identifier("series", c)) for c in SERIES_COLUMNS
    ),
    inventory=_object("plan", INVENTORY_COLUMNS),
    status_cases=sql.SQL(" ").join(
        sql.SQL("when {} then {}").format(sql.Literal(status), sql.Literal(said))
        for status, said in STATUS_WARNINGS.items()
    ),
)


class ForecastQuery(BaseModel):
    """Filters of ``POST /forecast``; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    product: int | list[int] | None = Field(None, description="Product id, or a list of them.")
    store: int | list[int] | None = Field(None, description="Store id, or a list of them.")
    product_code: str | list[str] | None = Field(
        None, description="Product as the files write it (its code under the setting coded_keys), or a list."
    )
    store_code: str | list[str] | None = Field(
        None, description="Store as the files write it (its code under the setting coded_keys), or a list."
    )
    category: str | None = Field(None, description="Product category.")
    region: str | None = Field(None, description="Store region.")
    min_price: float | None = Field(None, ge=0, description="Lowest planned shelf price of a period.")
    max_price: float | None = Field(None, ge=0, description="Highest planned shelf price of a period.")
    min_discount: float | None = Field(
        None, ge=0, le=1, description="Smallest planned promotion discount of a period, as a fraction."
    )
    horizon: int | None = Field(None, ge=1, description="Periods ahead to return (default: all forecast).")
    limit: int = Field(200, ge=1, le=10_000, description="Most product x store series returned.")


def _listed(value: Key | list[Key] | None) -> list[Key] | None:
    return None if value is None else list(value) if isinstance(value, list) else [value]


def forecast(conn: Conn, query: ForecastQuery) -> str:
    """The series ``query`` selects, each with its periods, inventory plan and warnings,
    as a JSON document: ``{"as_of_date", "series": [...], "truncated"}``."""
    params = {
        "products": _listed(query.product),
        "stores": _listed(query.store),
        "product_codes": _listed(query.product_code),
        "store_codes": _listed(query.store_code),
        "category": query.category,
        "region": query.region,
        "min_price": query.min_price,
        "max_price": query.max_price,
        "min_discount": query.min_discount,
        "horizon": query.horizon,
        "limit": query.limit,
    }
    document: str = scalar(conn, QUERY, params)
    return document
