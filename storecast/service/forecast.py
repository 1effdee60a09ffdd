"""``POST /forecast``: the latest forecast and inventory plan of the product x store
series a filter selects, read from the marts in one SQL statement.

Every filter is a bound parameter. Product, store, category and region select series;
horizon, price and discount select the periods of a series (a series without a
matching period is left out). The inventory figures are those of
``marts.inventory_plan``, which plans over the whole lead time whatever the horizon
asked for.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from storecast.db import Conn

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
#: Stock statuses that are a warning in themselves (besides the plan's own warning text).
STATUS_WARNINGS = {
    "no stock count": "no stock count: load raw.inventory_snapshots to plan orders",
    "stock count too old": "the latest stock count is too old to plan an order on",
    "forecast shorter than the lead time": "the forecast does not reach over the whole lead time",
}


class ForecastQuery(BaseModel):
    """Filters of ``POST /forecast``; every one is optional."""

    model_config = ConfigDict(extra="forbid")

    product: int | list[int] | None = Field(None, description="Product id, or a list of them.")
    store: int | list[int] | None = Field(None, description="Store id, or a list of them.")
    category: str | None = Field(None, description="Product category.")
    region: str | None = Field(None, description="Store region.")
    min_price: float | None = Field(None, ge=0, description="Lowest planned shelf price of a period.")
    max_price: float | None = Field(None, ge=0, description="Highest planned shelf price of a period.")
    min_discount: float | None = Field(
        None, ge=0, le=1, description="Smallest planned promotion discount of a period, as a fraction."
    )
    horizon: int | None = Field(None, ge=1, description="Periods ahead to return (default: all forecast).")
    limit: int = Field(200, ge=1, le=10_000, description="Most product x store series returned.")


def _ids(value: int | list[int] | None) -> list[int] | None:
    return None if value is None else [value] if isinstance(value, int) else list(value)


def _warnings(series: dict[str, Any], plan_warning: str | None, overridden: int) -> list[str]:
    warnings = [plan_warning] if plan_warning else []
    status = series["inventory"]["stock_status"]
    if status in STATUS_WARNINGS:
        warnings.append(STATUS_WARNINGS[status])
    if overridden:
        warnings.append(f"{overridden} period(s) use a person's override instead of the model's forecast")
    return warnings


def forecast(conn: Conn, query: ForecastQuery) -> dict[str, Any]:
    """The series ``query`` selects, each with its periods, inventory plan and warnings."""
    params = {
        "products": _ids(query.product),
        "stores": _ids(query.store),
        "category": query.category,
        "region": query.region,
        "min_price": query.min_price,
        "max_price": query.max_price,
        "min_discount": query.min_discount,
        "horizon": query.horizon,
        "limit": query.limit + 1,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""
            with periods as (
                select f.*
                from marts.demand_forecast f
                where (%(products)s::integer[] is null or f.product_id = any(%(products)s))
                  and (%(stores)s::integer[] is null or f.store_id = any(%(stores)s))
                  and (%(category)s::text is null or f.category = %(category)s)
                  and (%(region)s::text is null or f.store_region = %(region)s)
                  and (%(horizon)s::integer is null or f.horizon <= %(horizon)s)
                  and (%(min_price)s::float8 is null or f.planned_price >= %(min_price)s)
                  and (%(max_price)s::float8 is null or f.planned_price <= %(max_price)s)
                  and (%(min_discount)s::float8 is null or f.promo_discount_pct >= %(min_discount)s)
            ),
            series as (
                select distinct product_id, store_id from periods
                order by product_id, store_id
                limit %(limit)s
            )
            select periods.product_id, periods.store_id, periods.product_title, periods.category,
                   periods.store_name, periods.store_region, periods.as_of_date,
                   {", ".join(f"periods.{c}" for c in PERIOD_COLUMNS)},
                   {", ".join(f"plan.{c}" for c in INVENTORY_COLUMNS)},
                   plan.warning
            from periods
            inner join series using (product_id, store_id)
            left join marts.inventory_plan plan
                on plan.product_id = periods.product_id and plan.store_id = periods.store_id
                and plan.as_of_date = periods.as_of_date
            order by periods.product_id, periods.store_id, periods.horizon
            """,
            params,
        ).fetchall()
    grouped: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["product_id"], row["store_id"]].append(row)
    truncated = len(grouped) > query.limit
    out = []
    for periods in list(grouped.values())[: query.limit]:
        first = periods[0]
        series: dict[str, Any] = {
            key: first[key]
            for key in ("product_id", "store_id", "product_title", "category", "store_name", "store_region")
        }
        series["forecast"] = [{c: p[c] for c in PERIOD_COLUMNS} for p in periods]
        series["inventory"] = {c: first[c] for c in INVENTORY_COLUMNS}
        series["warnings"] = _warnings(
            series, first["warning"], sum(bool(p["is_overridden"]) for p in periods)
        )
        out.append(series)
    as_of: date | None = rows[0]["as_of_date"] if rows else None
    return {"as_of_date": as_of, "series": out, "truncated": truncated}
