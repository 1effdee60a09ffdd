"""dbt builds the feature layer on the tiny sample: point-in-time, incremental, leak-proof."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from storecast.build import (
    PROJECT_DIR,
    BuildError,
    build,
    run_dbt,
    scoring_date_outside_data,
    settings_changes,
)
from storecast.config import load_config
from storecast.database.sample import SampleData
from storecast.database.sample.load import load_sample
from storecast.db import Conn
from storecast.settings import Settings
from storecast.training.data import time_counts
from storecast.training.history import setting_advice
from storecast.training.spec import model_specs

FEATURE_MODELS = [
    "customer_features",
    "offer_features",
    "customer_offer_features",
    "customer_offer_candidates",
    "item_features",
    "demand_features",
]


def _one(conn: Conn, query: str, params: list[object] | dict[str, object] | None = None) -> object:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _date(conn: Conn, query: str, params: list[object] | None = None) -> date:
    value = _one(conn, query, params)
    assert isinstance(value, date)
    return value


def _int(conn: Conn, query: str, params: list[object] | None = None) -> int:
    value = _one(conn, query, params)
    assert isinstance(value, int)
    return value


def _dates(conn: Conn, query: str) -> list[date]:
    """The dates of a query's one array column."""
    value = _one(conn, query)
    assert isinstance(value, list)
    return value


@contextmanager
def _corrected(
    pg_settings: Settings, conn: Conn, product: tuple[object, object], impression: tuple[object, object]
) -> Iterator[None]:
    """Inside: a product's launch date and an impression's time corrected, as a `load --mode
    upsert` would, and the two one-row-per-entity tables built. After: both restored and built."""
    select = ["item_features", "customer_offer_features"]
    (product_id, launched_at), (impression_id, shown_at) = product, impression
    update_product = "update raw.products set launched_at = %s where product_id = %s"
    update_impression = "update raw.impressions set shown_at = %s where impression_id = %s"
    before = [
        _one(conn, "select launched_at from raw.products where product_id = %s", [product_id]),
        _one(conn, "select shown_at from raw.impressions where impression_id = %s", [impression_id]),
    ]
    try:
        conn.execute(update_product, [launched_at, product_id])
        conn.execute(update_impression, [shown_at, impression_id])
        build(pg_settings, select=select)
        yield
    finally:
        conn.execute(update_product, [before[0], product_id])
        conn.execute(update_impression, [before[1], impression_id])
        build(pg_settings, select=select)


@pytest.fixture(scope="module")
def built(pg_settings: Settings, tiny: SampleData) -> date:
    """Tiny sample, freshly loaded, fully built; returns the scoring date."""
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        load_sample(conn, tiny, source="tests: feature build")
        build(pg_settings, full_refresh=True)
        scoring = _one(conn, "select as_of_date from features.as_of_dates where is_scoring_date")
    assert isinstance(scoring, date)
    return scoring


def test_every_feature_model_has_rows(conn: Conn, built: date) -> None:
    for model in FEATURE_MODELS:
        assert int(str(_one(conn, f"select count(*) from features.{model}"))) > 0, model


def test_scoring_date_is_the_day_after_the_latest_order(conn: Conn, built: date) -> None:
    latest = _one(conn, "select max(ordered_at)::date from raw.orders")
    assert built == latest + timedelta(days=1)  # type: ignore[operator]


def _last_build_nodes(pg_settings: Settings) -> dict[str, set[str]]:
    """The nodes dbt's last invocation ran, by resource type (``model``, ``test``, ``unit_test``)."""
    results = json.loads((pg_settings.dbt_dir / "target" / "run_results.json").read_text(encoding="utf-8"))
    nodes: dict[str, set[str]] = {}
    for result in results["results"]:
        nodes.setdefault(result["unique_id"].split(".")[0], set()).add(result["unique_id"])
    return nodes


def test_a_build_runs_dbt_unit_tests_unless_told_not_to(pg_settings: Settings, built: date) -> None:
    build(pg_settings, select=["staging"])
    everything = _last_build_nodes(pg_settings)
    build(pg_settings, select=["staging"], unit_tests=False)
    without = _last_build_nodes(pg_settings)
    assert everything.get("unit_test"), everything.keys()
    assert "unit_test" not in without
    assert without["model"] == everything["model"]
    assert without["test"] == everything["test"]


def test_customer_features_match_an_independent_point_in_time_query(conn: Conn, built: date) -> None:
    as_of = built - timedelta(days=7 * 20)
    as_of = _one(conn, "select max(as_of_date) from features.as_of_dates where as_of_date <= %s", [as_of])  # type: ignore[assignment]
    mismatches = _one(
        conn,
        """
        with truth as (
            select customer_id,
                   %(d)s::date - max(ordered_at::date) as recency_days,
                   count(*) filter (where ordered_at::date >= %(d)s::date - 90) as frequency_90d
            from raw.orders
            where customer_id is not null and ordered_at::date < %(d)s::date
              and ordered_at::date >= %(d)s::date - 730
            group by customer_id
        ),
        future as (
            select customer_id, bool_or(ordered_at::date < %(d)s::date + 30) as bought
            from raw.orders where customer_id is not null and ordered_at::date >= %(d)s::date
            group by customer_id
        )
        select count(*)
        from truth
        full join (select * from features.customer_features where as_of_date = %(d)s) f
          on f.customer_id = truth.customer_id
        left join future on future.customer_id = truth.customer_id
        where f.customer_id is null or truth.customer_id is null
           or f.recency_days <> truth.recency_days or f.frequency_90d <> truth.frequency_90d
           or f.purchased_in_horizon is distinct from coalesce(future.bought, false)
        """,
        {"d": as_of},
    )
    assert mismatches == 0


