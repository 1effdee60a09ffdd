"""The regressors relative to a level: the log1p target's bias correction, forecasting
relative to a level (log1p, and Poisson on the rate over the level), and ONNX parity with
the back-transforms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from pydantic import ValidationError
from sklearn.ensemble import HistGradientBoostingRegressor

from storecast.training.estimators import make_pipeline
from storecast.training.export import export, onnx_inputs, predict_onnx
from storecast.training.pruning import without
from storecast.training.spec import ModelSpec
from storecast.training.target import LevelRateRegressor, Log1pRegressor, log1p_level
from tests.unit.specs import spec_for


def _promotion_weeks(n: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    """Counts with a multiplicative promotion lift and overdispersed noise."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "horizon": rng.integers(1, 5, n).astype(np.float32),
            "level": (rng.random(n) * 3).astype(np.float32),
            "discount": (rng.random(n) < 0.2) * rng.uniform(0.1, 0.4, n).astype(np.float32),
            "kind": rng.choice(["a", "b"], n),
        }
    )
    mean = np.exp(frame["level"] + 4 * frame["discount"] + 0.3 * (frame["kind"] == "b"))
    return frame, rng.negative_binomial(2, 2 / (2 + mean))


def test_the_bias_correction_restores_the_mean_that_expm1_of_a_mean_log_loses() -> None:
    frame, y = _promotion_weeks()
    x = frame[["level", "discount"]]
    plain = np.expm1(HistGradientBoostingRegressor(random_state=0).fit(x, np.log1p(y)).predict(x))
    corrected = Log1pRegressor(HistGradientBoostingRegressor(random_state=0)).fit(x, y)
    # Without the correction the summed forecast falls well short of the summed actuals.
    assert plain.sum() < 0.9 * y.sum()
    assert corrected.correction_ > 1.1
    assert abs(corrected.predict(x).sum() / y.sum() - 1) < 1e-6


def test_a_log1p_gradient_boosting_forecast_exports_with_its_back_transform() -> None:
    spec = spec_for(
        "forecast",
        ["horizon", "level", "discount"],
        ["hist_gradient_boosting_log1p"],
        features={"numeric": ["horizon", "level", "discount"], "categorical": ["kind"]},
        horizon_days=7,
    )
    frame, y = _promotion_weeks()
    pipeline = make_pipeline(spec, "hist_gradient_boosting_log1p").fit(frame, y)
    feed = onnx_inputs(frame, ["horizon", "level", "discount"], ["kind"])
    onnx_pred = predict_onnx(export(pipeline, spec), "forecast", feed)
    assert_allclose(onnx_pred, pipeline.predict(frame), rtol=1e-4, atol=1e-3)


def _level_spec() -> ModelSpec:
    return spec_for(
        "forecast",
        ["horizon", "level", "discount"],
        ["hist_gradient_boosting_log1p"],
        features={"numeric": ["horizon", "level", "discount"], "categorical": ["kind"]},
        level_column="level",
        horizon_days=7,
    )


