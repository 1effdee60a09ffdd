"""Metrics on cases whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from storecast.training import metrics as m
from storecast.training.intervals import bounds
from storecast.training.registry import json_safe


def test_ranking_metrics_per_customer() -> None:
    y = np.array([1, 0, 0, 0, 1, 1, 0])
    p = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.6, 0.5])
    groups = np.array([1, 1, 1, 2, 2, 2, 3])
    out = m.ranking_metrics(y.astype(float), p, groups, k=2)
    # Customer 1: top-2 = [1, 0] -> precision 1/2, recall 1/1. Customer 2: top-2 by score =
    # [0 (0.7), 1 (0.6)] -> precision 1/2, recall 1/2. Customer 3 has no positive.
    assert out["precision_at_2"] == pytest.approx(0.5)
    assert out["recall_at_2"] == pytest.approx(0.75)
    ideal_2 = 1 + 1 / np.log2(3)
    assert out["ndcg_at_2"] == pytest.approx((1.0 + (1 / np.log2(3)) / ideal_2) / 2)


def test_normalized_gini_is_one_for_a_perfect_ranking_and_zero_for_a_constant() -> None:
    y = np.array([0.0, 10.0, 3.0, 0.0, 50.0])
    assert m.normalized_gini(y, y) == pytest.approx(1.0)
    assert m.normalized_gini(y, -y) < 0


def test_expected_calibration_error_is_zero_when_rates_match() -> None:
    p = np.repeat([0.15, 0.85], 20)
    y = np.array(([1] * 3 + [0] * 17) + ([1] * 17 + [0] * 3), dtype=float)
    assert m.expected_calibration_error(y, p) == pytest.approx(0.0)


def test_forecast_coverage_and_mase() -> None:
    y = np.array([0.0, 2.0, 4.0, 6.0])
    p = np.array([1.0, 2.0, 3.0, 6.0])
    naive = np.array([2.0, 0.0, 4.0, 4.0])
    horizon = np.array([1.0, 3.0, 9.0, 20.0])
    # Stored the way versions before level-aware intervals were: one width per bucket.
    intervals = {"1-7": {"0.8": 0.5}, "8-14": {"0.8": 2.0}, "15-28": {"0.8": 0.1}}
    out = m.forecast_metrics(y, p, naive, horizon, [7, 14, 28], bounds(intervals, p, horizon, [7, 14, 28]))
    assert out["mae"] == pytest.approx(0.5)
    assert out["mase"] == pytest.approx(0.5 / 1.5)
    assert out["coverage_0.8"] == pytest.approx(0.75)  # the first row misses: |0 - 1| > 0.5
    by_horizon = out["by_horizon"]
    assert isinstance(by_horizon, dict)
    assert set(by_horizon) == {"1-7", "8-14", "15-28"}
    assert len(out["coverage_0.8_by_level_quartile"]) == 4  # type: ignore[arg-type]


def test_float32_thresholds_keep_every_float32_decision() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    from storecast.training.export import float32_thresholds

    rng = np.random.default_rng(0)
    x = (rng.random((2000, 3)) * 100).astype(np.float32).astype(np.float64)
    y = x[:, 0] * 2 + rng.random(2000)
    model = Pipeline([("estimator", HistGradientBoostingRegressor(max_iter=30, random_state=0))]).fit(x, y)
    before = model.predict(x)
    float32_thresholds(model)
    thresholds = np.concatenate(
        [p.nodes["num_threshold"] for ps in model.steps[0][1]._predictors for p in ps]
    )
    assert np.array_equal(thresholds.astype(np.float32).astype(np.float64), thresholds)
    assert np.array_equal(model.predict(x), before)


def test_a_poisson_gradient_boosting_model_exports_with_its_log_link() -> None:
    import pandas as pd
    from numpy.testing import assert_allclose

    from storecast.training.estimators import make_pipeline
    from storecast.training.export import export, onnx_inputs, predict_onnx
    from tests.unit.specs import spec_for

    spec = spec_for(
        "forecast",
        ["horizon", "level"],
        ["hist_gradient_boosting_poisson"],
        features={"numeric": ["horizon", "level"], "categorical": ["kind"]},
        horizon_days=7,
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "horizon": rng.integers(1, 8, 3000).astype(np.float32),
            "level": rng.random(3000).astype(np.float32) * 4,
            "kind": rng.choice(["a", "b"], 3000),
        }
    )
    y = rng.poisson(np.exp(frame["level"] + (frame["kind"] == "b")))
    pipeline = make_pipeline(spec, "hist_gradient_boosting_poisson").fit(frame, y)
    feed = onnx_inputs(frame, ["horizon", "level"], ["kind"])
    onnx_pred = predict_onnx(export(pipeline, spec), "forecast", feed)
    # Without the exp skl2onnx would return log-scale scores, off by orders of magnitude.
    assert_allclose(onnx_pred, pipeline.predict(frame), rtol=1e-4, atol=1e-4)


def test_margin_at_k_sums_each_customers_top_k() -> None:
    # Customer 1: scores 0.9 (margin 2, redeemed), 0.5 (margin 4), 0.1 (margin 8, redeemed);
    # customer 2: one offer, 0.2 (margin 10, not redeemed). k = 2.
    y = np.array([1.0, 0.0, 1.0, 0.0])
    p = np.array([0.9, 0.5, 0.1, 0.2])
    groups = np.array([1, 1, 1, 2])
    margin = np.array([2.0, 4.0, 8.0, 10.0])
    out = m.margin_at_k(y, p, groups, 2, margin)
    assert out["expected_margin_at_2"] == pytest.approx(((0.9 * 2 + 0.5 * 4) + 0.2 * 10) / 2)
    assert out["realised_margin_at_2"] == pytest.approx((2.0 + 0.0) / 2)


def test_a_level_band_no_forecast_fell_in_has_no_coverage_and_stores_as_null() -> None:
    # Tied forecasts put every row in the top two quartile bands: the lower two are empty.
    forecast = np.array([1.0, 1.0, 1.0, 5.0])
    coverage = m.coverage_by_band(forecast, forecast, np.array([True, True, False, True]))
    assert np.isnan(coverage[:2]).all()
    assert coverage[2:] == [pytest.approx(2 / 3), 1.0]
    # JSON has no NaN (Postgres rejects Python's): the registry stores null.
    stored = json.loads(json.dumps(json_safe({"by_band": coverage, "bias": float("inf")}), allow_nan=False))
    assert stored == {"by_band": [None, None, pytest.approx(2 / 3), 1.0], "bias": None}