def test_labels_are_null_exactly_when_their_window_is_incomplete(conn: Conn, built: date) -> None:
    wrong = _one(
        conn,
        """
        select count(*) from features.customer_features
        where (purchased_in_horizon is null) <> (as_of_date + 30 > observed_until)
           or (churned_in_horizon is null) <> (as_of_date + 90 > observed_until)
           or (spend_in_horizon is null) <> (as_of_date + 365 > observed_until)
        """,
    )
    assert wrong == 0
    matured = _one(conn, "select count(spend_in_horizon) from features.customer_features")
    assert int(str(matured)) > 0


def test_demand_labels_are_observed_units(conn: Conn, built: date) -> None:
    mismatches = _one(
        conn,
        """
        select count(*) from features.demand_features f
        left join (
            select i.product_id, o.store_id, o.ordered_at::date as day, sum(i.quantity) as units
            from raw.order_items i join raw.orders o using (order_id) group by 1, 2, 3
        ) s on s.product_id = f.product_id and s.store_id = f.store_id and s.day = f.target_date
        where f.units is not null and f.units <> coalesce(s.units, 0)
        """,
    )
    assert mismatches == 0
    assert (
        _one(
            conn,
            "select count(*) from features.demand_features where units is not null and target_date >= observed_until",
        )
        == 0
    )


def test_time_of_year_terms_follow_the_target_date(conn: Conn, built: date) -> None:
    harmonics = sorted(
        int(c.removeprefix("target_year_sin_")) for c in _columns(conn, "demand_features") if "year_sin_" in c
    )
    terms = ", ".join(f"target_year_sin_{k}, target_year_cos_{k}" for k in harmonics)
    rows = conn.execute(f"select distinct target_date, {terms} from features.demand_features").fetchall()
    assert harmonics
    assert len({r[0] for r in rows}) == len(rows) > 1
    for target, *values in rows:
        assert isinstance(target, date)
        # Computed here from the day of year, apart from the SQL: day 1 is angle 0, a year 365.25 days.
        angle = 2 * math.pi * (target.timetuple().tm_yday - 1) / 365.25
        expected = [f(k * angle) for k in harmonics for f in (math.sin, math.cos)]
        assert values == pytest.approx(expected, abs=1e-9), target


def test_candidate_pool_grows_with_customers_not_customers_times_offers(conn: Conn, built: date) -> None:
    row = conn.execute(
        "select count(*), count(distinct customer_id), "
        "(select count(*) from features.offer_features where as_of_date = %s) "
        "from features.customer_offer_candidates where as_of_date = %s",
        [built, built],
    ).fetchone()
    assert row is not None
    pairs, customers, offers = (int(str(value)) for value in row)
    assert customers > 0
    assert pairs < customers * offers
    assert pairs <= customers * offers * 3 / 10 + customers  # top 3 of 10 categories


def _columns(conn: Conn, table: str) -> set[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = 'features' and table_name = %s",
        [table],
    ).fetchall()
    return {str(r[0]) for r in rows}


def _missing_column_warnings(settings: Settings) -> int:
    """dbt's warnings about documented columns missing from a table, in all its logs so far
    (dbt rotates its log file, keeping the older ones)."""
    return sum(
        path.read_bytes().count(b"specified in the schema but are not present")
        for path in (settings.dbt_dir / "logs").glob("dbt.log*")
    )


def test_weekly_demand_grain(pg_settings: Settings, conn: Conn, built: date) -> None:
    messages: list[str] = []
    missing_columns_before = _missing_column_warnings(pg_settings)
    try:
        # No --full-refresh: the build sees that demand_grain changed and rebuilds by itself.
        build(
            pg_settings, load_config(["demand_grain=week"]), select=["+demand_features"], say=messages.append
        )
        weekdays = conn.execute(
            "select distinct extract(isodow from target_date)::int from features.demand_features"
        ).fetchall()
        mismatches = _one(
            conn,
            """
            select count(*) from features.demand_features f
            left join (
                select i.product_id, o.store_id, date_trunc('week', o.ordered_at)::date as week,
                       sum(i.quantity) as units
                from raw.order_items i join raw.orders o using (order_id) group by 1, 2, 3
            ) s on s.product_id = f.product_id and s.store_id = f.store_id and s.week = f.target_date
            where f.units is not null and f.units <> coalesce(s.units, 0)
            """,
        )
        horizon_2 = _one(
            conn, "select min(target_date - as_of_date) from features.demand_features where horizon = 2"
        )
        weekly_columns = _columns(conn, "demand_features")
        # The last loaded week is fully observed, so it is a label.
        last_week_labelled = _one(
            conn,
            """
            select count(*) from features.demand_features
            where units is not null
              and target_date = (select date_trunc('week', max(ordered_at))::date from raw.orders)
            """,
        )
    finally:
        build(pg_settings, select=["+demand_features"], say=messages.append)
    assert weekdays == [(1,)]
    assert mismatches == 0
    assert horizon_2 == 7
    assert {"units_lag_1", "units_lag_52", "units_mean_13", "units_same_period_last_year"} <= weekly_columns
    assert not {"target_day_of_week", "units_lag_7", "units_mean_same_weekday"} & weekly_columns
    assert int(str(last_week_labelled)) > 0
    # Both builds said why they rebuilt, naming the table and the setting.
    assert any("demand_features: demand_grain was 'day', now 'week'" in m for m in messages)
    assert any("demand_features: demand_grain was 'week', now 'day'" in m for m in messages)
    assert "target_day_of_week" in _columns(conn, "demand_features")
    # The columns documented for the other grain are not reported missing (persist_docs),
    # at either grain.
    assert _missing_column_warnings(pg_settings) == missing_columns_before


