"""The log1p-target regressor: its bias correction, and ONNX parity with the back-transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.ensemble import HistGradientBoostingRegressor

from storecast.training.estimators import make_pipeline
from storecast.training.export import export, onnx_inputs, predict_onnx
from storecast.training.target import Log1pRegressor
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


def test_a_negative_target_is_refused() -> None:
    frame, _ = _promotion_weeks(50)
    with pytest.raises(ValueError, match="non-negative"):
        Log1pRegressor(HistGradientBoostingRegressor()).fit(frame[["level"]], -np.ones(50))