def _series_at(levels: np.ndarray, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Weeks of series whose recent mean (``level``) is drawn from ``levels``, sales around it."""
    rng = np.random.default_rng(seed)
    level = rng.choice(levels, n).astype(np.float32)
    frame = pd.DataFrame(
        {
            "horizon": rng.integers(1, 5, n).astype(np.float32),
            "level": level,
            "discount": ((rng.random(n) < 0.2) * rng.uniform(0.1, 0.4, n)).astype(np.float32),
            "kind": rng.choice(["a", "b"], n),
        }
    )
    return frame, rng.poisson(level * np.exp(2 * frame["discount"]))


#: The candidates that forecast relative to the spec's level.
RELATIVE = ["hist_gradient_boosting_log1p", "hist_gradient_boosting_poisson_level"]


@pytest.mark.parametrize("candidate", RELATIVE)
def test_a_forecast_relative_to_the_level_follows_a_level_never_seen_in_training(candidate: str) -> None:
    frame, y = _series_at(np.array([5.0, 10.0, 20.0]), 2000, seed=1)
    test, actual = _series_at(np.array([60.0]), 500, seed=2)
    spec = _level_spec()
    relative = make_pipeline(spec, candidate).fit(frame, y)
    plain = make_pipeline(spec.model_copy(update={"level_column": None}), candidate)
    plain.fit(frame, y)
    # Trees stop at the largest level they saw; relative to the level they scale.
    assert plain.predict(test).sum() < 0.5 * actual.sum()
    assert abs(relative.predict(test).sum() / actual.sum() - 1) < 0.1


def test_poisson_on_the_rate_over_the_level_is_poisson_with_the_level_as_offset() -> None:
    frame, y = _series_at(np.array([2.0, 10.0, 50.0]), 3000, seed=4)
    x = frame[["discount"]].to_numpy()
    level = frame["level"].to_numpy(dtype=np.float64)
    rate = LevelRateRegressor(HistGradientBoostingRegressor(loss="poisson", max_iter=50, random_state=0))
    # The level as the last column, where the wrapper reads it; the trees see it too.
    with_level = np.column_stack([x, level])
    fitted = rate.set_params(level_index=1).fit(with_level, y)
    # The Poisson fit's totals hold: summed forecasts match summed actuals, and a series
    # five times another's level is forecast five times higher for the same discount.
    assert abs(fitted.predict(with_level).sum() / y.sum() - 1) < 0.01
    same_discount = np.array([[0.0, 9.0], [0.0, 49.0]])
    low, high = fitted.predict(same_discount)
    assert high / low == pytest.approx(5.0, rel=0.15)


def test_rows_selling_thousands_without_a_level_do_not_make_the_rate_diverge() -> None:
    # A seasonal product: weeks before its season at a level of 0 selling nothing, its
    # first weeks at a level of 0 selling about a thousand, beside series at their level.
    rng = np.random.default_rng(0)
    n, before, first = 5000, 400, 80
    level = rng.uniform(50.0, 150.0, n)
    y = rng.poisson(level).astype(np.float64)
    season = rng.normal(size=n)
    level[: before + first] = 0.0
    y[:before] = 0.0
    y[before : before + first] = rng.poisson(1000.0, first)
    season[before : before + first] += 3.0
    x = np.column_stack([level, season])
    trees = HistGradientBoostingRegressor(
        loss="poisson",
        max_iter=300,
        learning_rate=0.05,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        random_state=0,
    )
    predicted = LevelRateRegressor(trees, level_index=0).fit(x, y).predict(x)
    # Uncapped, the weeks before the season forecast 3e8 units on average, its first weeks
    # 1.5e7 times what they sold.
    assert predicted.max() < 2 * y.max()
    assert predicted[:before].mean() < 10.0
    assert predicted[before + first :].sum() / y[before + first :].sum() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("candidate", RELATIVE)
def test_a_forecast_relative_to_the_level_exports_with_it_a_missing_or_negative_level_as_zero(
    candidate: str,
) -> None:
    frame, y = _series_at(np.array([0.0, 3.0, 8.0, 40.0]), 2000, seed=3)
    frame.loc[frame.index[:300], "level"] = np.nan
    frame.loc[frame.index[300:400], "level"] = -2.0
    spec = _level_spec()
    pipeline = make_pipeline(spec, candidate).fit(frame, y)
    assert pipeline.steps[-1][1].level_index == 1
    feed = onnx_inputs(frame, ["horizon", "level", "discount"], ["kind"])
    onnx_pred = predict_onnx(export(pipeline, spec), "forecast", feed)
    assert_allclose(onnx_pred, pipeline.predict(frame), rtol=1e-4, atol=1e-3)
    # A missing level and a negative one both add the log1p of a level of 0.
    assert_allclose(log1p_level([np.nan, -2.0, 0.0, 3.0]), [0.0, 0.0, 0.0, np.log(4.0)])


def _lift_spec() -> ModelSpec:
    numeric = ["horizon", "level", "discount", "lift"]
    return _level_spec().model_copy(
        update={
            "features": _level_spec().features.model_copy(update={"numeric": numeric}),
            "lift_column": "lift",
        }
    )


def _deals(max_discount: float, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Weeks of series at levels 5-20, a fifth on a deal up to ``max_discount`` off, the lift
    in log units of an elasticity of -3 given as ``lift`` (a planned price's expected change)."""
    rng = np.random.default_rng(seed)
    level = rng.choice([5.0, 10.0, 20.0], n).astype(np.float32)
    discount = ((rng.random(n) < 0.2) * rng.uniform(0.05, max_discount, n)).astype(np.float32)
    frame = pd.DataFrame(
        {
            "horizon": rng.integers(1, 5, n).astype(np.float32),
            "level": level,
            "discount": discount,
            "lift": (-3.0 * np.log1p(-discount)).astype(np.float32),
            "kind": rng.choice(["a", "b"], n),
        }
    )
    return frame, rng.poisson(level * np.exp(frame["lift"]))


@pytest.mark.parametrize("candidate", RELATIVE)
def test_a_deal_deeper_than_any_seen_is_forecast_at_the_lift_given(candidate: str) -> None:
    frame, y = _deals(0.2, 4000, seed=5)
    test, _ = _deals(0.45, 4000, seed=6)
    deep = test[test["discount"] > 0.35]
    expected = (deep["level"] * np.exp(deep["lift"])).sum()
    with_lift = make_pipeline(_lift_spec(), candidate).fit(frame, y)
    without_lift = make_pipeline(_lift_spec().model_copy(update={"lift_column": None}), candidate).fit(
        frame, y
    )
    # Trees stop at the deepest deal they saw (about 1.9 times the level); with the lift in
    # the offset, a deal at 40 % off is forecast near its 4.6-fold lift.
    assert without_lift.predict(deep).sum() < 0.6 * expected
    assert abs(with_lift.predict(deep).sum() / expected - 1) < 0.1
    # Exported with it, a missing lift counting as none.
    test.loc[test.index[:200], "lift"] = np.nan
    feed = onnx_inputs(test, _lift_spec().features.numeric, ["kind"])
    onnx_pred = predict_onnx(export(with_lift, _lift_spec()), "forecast", feed)
    assert_allclose(onnx_pred, with_lift.predict(test), rtol=1e-4, atol=1e-3)


def test_a_lift_column_must_be_a_numeric_feature_and_goes_when_left_out() -> None:
    with pytest.raises(ValidationError, match="lift_column 'promo' must be one of the numeric features"):
        spec_for("forecast", ["horizon", "level"], ["hist_gradient_boosting_log1p"], lift_column="promo")
    reduced = without(_lift_spec(), ["lift"])
    assert reduced.lift_column is None
    assert make_pipeline(reduced, "hist_gradient_boosting_log1p").steps[-1][1].lift_index is None


def test_a_level_left_out_as_constant_is_no_longer_forecast_against() -> None:
    reduced = without(_level_spec(), ["level"])
    assert reduced.level_column is None
    assert make_pipeline(reduced, "hist_gradient_boosting_log1p").steps[-1][1].level_index is None
    kept = without(_level_spec(), ["horizon"])
    # The level moves to where the remaining numbers put it.
    assert make_pipeline(kept, "hist_gradient_boosting_log1p").steps[-1][1].level_index == 0


def test_a_level_column_must_be_a_numeric_feature() -> None:
    with pytest.raises(ValidationError, match="level_column 'recent' must be one of the numeric features"):
        spec_for("forecast", ["horizon", "level"], ["hist_gradient_boosting_log1p"], level_column="recent")


def test_a_negative_target_is_refused() -> None:
    frame, _ = _promotion_weeks(50)
    with pytest.raises(ValueError, match="non-negative"):
        Log1pRegressor(HistGradientBoostingRegressor()).fit(frame[["level"]], -np.ones(50))