def test_target_promotions_match_an_independent_query(conn: Conn, built: date) -> None:
    # A promotion applies to its own store, or to every store when it names none; where
    # several cover a period, the deepest discount counts and any feature ad does; any
    # promotion at all makes the period a promoted one.
    mismatches, chain_wide, store_only = (
        int(str(v))
        for v in conn.execute(
            """
            select
                count(*) filter (where f.promo_discount_pct <> coalesce(p.discount, 0)
                                    or f.promo_feature_ad <> coalesce(p.feature_ad, false)
                                    or f.promo_planned <> (p.discount is not null)),
                count(*) filter (where p.chain_wide and f.promo_discount_pct > 0),
                count(*) filter (where p.store_only and f.promo_discount_pct > 0)
            from features.demand_features f
            left join lateral (
                select max(r.discount_pct) as discount, bool_or(r.feature_ad) as feature_ad,
                       bool_and(r.store_id is null) as chain_wide, bool_and(r.store_id is not null) as store_only
                from raw.promotions r
                where r.product_id = f.product_id
                  and (r.store_id = f.store_id or r.store_id is null)
                  and f.target_date between r.start_date and r.end_date
            ) p on true
            """
        ).fetchone()
        or ()
    )
    assert mismatches == 0
    assert chain_wide > 0
    assert store_only > 0


def test_category_promotion_context_matches_an_independent_count(conn: Conn, built: date) -> None:
    mismatches = _one(
        conn,
        """
        with category_period as (
            select store_id, category, as_of_date, horizon, count(*) as products,
                   count(*) filter (where promo_discount_pct > 0) as promoted,
                   sum(promo_discount_pct) as discount_sum
            from features.demand_features group by 1, 2, 3, 4
        )
        select count(*) from features.demand_features f join category_period g
            using (store_id, category, as_of_date, horizon)
        where f.category_promo_share is distinct from
                  (g.promoted - (f.promo_discount_pct > 0)::int)::float8 / nullif(g.products - 1, 0)
           or abs(coalesce(f.category_discount_mean, -1)
                  - coalesce((g.discount_sum - f.promo_discount_pct) / nullif(g.products - 1, 0), -1)) > 1e-9
        """,
    )
    assert mismatches == 0
    promoted = _one(conn, "select count(*) from features.demand_features where category_promo_share > 0")
    assert int(str(promoted)) > 0


