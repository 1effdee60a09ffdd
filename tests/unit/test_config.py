"""Project settings: defaults from dbt_project.yml, storecast.yml, --var; checked before anything runs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml

from storecast.build import model_vars
from storecast.config import LIST_CHOICES, ConfigError, load_config, project_defaults, setting_docs


def _file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "settings.yml"
    path.write_text(text)
    return {"STORECAST_CONFIG": str(path)}


def test_defaults_are_dbt_project_vars_and_nothing_else() -> None:
    config = load_config(environ={})
    declared = yaml.safe_load(Path("dbt_project.yml").read_text())["vars"]
    assert config.values == declared
    assert set(config.sources.values()) == {"default"}
    assert config.overrides() == {}


def test_file_then_var_override_and_each_remembers_its_source(tmp_path: Path) -> None:
    env = _file(tmp_path, "vars:\n  demand_grain: week\n  demand_horizon: 8\n")
    config = load_config(["demand_horizon=4", "service_level=0.9"], environ=env)
    assert config.values["demand_grain"] == "week"
    assert config.values["demand_horizon"] == 4
    assert config.sources["demand_grain"] == env["STORECAST_CONFIG"]
    assert config.sources["demand_horizon"] == "--var"
    assert config.sources["purchase_horizon_days"] == "default"
    assert config.overrides() == {"demand_grain": "week", "demand_horizon": 4, "service_level": 0.9}
    assert config.period_days == 7


def test_storecast_yml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "storecast.yml").write_text("vars:\n  purchase_horizon_days: 181\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(environ={}).values["purchase_horizon_days"] == 181


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            ["purchase_horizon=30"],
            r"--var purchase_horizon: unknown setting; did you mean purchase_horizon_days",
        ),
        (["demand_grain=year"], r"demand_grain \(from --var\): expected one of day, week, month, got 'year'"),
        (["demand_horizon=four"], r"demand_horizon \(from --var\): expected a whole number, got 'four'"),
        (["demand_horizon=0"], r"expected a number above 0, got 0"),
        (["explanation_reasons=-1"], r"explanation_reasons \(from --var\): expected 0 or more, got -1"),
        (
            ["demand_history_weeks=1000000"],
            r"demand_history_weeks \(from --var\): expected at most 5218 \(a century\)",
        ),
        (
            ["clv_horizon_days=40000"],
            r"clv_horizon_days \(from --var\): expected at most 36525 \(a century\)",
        ),
        (["service_level=high"], r"service_level \(from --var\): expected a number"),
        (
            ["service_level=95"],
            r"service_level \(from --var\): expected a fraction above 0 and below 1 \(0.95",
        ),
        (["service_level=1"], r"expected a fraction above 0 and below 1"),
        (["sell_through_target_share=1.2"], r"expected a fraction above 0 and at most 1"),
        (["as_of_date=yesterday"], r"as_of_date \(from --var\): expected a date as YYYY-MM-DD"),
        (["demand_missing_periods=skip"], r"expected one of zero, unobserved"),
        (["week_start=mon"], r"expected one of monday, .*sunday, got 'mon'"),
        (["demand_grain"], r"expected NAME=VALUE"),
        (
            ["coded_keys=product_id"],
            r"coded_keys \(from --var\): expected a list of names, e.g. \[product_id",
        ),
        (["coded_keys=[sku]"], r"coded_keys \(from --var\): unknown sku; expected names among product_id"),
    ],
)
def test_a_wrong_name_or_type_is_named(variables: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(variables, environ={})


def test_a_wrong_setting_in_the_file_names_the_file(tmp_path: Path) -> None:
    env = _file(tmp_path, "vars:\n  demand_grian: week\n")
    with pytest.raises(ConfigError, match=r"settings.yml: vars.demand_grian: unknown setting"):
        load_config(environ=env)
    env = _file(tmp_path, "demand_grain: week\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) demand_grain; settings go under 'vars:'"):
        load_config(environ=env)


def test_a_missing_settings_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        load_config(environ={"STORECAST_CONFIG": str(tmp_path / "nope.yml")})


def test_a_date_written_without_quotes_reaches_dbt_as_text(tmp_path: Path) -> None:
    # YAML reads both as dates; dbt's --vars are JSON, which json.dumps refused.
    settings_file = tmp_path / "storecast.yml"
    settings_file.write_text("vars:\n  as_of_date: 2026-11-09\n")
    from_file = load_config([], environ={"STORECAST_CONFIG": str(settings_file)})
    from_var = load_config(["as_of_date=2026-11-09"], environ={})
    for config in (from_file, from_var):
        assert config.values["as_of_date"] == "2026-11-09"
        assert json.loads(json.dumps(config.overrides())) == {"as_of_date": "2026-11-09"}
        assert config.as_of == date(2026, 11, 9)


def test_a_setting_documented_as_taking_0_takes_it() -> None:
    # dbt_project.yml: "0 keeps none and skips the cost".
    assert load_config(["explanation_reasons=0"], environ={}).values["explanation_reasons"] == 0


def test_a_weekly_as_of_date_must_start_a_week() -> None:
    config = load_config(["demand_grain=week"], environ={})
    assert config.with_as_of(date(2012, 10, 29)).as_of == date(2012, 10, 29)
    with pytest.raises(ConfigError, match=r"2012-10-30 is a tuesday.*use 2012-10-29 or set week_start"):
        config.with_as_of(date(2012, 10, 30))
    sundays = load_config(["demand_grain=week", "week_start=sunday"], environ={})
    assert sundays.with_as_of(date(2012, 10, 28)).sources["as_of_date"] == "--as-of"


def test_a_monthly_as_of_date_must_be_a_first_of_the_month() -> None:
    config = load_config(["demand_grain=month"], environ={})
    assert config.with_as_of(date(2012, 10, 1)).as_of == date(2012, 10, 1)
    with pytest.raises(ConfigError, match=r"2012-10-29 is not a month's first day.*use 2012-10-01"):
        config.with_as_of(date(2012, 10, 29))


def test_the_default_horizon_keeps_its_span_in_weeks(tmp_path: Path) -> None:
    days = project_defaults()["demand_horizon"]
    weekly = load_config(["demand_grain=week"], environ={})
    assert weekly.values["demand_horizon"] == round(days / 7)
    assert weekly.sources["demand_horizon"] == f"default ({days} days at demand_grain week)"
    # dbt gets it with the grain, so the feature tables hold the same horizons as the spec.
    assert weekly.overrides() == {"demand_grain": "week", "demand_horizon": round(days / 7)}
    assert weekly.with_as_of(date(2012, 10, 29)).values["demand_horizon"] == round(days / 7)
    # A horizon set anywhere is kept as set; at day grain the default is the default.
    assert load_config(["demand_grain=week", "demand_horizon=8"], environ={}).values["demand_horizon"] == 8
    env = _file(tmp_path, "vars:\n  demand_grain: week\n  demand_horizon: 13\n")
    assert load_config(environ=env).values["demand_horizon"] == 13
    daily = load_config([], environ={})
    assert (daily.values["demand_horizon"], daily.sources["demand_horizon"]) == (days, "default")


def test_a_model_reads_the_vars_of_its_upstream_models_and_macros() -> None:
    demand = model_vars("demand_features")
    # Directly, through demand_calendar() and period_start(), and through as_of_dates and staging.
    assert {"demand_horizon", "demand_grain", "week_start", "demand_missing_periods", "timezone"} <= demand
    assert "purchase_horizon_days" not in demand
    customers = model_vars("customer_features")
    assert {"purchase_horizon_days", "churn_horizon_days", "clv_horizon_days", "timezone"} <= customers
    assert "demand_horizon" not in customers
    assert "history_weeks" in customers
    assert {"history_weeks", "demand_history_weeks", "demand_max_rows"} <= demand


def test_every_default_has_a_checkable_type() -> None:
    for name, value in project_defaults().items():
        assert value is None or isinstance(value, bool | int | float | str) or name in LIST_CHOICES, name


def test_each_setting_is_explained_as_dbt_project_yml_documents_it() -> None:
    docs = setting_docs()
    assert sorted(docs) == sorted(project_defaults())
    assert [name for name, text in docs.items() if not text] == []
    # A comment shared by the settings under it, and one that goes on from the one before.
    assert docs["review_period_days"] == docs["lead_time_days"]
    assert docs["demand_max_rows"].startswith(docs["demand_history_weeks"].removesuffix("...").rstrip())
    assert "this many feature rows" in docs["demand_max_rows"]


def test_storecast_config_explains_the_settings_it_is_given() -> None:
    from typer.testing import CliRunner

    from storecast.cli import app

    env = {"STORECAST_CONFIG": ""}
    shown = CliRunner().invoke(app, ["config", "stock_counts", "--var", "stock_counts=on_change"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "stock_counts = on_change (from --var; default daily)" in shown.output
    assert "a stock system's log" in shown.output
    assert "demand_grain" not in shown.output
    wrong = CliRunner().invoke(app, ["config", "stok_counts"], env=env)
    assert wrong.exit_code != 0
    assert "stok_counts: unknown setting; did you mean stock_counts" in wrong.output
