"""Model specs validate on load and name the file and field that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from storecast.config import load_config
from storecast.training.spec import SpecError, load_spec, load_specs, model_specs, select_specs, stored_spec

SHIPPED = {"sell_through", "purchase_30d", "churn_90d", "clv_365d", "offer_redemption_7d", "demand"}


def _write(tmp_path: Path, stem: str, **changes: object) -> Path:
    spec = yaml.safe_load((Path("training/specs") / "purchase_30d.yml").read_text())
    spec["name"] = stem
    spec.update(changes)
    path = tmp_path / f"{stem}.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_six_shipped_models_load() -> None:
    assert set(model_specs()) == SHIPPED


def test_a_wrong_key_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", selection_metrc="roc_auc")
    with pytest.raises(SpecError, match=r"m\.yml: selection_metrc: Extra inputs are not permitted"):
        load_spec(path)


def test_a_wrong_type_names_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", holdout_periods="eight")
    with pytest.raises(SpecError, match=r"holdout_periods: Input should be a valid integer"):
        load_spec(path)


def test_a_nested_field_is_named_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", class_balance={"policy": "oversample"})
    with pytest.raises(SpecError, match=r"class_balance\.policy: Input should be"):
        load_spec(path)


def test_a_binary_model_refuses_regressors(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", candidates=["logistic_regression", "ridge"])
    with pytest.raises(SpecError, match=r"binary models take classifiers only; got \['ridge'\]"):
        load_spec(path)


def test_bg_nbd_gamma_gamma_needs_the_mean_order_value(tmp_path: Path) -> None:
    spec = yaml.safe_load((Path("training/specs") / "clv_365d.yml").read_text())
    spec["name"] = "m"
    spec["btyd_columns"] = spec["btyd_columns"][:3]
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=r"bg_nbd_gamma_gamma .* a fourth column, the mean order value"):
        load_spec(path)


def test_the_recent_level_is_a_setting() -> None:
    from storecast.config import load_config
    from storecast.training.spec import model_specs

    on = model_specs(load_config([], environ={}).values)
    off = model_specs(load_config(["customer_recent_level=false"], environ={}).values)
    for name in ("purchase_30d", "churn_90d", "clv_365d"):
        # One rate of orders for the probabilities and the spend alike.
        assert on[name].recent_column == "frequency_90d"
        assert off[name].recent_column is None


def test_the_recent_window_agrees_with_its_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", recent_days=30)
    with pytest.raises(
        SpecError, match=r"recent_column frequency_90d sums 90 days by its name, recent_days says 30"
    ):
        load_spec(path)


@pytest.mark.parametrize("buckets", [[], [0, 4], [2, 2, 4], [4, 2]])
def test_horizon_buckets_must_increase(tmp_path: Path, buckets: list[int]) -> None:
    path = _write(tmp_path, "m", horizon_buckets=buckets)
    with pytest.raises(SpecError, match=r"horizon_buckets must be increasing positive periods"):
        load_spec(path)


def test_the_label_cannot_be_a_feature(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", features={"numeric": ["recency_days", "purchased_in_horizon"]})
    with pytest.raises(SpecError, match=r"features must not include the label"):
        load_spec(path)


@pytest.mark.parametrize("subset", ["calendar", "planned"])
def test_a_feature_exempt_from_drift_must_be_a_feature(tmp_path: Path, subset: str) -> None:
    path = _write(tmp_path, "m", features={"numeric": ["recency_days"], subset: ["recency_dayz"]})
    with pytest.raises(SpecError, match=rf"{subset} columns must be features too: \['recency_dayz'\]"):
        load_spec(path)


def test_the_file_name_must_match_the_model_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", name="other")
    with pytest.raises(SpecError, match=r"name is 'other' but the file is named 'm'"):
        load_spec(path)


def test_a_classifier_cannot_be_refit_on_its_calibration_window(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", refit_before_test=True)
    with pytest.raises(SpecError, match="cannot be refit"):
        load_spec(path)


def test_a_version_registered_under_an_earlier_field_name_still_reads() -> None:
    stored = model_specs()["clv_365d"].model_dump(mode="json")
    stored["refit_on_train_and_validation"] = stored.pop("refit_before_test")
    assert stored_spec(stored) == model_specs()["clv_365d"]
    stored["refit_befor_test"] = True
    with pytest.raises(ValueError, match="refit_befor_test"):
        stored_spec(stored)


def test_unknown_model_names_are_listed_with_the_known_ones() -> None:
    with pytest.raises(SpecError, match=r"unknown model\(s\) purchase_7d; known models: .*purchase_30d"):
        select_specs(["purchase_7d"])


def test_a_spec_directory_is_loaded_as_a_registry(tmp_path: Path) -> None:
    _write(tmp_path, "alpha")
    _write(tmp_path, "beta")
    assert list(load_specs(tmp_path)) == ["alpha", "beta"]


def test_horizons_come_from_the_settings_and_are_stated_once() -> None:
    specs = model_specs(load_config(["purchase_horizon_days=181", "churn_horizon_days=181"]).values)
    assert specs["purchase_30d"].horizon_days == 181
    assert specs["churn_90d"].horizon_days == 181
    # The embargo follows the horizon unless the spec sets its own.
    assert specs["purchase_30d"].embargo == 181
    assert specs["clv_365d"].horizon_days == 365
    for path in Path("training/specs").glob("*.yml"):
        assert "horizon_days" not in yaml.safe_load(path.read_text()), f"{path} states a horizon number"


def test_weekly_grain_gives_the_demand_spec_periods_and_weekly_features() -> None:
    daily = model_specs(load_config().values)["demand"]
    weekly = model_specs(load_config(["demand_grain=week", "demand_horizon=4"]).values)["demand"]
    assert (daily.horizon_days, daily.horizon_periods, daily.period_days) == (28, 28, 1)
    assert (weekly.horizon_days, weekly.horizon_periods, weekly.period_days) == (28, 4, 7)
    assert weekly.horizon_buckets == [1, 2, 4]
    assert "units_lag_52" in weekly.feature_columns
    assert "target_day_of_week" not in weekly.feature_columns
    assert "units_lag_7" in daily.feature_columns
    assert "units_lag_52" not in daily.feature_columns
    # The weekday is a calendar feature by day, and no feature by week.
    assert {"target_day_of_week", "target_year_sin_1"} <= set(daily.features.calendar)
    assert set(weekly.features.calendar) == set(daily.features.calendar) - {
        "target_day_of_week",
        "target_days_to_month_end",
    }
    # The planned discount's expected lift, and the period before's, are planned features by
    # week, and no features by day.
    lifts = {"promo_log_lift", "previous_period_log_lift"}
    assert lifts <= set(weekly.features.planned)
    assert lifts <= set(weekly.feature_columns)
    assert set(daily.features.planned) == set(weekly.features.planned) - lifts
    # Each grain forecasts relative to its own recent level, one of its features.
    assert (daily.level_column, weekly.level_column) == ("units_mean_28", "units_mean_4")
    assert weekly.level_column in weekly.features.numeric


def test_monthly_grain_steps_by_calendar_months() -> None:
    config = load_config(["demand_grain=month", "demand_horizon=3"])
    monthly = model_specs(config.values)["demand"]
    # Days are an upper bound (the embargo); label windows end a calendar month on.
    assert (monthly.horizon_days, monthly.horizon_periods, monthly.period_days) == (93, 3, 31)
    assert (monthly.period_interval, monthly.horizon_interval) == ("1 month", "3 month")
    daily = model_specs(load_config().values)["demand"]
    assert (daily.period_interval, daily.horizon_interval) == ("1 day", "28 day")
    weekly = model_specs(load_config(["demand_grain=week"]).values)["demand"]
    assert weekly.horizon_interval == "28 days"
    assert model_specs(load_config().values)["purchase_30d"].horizon_interval == "30 days"
    assert {"units_same_period_last_year", "units_mean_3", "promo_log_lift"} <= set(monthly.feature_columns)
    assert not {"units_lag_52", "target_day_of_week"} & set(monthly.feature_columns)
    assert monthly.level_column == "units_mean_3"
    # Left at its default of 28 days, the horizon keeps its span: one month.
    assert model_specs(load_config(["demand_grain=month"]).values)["demand"].horizon_periods == 1


def test_a_horizon_var_that_is_not_a_setting_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", horizon_var="purchase_horizon")
    with pytest.raises(SpecError, match=r"horizon_var names 'purchase_horizon', which is not a setting"):
        load_spec(path, load_config().values)


def test_the_offer_metrics_rank_as_many_offers_as_the_marts_recommend() -> None:
    # One number: top-k of the offer metrics is the recommendations_k setting of the marts.
    assert model_specs(load_config().values)["offer_redemption_7d"].top_k == 3
    five = model_specs(load_config(["recommendations_k=5"]).values)["offer_redemption_7d"]
    assert five.top_k == 5


def test_a_level_column_by_grain_is_a_mapping_and_not_given_twice(tmp_path: Path) -> None:
    data = yaml.safe_load(Path("training/specs/demand.yml").read_text())
    path = tmp_path / "demand.yml"
    path.write_text(yaml.safe_dump({**data, "level_column": "units_mean_4"}))
    with pytest.raises(SpecError, match="give level_column_by_grain or level_column, not both"):
        load_spec(path, load_config().values)
    path.write_text(yaml.safe_dump({**data, "level_column_by_grain": "units_mean_4"}))
    with pytest.raises(SpecError, match="level_column_by_grain maps a grain"):
        load_spec(path, load_config().values)