def _independent_elasticities(conn: Conn, as_of_dates: list[date]) -> pd.DataFrame:
    """demand_price_elasticities' definition, restated in pandas from the raw promotions
    (the sample's grain, a day; its missing periods, zero): per product, the slope of
    log(1 + units) on ln(1 - planned discount) through the origin. Each series runs from
    its first day with sales to its last, a day without a sales row selling 0; each day's
    price is compared with the series' 13 days before it, and each day not out of stock's
    units with the series' 13 such days before it (at least 4); less the mean of the
    deviations of its store's products that day where there are others, else of every
    series', a day no other series sold left out; summed over stores and the days
    before the as-of date, drawn towards the slope pooled over products with a weight of 50."""
    sales = pd.DataFrame(
        conn.execute(
            "select product_id, store_id, period_start, units from features.demand_sales"
        ).fetchall(),
        columns=["product_id", "store_id", "period_start", "units"],
    )
    spans = sales.groupby(["product_id", "store_id"]).period_start.agg(["min", "max"])
    days = pd.concat(
        pd.DataFrame(
            {"product_id": product, "store_id": store, "period_start": pd.date_range(first, last).date}
        )
        for (product, store), first, last in zip(spans.index, spans["min"], spans["max"], strict=True)
    )
    days = days.merge(sales, on=["product_id", "store_id", "period_start"], how="left")
    days["units"] = days.units.fillna(0.0)
    promotions = pd.DataFrame(
        conn.execute(
            "select product_id, store_id, start_date, end_date, discount_pct::float8 from raw.promotions"
        ).fetchall(),
        columns=["product_id", "promo_store", "start_date", "end_date", "discount"],
    )
    matched = days.merge(promotions, on="product_id")
    matched = matched[
        (matched.promo_store.isna() | (matched.promo_store == matched.store_id))
        & (matched.start_date <= matched.period_start)
        & (matched.period_start <= matched.end_date)
    ]
    discount = matched.groupby(["product_id", "store_id", "period_start"]).discount.max()
    days = days.join(discount, on=["product_id", "store_id", "period_start"]).sort_values(
        ["product_id", "store_id", "period_start"]
    )
    days["price"] = np.log(1 - days.discount.fillna(0.0))
    days["price_deviation"] = days.price - days.groupby(["product_id", "store_id"]).price.transform(
        lambda column: column.shift(1).rolling(13, min_periods=1).mean()
    )
    # A day with a sale or none, out of stock, is left out of the units (it sold less than
    # the deal drew), not of the prices.
    stock_outs = pd.DataFrame(
        conn.execute("select product_id, store_id, period_start from features.demand_stock_outs").fetchall(),
        columns=["product_id", "store_id", "period_start"],
    ).assign(out_of_stock=True)
    days = days.merge(stock_outs, on=["product_id", "store_id", "period_start"], how="left")
    days = days[days.out_of_stock.isna()].drop(columns="out_of_stock")
    days["log_units"] = np.log1p(days.units.astype(float))
    by_series = days.groupby(["product_id", "store_id"]).log_units
    days["units_deviation"] = days.log_units - by_series.transform(
        lambda column: column.shift(1).rolling(13, min_periods=1).mean()
    )
    count = by_series.transform(lambda column: column.shift(1).rolling(13, min_periods=1).count())
    products = sorted(days.product_id.unique())
    days = days[(count >= 4) & days.price_deviation.notna()].copy()
    # Less the store's mean deviation that day, where it sold more than one product, else
    # the chain's, where more than one series sold; a day no other series sold is left out.
    store_period = days.groupby(["store_id", "period_start"])
    chain_period = days.groupby("period_start")
    in_store = store_period.price_deviation.transform("size") > 1
    in_chain = chain_period.price_deviation.transform("size") > 1
    for column in ("price_deviation", "units_deviation"):
        days[column] -= (
            store_period[column].transform("mean").where(in_store, chain_period[column].transform("mean"))
        )
    days = days[in_chain]
    # What is left of equal prices less their mean is floating-point residue, not a price.
    days = days[days.price_deviation.abs() > 1e-9]
    days["cross"] = days.price_deviation * days.units_deviation
    days["square"] = days.price_deviation**2
    rows = []
    for as_of in as_of_dates:
        before = days[days.period_start < as_of].groupby("product_id")[["cross", "square"]].sum()
        before = before.reindex(products, fill_value=0.0)
        pooled = before["cross"].sum() / before["square"].sum()
        for product, sums in before.iterrows():
            rows.append((product, as_of, (sums["cross"] + 50 * pooled) / (sums["square"] + 50)))
    return pd.DataFrame(rows, columns=["product_id", "as_of_date", "price_elasticity"])


def test_price_elasticities_match_an_independent_computation(conn: Conn, built: date) -> None:
    as_of_dates = [built - timedelta(days=91), built]
    expected = _independent_elasticities(conn, as_of_dates)
    built_rows = pd.DataFrame(
        conn.execute(
            "select product_id, as_of_date, price_elasticity from features.demand_price_elasticities "
            "where as_of_date = any(%s) order by as_of_date, product_id",
            [as_of_dates],
        ).fetchall(),
        columns=["product_id", "as_of_date", "price_elasticity"],
    )
    expected = expected.sort_values(["as_of_date", "product_id"], ignore_index=True)
    assert built_rows[["product_id", "as_of_date"]].equals(expected[["product_id", "as_of_date"]])
    np.testing.assert_allclose(built_rows.price_elasticity, expected.price_elasticity, rtol=1e-9)
    # The sample's promotions sell more at a deeper discount, and no elasticity is the
    # pooled one alone: the products' own periods move each estimate.
    assert (built_rows.price_elasticity < 0).mean() > 0.5
    assert built_rows.price_elasticity.nunique() > len(as_of_dates)
    lift = _one(
        conn,
        "select count(*) from features.demand_features where promo_discount_pct > 0 and promo_log_lift <> 0",
    )
    assert int(str(lift)) > 0
    # The period before the target's lift is that period's own, as the previous horizon saw it.
    before = conn.execute(
        "select count(*), count(*) filter (where later.previous_period_log_lift <> 0), "
        "max(abs(later.previous_period_log_lift - earlier.promo_log_lift)) "
        "from features.demand_features later join features.demand_features earlier "
        "using (product_id, store_id, as_of_date) where later.horizon = earlier.horizon + 1"
    ).fetchone()
    assert before is not None
    pairs, lifted, largest_gap = int(str(before[0])), int(str(before[1])), float(str(before[2]))
    assert pairs > 0
    assert lifted > 0
    assert largest_gap < 1e-12


