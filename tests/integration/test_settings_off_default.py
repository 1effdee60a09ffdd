"""The daily job with every setting away from its default, from a settings file only.

dbt runs its unit tests with the user's settings, a setting reaches SQL, training and
scoring by different roads, and a value the defaults never take (a service level no
table lists, a 30-day look-back, 0 reasons) is where a road breaks: each of those broke
once. A setting added without a value here fails the first test, so that it is tried.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import psycopg
import pytest
import yaml

from storecast.config import project_defaults
from storecast.settings import Settings
from storecast.training.history import setting_advice
from storecast.training.spec import model_specs
from tests.integration.shell import Shell

#: A value away from the default for every setting, each one a retailer's data could need.
OFF_DEFAULT: dict[str, Any] = {
    # A back-dated run, on a week start (Sunday) within the tiny sample's data; a date,
    # so that the file writes it as YAML reads a date (unquoted), as a user would.
    "as_of_date": date(2026, 11, 8),
    "history_weeks": 60,
    "demand_history_weeks": 40,
    # A row budget that holds 2 weeks of the tiny sample's series x horizons: the label's
    # length and a quarter are kept whatever it holds, so demand still trains.
    "demand_max_rows": 2_000,
    "timezone": "Asia/Kolkata",
    "feature_lookback_days": 30,
    "customer_recent_level": False,
    "purchase_horizon_days": 14,
    "churn_horizon_days": 60,
    "clv_horizon_days": 180,
    "redemption_horizon_days": 3,
    "sell_through_horizon_days": 60,
    "sell_through_target_share": 0.4,
    "neighbours_k": 3,
    "demand_horizon": 3,
    "demand_grain": "week",
    "week_start": "sunday",
    "demand_missing_periods": "unobserved",
    "demand_dormant_days": 30,
    "candidate_categories_per_customer": 1,
    "active_customer_days": 30,
    "redemption_prior_strength": 5,
    "recommendations_k": 1,
    "sell_through_block_below": 0.2,
    "similar_items_shown": 2,
    "lead_time_days": 10,
    "review_period_days": 3,
    "service_level": 0.97,
    "stock_counts": "on_change",
    "stock_count_max_age_days": 3,
    "retrain_drift_psi": 0.1,
    "retrain_backtest_margin": 0.01,
    "explanation_reasons": 0,
}
#: Settings read only where another test sets them, and why not here.
ELSEWHERE = {
    "coded_keys": "set before the first load of a user's files: test_key_codes.py",
    "service_upload_max_mb": "storecast serve only: trained/test_service.py",
}


def test_every_setting_has_a_value_away_from_its_default() -> None:
    defaults = project_defaults()
    assert sorted(set(OFF_DEFAULT) | set(ELSEWHERE)) == sorted(defaults)
    assert not set(OFF_DEFAULT) & set(ELSEWHERE)
    assert [name for name, value in OFF_DEFAULT.items() if value == defaults[name]] == []


@pytest.fixture(scope="module")
def off_default(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Shell, str]:
    settings_file = tmp_path_factory.mktemp("off_default") / "storecast.yml"
    settings_file.write_text(yaml.safe_dump({"vars": OFF_DEFAULT}))
    sh = Shell(pg_settings, "settings_off_default", settings_file)
    sh.ok("sample", "--scale", "tiny", "--shape", "stockouts")
    return sh, sh.ok("run")


def test_the_daily_job_runs_with_every_setting_away_from_its_default(off_default: tuple[Shell, str]) -> None:
    sh, output = off_default
    assert "finished" in output
    for model in ("purchase_30d", "churn_90d", "clv_365d", "offer_redemption_7d", "sell_through", "demand"):
        assert f"{model}: version 1 is champion" in output, output
    as_of = OFF_DEFAULT["as_of_date"]
    # Scored as of the date set, weekly, three weeks ahead.
    horizons = sh.one(
        "select array_agg(distinct target_date - as_of_date order by target_date - as_of_date) "
        "from scores.demand_forecast where as_of_date = %s",
        [as_of],
    )
    assert horizons == [0, 7, 14]
    # The budget holds 2 weeks of as-of dates; the label's 3 weeks and 91 days are kept.
    first = sh.one("select min(as_of_date) from features.demand_features")
    assert first == as_of - timedelta(weeks=3, days=91)
    assert int(str(sh.one("select count(*) from scores.customer where as_of_date = %s", [as_of]))) > 0
    # One offer a customer at most, no reasons kept.
    most = sh.one(
        "select max(n) from (select count(*) as n from marts.offer_recommendations group by customer_id) c"
    )
    assert most == 1
    kept = sh.one(
        "select count(*) from scores.demand_forecast where reasons is not null "
        "union all select count(*) from scores.customer where purchase_reasons is not null"
    )
    assert kept == 0
    # A logged count holds, whatever its age: no count is too old.
    assert sh.one("select count(*) from marts.inventory_plan where stock_status = 'stock count too old'") == 0


def test_advice_names_the_history_setting_only_where_it_cut_the_dates(off_default: tuple[Shell, str]) -> None:
    sh, _ = off_default
    specs = model_specs({**project_defaults(), **OFF_DEFAULT})
    first_order = sh.one("select min(ordered_at at time zone 'Asia/Kolkata')::date from raw.orders")
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        customers = setting_advice(conn, specs["purchase_30d"])
        demand = setting_advice(conn, specs["demand"])
    # 60 weeks of as-of dates start well after the sample's first order: the setting cut them.
    assert customers is not None
    assert customers.startswith("raise --var history_weeks, now 60 (the as-of dates kept start on ")
    assert customers.endswith(f", the orders on {first_order})")
    # Demand's dates were cut by the row budget (above), not by either history setting.
    assert demand is None


def test_storecast_config_shows_each_from_the_file(off_default: tuple[Shell, str]) -> None:
    sh, _ = off_default
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in sh.ok("config").splitlines()]
    sources = {row[0]: row[2] for row in rows if len(row) == 4}
    assert {name: sources[name].endswith("storecast.yml") for name in OFF_DEFAULT} == dict.fromkeys(
        OFF_DEFAULT, True
    )
