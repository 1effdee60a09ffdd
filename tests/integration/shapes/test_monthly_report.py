"""A monthly store x product report forecast 3 calendar months ahead with its reorder
plan, run by the daily job at month grain, a last month cut short said when training,
and a new month's data completing the labels whose window it closes."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from storecast.settings import Settings
from tests.integration.shell import Shell

#: The first of the month holding the tiny sample's last orders: a monthly scoring date.
MONTH_AS_OF = "2026-11-01"


def _by_month(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory, database: str) -> Shell:
    """A shell on a database of its own whose settings forecast 3 calendar months ahead."""
    settings_file = tmp_path_factory.mktemp(database) / "storecast.yml"
    settings_file.write_text("vars:\n  demand_grain: month\n  demand_horizon: 3\n")
    return Shell(pg_settings, database, settings_file)


@pytest.fixture(scope="module")
def months(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Shell, str]:
    """A monthly store x product report, 3 calendar months ahead, reorders planned from it."""
    sh = _by_month(pg_settings, tmp_path_factory, "shapes_months")
    sh.ok("sample", "--scale", "tiny", "--shape", "monthly")
    sh.ok("build", "--as-of", MONTH_AS_OF, "--select", "+demand_features")
    trained = sh.ok("train", "demand", "--as-of", MONTH_AS_OF)
    scored = sh.ok("score", "demand", "--as-of", MONTH_AS_OF)
    sh.ok("build", "--as-of", MONTH_AS_OF, "--select", "+inventory_plan")
    return sh, trained + scored


def test_a_monthly_report_forecasts_calendar_months(months: tuple[Shell, str]) -> None:
    sh, output = months
    assert "demand: version 1 is champion" in output
    # A monthly extract, dated once a month: no last month said to be cut short.
    assert "has orders up to" not in output
    # A period without a sales row sold nothing here (demand_missing_periods zero), so no
    # series goes off sale for want of rows.
    assert "off sale" not in output
    # Horizon h is the calendar month h - 1 months after the as-of date's.
    targets = sh.rows(
        "select distinct horizon, target_date from scores.demand_forecast where as_of_date = %s order by 1",
        [date.fromisoformat(MONTH_AS_OF)],
    )
    assert targets == [(1, date(2026, 11, 1)), (2, date(2026, 12, 1)), (3, date(2027, 1, 1))]
    # Every as-of date of the features is a month's first day, and so is every target.
    assert (
        sh.one(
            "select count(*) from features.demand_features "
            "where extract(day from as_of_date) <> 1 or extract(day from target_date) <> 1"
        )
        == 0
    )
    assert int(str(sh.one("select count(distinct as_of_date) from features.demand_features"))) >= 12
    # A label is the month's units: the lines of the order dated on its first day.
    wrong = sh.one(
        """
        select count(*) from features.demand_features f
        where f.units is distinct from (
            select sum(i.quantity) from staging.stg_raw__orders o
            join staging.stg_raw__order_items i using (order_id)
            where i.product_id = f.product_id and o.store_id = f.store_id
                and date_trunc('month', o.order_date) = f.target_date)
            and f.target_date < %s
            and exists (
                select from staging.stg_raw__orders o join staging.stg_raw__order_items i using (order_id)
                where i.product_id = f.product_id and o.store_id = f.store_id
                    and date_trunc('month', o.order_date) = f.target_date)
        """,
        [MONTH_AS_OF],
    )
    assert wrong == 0
    # A year back is 12 months back, for the feature the monthly model reads.
    last_year = sh.one(
        "select count(*) from features.demand_features where units_same_period_last_year is not null"
    )
    assert int(str(last_year)) > 0
    # The reorder plan counts the lead time in days of the months it falls in.
    assert int(str(sh.one("select count(*) from marts.inventory_plan"))) > 0
    assert "3 periods of 1 month (setting demand_horizon)" in sh.ok("models", "show", "demand")


def test_the_daily_job_runs_at_month_grain(months: tuple[Shell, str]) -> None:
    # Last of the monthly report's tests: the run rebuilds and rescores its database.
    sh, _ = months
    sh.ok("run")
    steps = sh.rows(
        "select step, status from ml.pipeline_runs where run_id = (select max(run_id) from ml.pipeline_runs)"
    )
    assert steps
    assert {status for _, status in steps} == {"succeeded"}, steps
    # Its default date is the first day after the data: the next month's first.
    assert sh.rows(
        "select distinct target_date from scores.demand_forecast where as_of_date = '2026-11-01' order by 1"
    ) == [(date(2026, 11, 1),), (date(2026, 12, 1),), (date(2027, 1, 1),)]
    assert int(str(sh.one("select count(*) from marts.inventory_plan where as_of_date = '2026-11-01'"))) > 0


def test_a_last_month_of_transactions_cut_short_is_said_when_training(
    pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The daily sample by month: its history ends on 22 November, within the month.
    sh = _by_month(pg_settings, tmp_path_factory, "shapes_daily_by_month")
    sh.ok("sample", "--scale", "tiny", "--shape", "one-product")
    sh.ok("build", "--select", "+demand_features")
    output = sh.ok("train", "demand")
    assert "the last loaded month (2026-11-01..2026-11-30) has orders up to 2026-11-22 only" in output
    assert "(--as-of 2026-11-01)" in output
    # As of that month's first day, nothing is said.
    assert "has orders up to" not in sh.ok("train", "demand", "--as-of", MONTH_AS_OF, "--retrain")


def test_a_new_month_completes_the_labels_whose_window_it_closes(
    pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sh = _by_month(pg_settings, tmp_path_factory, "shapes_new_month")
    sh.ok("sample", "--scale", "tiny", "--shape", "monthly")
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        # Hold back September's and later orders: the data ends with August.
        conn.execute("create table held_orders as select * from raw.orders where ordered_at >= '2026-09-01'")
        conn.execute(
            "create table held_items as select * from raw.order_items "
            "where order_id in (select order_id from held_orders)"
        )
        conn.execute("delete from raw.order_items where order_id in (select order_id from held_orders)")
        conn.execute("delete from raw.orders where order_id in (select order_id from held_orders)")
    sh.ok("build", "--select", "+demand_features")
    label = "select units from features.demand_features where as_of_date = '2026-07-01' and horizon = 3"
    assert {row[0] for row in sh.rows(label)} == {None}  # September is not observed yet
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        conn.execute("insert into raw.orders select * from held_orders where ordered_at < '2026-10-01'")
        conn.execute(
            "insert into raw.order_items select * from held_items "
            "where order_id in (select order_id from raw.orders)"
        )
    # September closes July's third month, 92 days on (a rule of 3 x 31 days would wait
    # for 93, and the next month's data, to rebuild it).
    sh.ok("build", "--select", "+demand_features")
    september = sh.rows(
        """
        select f.units, coalesce(sum(i.quantity), 0)
        from features.demand_features f
        left join staging.stg_raw__orders o on o.store_id = f.store_id and o.order_date = '2026-09-01'
        left join staging.stg_raw__order_items i on i.order_id = o.order_id and i.product_id = f.product_id
        where f.as_of_date = '2026-07-01' and f.horizon = 3
        group by f.product_id, f.store_id, f.units
        """
    )
    assert september
    assert all(units == sold for units, sold in september)