def test_the_time_index_counts_calendar_quarters_from_2000(conn: Conn, built: date) -> None:
    built_index = {
        d: q
        for d, q in conn.execute(
            "select distinct as_of_date, as_of_quarter_index from features.demand_features"
        ).fetchall()
        if isinstance(d, date)
    }
    expected = {d: (d.year - 2000) * 4 + (d.month - 1) // 3 for d in built_index}
    assert built_index == expected
    # The sample spans several quarters, so the trees have eras to split on.
    assert len(set(expected.values())) > 2


def test_a_table_whose_sql_changed_is_rebuilt(pg_settings: Settings, conn: Conn, built: date) -> None:
    # As if demand_history and customer_features had been built by an older version of their SQL.
    customer_digest = _one(conn, "select sql_sha256 from ml.build_settings where model = 'customer_features'")
    conn.execute(
        "update ml.build_settings set sql_sha256 = 'older' where model in ('demand_history', 'customer_features')"
    )
    conn.execute("update features.demand_history set units_lag_1 = -1")
    messages: list[str] = []
    try:
        build(pg_settings, select=["+demand_features"], say=messages.append)
        assert any(
            "demand_history: its SQL (or that of a model or macro it reads) changed" in m for m in messages
        )
        # customer_features is not selected: its change neither rebuilds the selection nor is forgotten.
        assert not any("customer_features" in m for m in messages)
        assert (
            _one(conn, "select sql_sha256 from ml.build_settings where model = 'customer_features'")
            == "older"
        )
        assert _one(conn, "select count(*) from features.demand_history where units_lag_1 = -1") == 0
        assert (
            _one(conn, "select sql_sha256 from ml.build_settings where model = 'demand_history'") != "older"
        )
    finally:
        conn.execute(
            "update ml.build_settings set sql_sha256 = %s where model = 'customer_features'",
            [customer_digest],
        )


def test_only_settings_that_shape_a_row_rebuild_a_table(conn: Conn, built: date) -> None:
    recorded = _one(conn, "select settings from ml.build_settings where model = 'demand_features'")
    # The history lengths are recorded (advice reads them); the scoring date is not.
    assert isinstance(recorded, dict)
    assert {"history_weeks", "demand_history_weeks", "demand_max_rows"} <= set(recorded)
    assert "as_of_date" not in recorded
    # They only add or drop as-of dates: a change of them rebuilds nothing.
    dates_only = [
        "history_weeks=50",
        "demand_history_weeks=30",
        "demand_max_rows=1000",
        "as_of_date=2026-10-05",
    ]
    assert settings_changes(conn, load_config(dates_only, environ={})) == []
    changed = settings_changes(conn, load_config(["churn_horizon_days=60"], environ={}))
    assert {(c.model, c.name, c.built_with, c.now) for c in changed} == {
        (model, "churn_horizon_days", 90, 60)
        for model in ("customer_features", "customer_offer_candidates", "customer_offer_features")
    }


def test_no_history_setting_is_named_where_the_data_starts_the_dates(conn: Conn, built: date) -> None:
    # The tiny sample holds less than the default two years: its data, not a setting, is short.
    row = conn.execute(
        "select (select min(as_of_date) from features.customer_features), (select min(ordered_at)::date from raw.orders)"
    ).fetchone()
    assert row is not None
    first, first_order = row
    assert isinstance(first, date)
    assert isinstance(first_order, date)
    assert timedelta(0) < first - first_order <= timedelta(days=7)
    assert {name: setting_advice(conn, spec) for name, spec in model_specs().items()} == dict.fromkeys(
        model_specs()
    )


def test_the_neighbour_join_uses_the_hnsw_index(conn: Conn, built: date) -> None:
    with conn.transaction():
        conn.execute("set local enable_seqscan = off")
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                """
                explain select n.product_id from features.item_outcomes i cross join lateral (
                    select o.product_id from features.item_outcomes o
                    where o.sold_through is not null and o.outcome_known_date < i.launched_date
                    order by o.embedding <=> i.embedding limit 10) n
                """
            ).fetchall()
        )
    assert "Index Scan using item_outcomes_embedding_idx" in plan


def test_the_leakage_test_catches_a_less_or_equal(pg_settings: Settings, conn: Conn, built: date) -> None:
    run_dbt(pg_settings, "compile", ["--select", "customer_features", "--full-refresh"])
    compiled_path = (
        pg_settings.dbt_dir / "target/compiled/storecast/models_sql/features/customer/customer_features.sql"
    )
    compiled = compiled_path.read_text()
    # The feature look-back's upper bound, as an off-by-one would write it.
    leaky = re.sub(
        r"customer_orders\.order_date < as_of_dates\.as_of_date\s*$",
        "customer_orders.order_date <= as_of_dates.as_of_date",
        compiled,
        flags=re.MULTILINE,
    )
    assert leaky != compiled
    conn.execute(f"create temp table leaky_customer_features as {leaky}")
    leaks = _one(conn, "select count(*) from leaky_customer_features where last_event_date >= as_of_date")
    assert int(str(leaks)) > 0
    clean = _one(conn, "select count(*) from features.customer_features where last_event_date >= as_of_date")
    assert clean == 0


def test_docs_generate(pg_settings: Settings, built: date) -> None:
    run_dbt(pg_settings, "docs generate")
    catalog = pg_settings.dbt_dir / "target" / "catalog.json"
    assert catalog.exists()
    assert "customer_features" in catalog.read_text()


def test_the_normal_quantile_of_any_service_level_is_scipys(pg_settings: Settings) -> None:
    # Worked out at compile time where p is central, by Postgres in the tails.
    from scipy.stats import norm

    levels = [0.0001, 0.01, 0.3, 0.5, 0.9, 0.95, 0.97, 0.975, 0.99, 0.999]
    select = ", ".join(f"{{{{ normal_quantile({p}) }}}} as z{i}" for i, p in enumerate(levels))
    result = run_dbt(pg_settings, "show", ["--inline", f"select {select}"])
    row = result.result.results[0].agate_table.rows[0]
    np.testing.assert_allclose([float(z) for z in row], norm.ppf(levels), rtol=1e-8, atol=1e-8)
    # storecast config refuses such a service level first; dbt cannot compile one either.
    with pytest.raises(BuildError):
        run_dbt(pg_settings, "show", ["--inline", "select {{ normal_quantile(1.0) }}"])


def test_every_model_and_column_is_described() -> None:
    import yaml

    described: dict[str, set[str]] = {}
    for path in (PROJECT_DIR / "models_sql").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            assert model.get("description"), f"{model['name']} has no description"
            described[model["name"]] = {c["name"] for c in model.get("columns", []) if c.get("description")}
    for sql_file in (PROJECT_DIR / "models_sql").rglob("*.sql"):
        assert sql_file.stem in described, f"{sql_file.stem} is not documented"


def test_every_built_column_is_described(conn: Conn, built: date) -> None:
    import yaml

    described: dict[str, set[str]] = {}
    for path in Path(PROJECT_DIR / "models_sql").rglob("_*__models.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            described[model["name"]] = {c["name"] for c in model.get("columns", []) if c.get("description")}
    rows = conn.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema in ('staging', 'features') order by 1, ordinal_position"
    ).fetchall()
    missing = [f"{t}.{c}" for t, c in rows if str(c) not in described.get(str(t), set())]
    assert missing == []


def test_a_corrected_launch_date_or_impression_time_moves_its_row(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # As a `load --mode upsert` would correct them: a product's launch date and an
    # impression's time, each moved to another date already built (its label window
    # closed, so no whole-date rebuild picks it up).
    product, launched, moved_to = conn.execute(
        """
        select p.product_id, p.launched_at, other.launched_at
        from raw.products p
        cross join lateral (
            select launched_at from raw.products o
            where o.launched_at < p.launched_at - 60 order by o.launched_at desc limit 1
        ) other
        order by p.launched_at desc, p.product_id limit 1
        """
    ).fetchone()  # type: ignore[misc]
    impression, _, shown_then = conn.execute(
        """
        select i.impression_id, i.shown_at, earlier.shown_at
        from raw.impressions i
        join raw.offers o using (offer_id)
        cross join lateral (
            select shown_at from raw.impressions e
            where e.shown_at < i.shown_at - interval '2 days' and e.shown_at > o.start_date + 1
            order by e.shown_at limit 1
        ) earlier
        order by i.impression_id limit 1
        """
    ).fetchone()  # type: ignore[misc]
    rows = (
        "select (select array_agg(as_of_date) from features.item_features where product_id = %s), "
        "(select array_agg(as_of_date) from features.customer_offer_features where impression_id = %s)"
    )
    shown_date = "select shown_date from staging.stg_raw__impressions where impression_id = %s"
    shown_date_before = _one(conn, shown_date, [impression])
    with _corrected(pg_settings, conn, (product, moved_to), (impression, shown_then)):
        items, impressions = conn.execute(rows, [product, impression]).fetchone()  # type: ignore[misc]
        shown_date_then = _one(conn, shown_date, [impression])
    # One row each, at the corrected date: the row at the old date is replaced, not kept
    # beside it (where the unique index on the key stopped every later build).
    assert isinstance(moved_to, date)
    assert isinstance(launched, date)
    assert moved_to < launched
    assert items == [moved_to]
    assert shown_date_then < shown_date_before  # type: ignore[operator]
    assert impressions == [shown_date_then]
    assert conn.execute(rows, [product, impression]).fetchone() == ([launched], [shown_date_before])


def test_a_launch_built_before_the_data_reached_it_is_built_again(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # A product listed ahead of its launch is built while the data stops short of its
    # launch date, reading its neighbours' outcomes up to that build only. Once the data
    # reaches the launch, an incremental build reads them as a full build would; a row
    # built with the launch in the data is not built again.
    ahead, settled = [
        int(str(p))
        for (p,) in conn.execute(
            "select product_id from features.item_features where neighbour_similarity_mean is not null "
            "and observed_until > as_of_date order by as_of_date desc, product_id limit 2"
        ).fetchall()
    ]
    row = "select neighbour_similarity_mean, observed_until from features.item_features where product_id = %s"
    before = {p: conn.execute(row, [p]).fetchone() for p in (ahead, settled)}
    conn.execute(
        "update features.item_features set neighbour_similarity_mean = -1, "
        "observed_until = case when product_id = %s then as_of_date - 1 else observed_until end "
        "where product_id in (%s, %s)",
        [ahead, ahead, settled],
    )
    try:
        build(pg_settings, select=["item_features"])
        after = {p: conn.execute(row, [p]).fetchone() for p in (ahead, settled)}
    finally:
        conn.execute(
            "update features.item_features set neighbour_similarity_mean = %s where product_id = %s",
            [before[settled][0], settled],  # type: ignore[index]
        )
    assert after[ahead] == before[ahead]
    assert after[settled] == (-1, before[settled][1])  # type: ignore[index]


def test_as_of_dates_a_full_build_leaves_out_are_deleted(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # A job run every week for years: an incremental build only adds and rebuilds dates, so
    # the dates that slid out of history_weeks (and demand_history_weeks) stayed, and were
    # trained on, where a full build has none; so did an earlier build's scoring date that
    # was never scored. Emulated by copying the first date's rows to a date just out of
    # both, and to a date inside the history that is not a week start (with events before
    # it, as the leakage test asks).
    values = load_config().values
    weeks = max(int(values["history_weeks"]), int(values["demand_history_weeks"]))
    left = _date(conn, "select max(as_of_date) - 7 * %s - 1 from features.as_of_dates", [weeks])
    unscored = _date(conn, "select min(as_of_date) + 3 from features.as_of_dates")
    dates = "select as_of_date, count(*) from features.{} group by 1 order by 1"
    tables = ("customer_features", "demand_history", "demand_features")
    before = {t: conn.execute(dates.format(t)).fetchall() for t in tables}
    for table in tables:
        for copied in (left, unscored):
            conn.execute(
                f"insert into features.{table} select (jsonb_populate_record(null::features.{table}, "
                f"to_jsonb(t) || jsonb_build_object('as_of_date', %s::date, 'last_event_date', %s::date - 1))).* "
                f"from features.{table} t "
                f"where as_of_date = (select min(as_of_date) from features.{table})",
                [copied, copied],
            )
    assert all(
        _one(conn, f"select count(*) from features.{t} where as_of_date = %s", [d])
        for t in tables
        for d in (left, unscored)
    )
    build(pg_settings, select=list(tables))
    assert {t: conn.execute(dates.format(t)).fetchall() for t in tables} == before


def test_as_of_dates_the_row_budget_leaves_out_are_deleted(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # demand_max_rows lowered (or more series sold): the as-of dates before the first the
    # budget keeps leave demand_history and demand_features, as a full build leaves them out
    # (an incremental build kept them until a full refresh), and come back with the budget.
    horizon = int(load_config().values["demand_horizon"])
    series = _int(
        conn,
        "select count(*) from (select distinct product_id, store_id from features.demand_sales "
        "where period_start >= (select max(as_of_date) from features.as_of_dates) - 365) as s",
    )
    tables = ("demand_history", "demand_features")
    dates = "select array_agg(distinct as_of_date order by as_of_date) from features.{}"
    before = {t: _dates(conn, dates.format(t)) for t in tables}
    latest, first = max(before["demand_history"]), min(before["demand_history"])
    # A budget that holds four weeks fewer than the dates built.
    weeks = (latest - first).days // 7 - 4
    try:
        build(pg_settings, load_config([f"demand_max_rows={series * horizon * weeks}"]), select=list(tables))
        cut = {t: _dates(conn, dates.format(t)) for t in tables}
    finally:
        build(pg_settings, select=list(tables))
    kept = [d for d in before["demand_history"] if d >= latest - timedelta(weeks=weeks)]
    assert 0 < len(kept) < len(before["demand_history"])
    assert cut == {
        "demand_history": kept,
        "demand_features": [d for d in before["demand_features"] if d in kept],
    }
    assert {t: _dates(conn, dates.format(t)) for t in tables} == before


def test_impressions_shown_before_the_history_are_deleted(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # A shorter history_weeks (or a history that moved on): the impressions shown before its
    # first as-of date leave customer_offer_features, as a full build leaves them out (the
    # customer rows their features came from are deleted), and come back with the history.
    tables = ["as_of_dates", "customer_features", "customer_offer_features"]
    count, since = (
        "select count(*) from features.customer_offer_features",
        "select min(as_of_date) from features.{}",
    )
    before = _int(conn, count), _date(conn, since.format("customer_offer_features"))
    try:
        build(pg_settings, load_config(["history_weeks=40"]), select=tables)
        first = _date(conn, since.format("as_of_dates"))
        shorter = _int(conn, count), _date(conn, since.format("customer_offer_features"))
        # The dates the lower setting cut are gone, so the advice names it.
        advice = setting_advice(conn, model_specs()["purchase_30d"])
    finally:
        build(pg_settings, select=tables)
    kept = _int(conn, count + " where as_of_date >= %s", [first])
    assert before[1] < first <= shorter[1]
    assert shorter[0] == kept < before[0]
    assert advice is not None
    assert advice.startswith(f"raise --var history_weeks, now 40 (the as-of dates kept start on {first}")
    assert (_int(conn, count), _date(conn, since.format("customer_offer_features"))) == before


def test_a_build_from_scratch_keeps_the_dates_scored_before(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # A date scored on a daily run (not a week start) is kept by an incremental build, and
    # its backtest reads its rows once its labels mature. A build from scratch (after a
    # setting or the SQL changed) must keep it too; a failed scoring, or one before the
    # data, is no reason to.
    first = _date(conn, "select min(as_of_date) from features.as_of_dates")
    first_order = _date(conn, "select min(first_order_date) from features.as_of_dates")
    scored, failed, before_data = (
        first + timedelta(days=3),
        first + timedelta(days=4),
        first_order - timedelta(days=2),
    )
    runs = [(scored, "succeeded"), (failed, "failed"), (before_data, "succeeded")]
    for as_of, status in runs:
        conn.execute(
            "insert into ml.pipeline_runs (run_id, as_of_date, step, status) "
            "values (nextval('ml.run_ids'), %s, 'score:customer', %s)",
            [as_of, status],
        )
    customers = "select count(*) from features.customer_features where as_of_date = %s"
    try:
        build(pg_settings, select=["as_of_dates", "customer_features"], full_refresh=True)
        spine = conn.execute(
            "select as_of_date, is_scoring_date, is_training_date from features.as_of_dates "
            "where as_of_date = any(%s)",
            [[as_of for as_of, _ in runs]],
        ).fetchall()
        trained_on = [time for time, _ in time_counts(conn, model_specs()["purchase_30d"])]
        rows = {as_of: _int(conn, customers, [as_of]) for as_of, _ in runs}
        labelled = _int(
            conn,
            "select count(*) from features.customer_features where as_of_date = %s and purchased_in_horizon is not null",
            [scored],
        )
    finally:
        conn.execute(
            "delete from ml.pipeline_runs where step = 'score:customer' and as_of_date = any(%s)",
            [[as_of for as_of, _ in runs]],
        )
        build(pg_settings, select=["as_of_dates"])
        conn.execute("delete from features.customer_features where as_of_date = %s", [scored])
    # Kept for its backtest, not trained on: a run every day would make the dates that
    # training holds out days apart.
    assert spine == [(scored, False, False)]
    assert first in trained_on
    assert scored not in trained_on
    assert rows[scored] > 0
    assert rows[failed] == rows[before_data] == 0
    assert labelled == rows[scored]


def test_an_impression_moved_past_the_data_observed_loses_its_row(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # An impression's time corrected to after the data observed: a full refresh does not
    # build it, so an incremental run must not keep its row at the old date. A launch
    # moved there is built at its new date (sell-through is scored before a launch).
    product, launched = conn.execute(
        "select product_id, launched_at from raw.products order by launched_at, product_id limit 1"
    ).fetchone()  # type: ignore[misc]
    impression = _one(conn, "select min(impression_id) from raw.impressions")
    later = _one(conn, "select max(data_observed_until) + 30 from features.as_of_dates")
    rows = (
        "select (select array_agg(as_of_date) from features.item_features where product_id = %s), "
        "(select count(*) from features.customer_offer_features where impression_id = %s)"
    )
    before = conn.execute(rows, [product, impression]).fetchone()
    with _corrected(pg_settings, conn, (product, later), (impression, later)):
        moved = conn.execute(rows, [product, impression]).fetchone()
    assert before == ([launched], 1)
    assert moved == ([later], 0)
    assert conn.execute(rows, [product, impression]).fetchone() == before


def test_a_scoring_date_before_the_data_is_warned_about(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    first_order = _one(conn, "select min(ordered_at)::date from raw.orders")
    messages: list[str] = []
    try:
        build(
            pg_settings,
            load_config().with_as_of(date(2000, 1, 3)),
            select=["as_of_dates"],
            say=messages.append,
        )
    finally:
        build(pg_settings, select=["as_of_dates"])
    assert f"warning: the scoring date 2000-01-03 is not after the first order ({first_order})" in "\n".join(
        messages
    )


def test_as_of_dates_built_by_an_older_storecast_stop_neither_build_nor_training(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # Before first_order_date: a build that leaves as_of_dates out, or training before a build.
    conn.execute("alter table features.as_of_dates drop column first_order_date")
    try:
        assert scoring_date_outside_data(conn) == ""
        assert setting_advice(conn, model_specs()["purchase_30d"]) is None
    finally:
        build(pg_settings, select=["as_of_dates"])


def test_next_day_build_adds_one_date_and_keeps_history(
    pg_settings: Settings, conn: Conn, built: date
) -> None:
    # Last in the module: it leaves the next day built (no other test here expects the
    # default date after it; later modules load and build afresh), which saves a build.
    count_by_date = "select as_of_date, count(*) from features.customer_features group by 1"
    before = {str(day): int(str(count)) for day, count in conn.execute(count_by_date).fetchall()}
    # Every model, incrementally: each must know which of its dates to rebuild.
    messages: list[str] = []
    build(pg_settings, load_config().with_as_of(built + timedelta(days=1)), say=messages.append)
    # No day was loaded since: the build says that the new date's features read it as a day without sales.
    assert (
        f"warning: the scoring date {built + timedelta(days=1)} is 1 day past the data, which ends before {built}"
        in "\n".join(messages)
    )
    after = {str(day): int(str(count)) for day, count in conn.execute(count_by_date).fetchall()}
    assert set(after) - set(before) == {str(built + timedelta(days=1))}
    assert {d: n for d, n in after.items() if d in before} == before
