"""Blends: the mean of their members' predictions, in scikit-learn and through ONNX."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.linear_model import LinearRegression, PoissonRegressor

from storecast.training.blend import MeanRegressor
from storecast.training.estimators import BLENDS, ESTIMATORS, make_pipeline
from storecast.training.export import export, float32_thresholds, onnx_inputs, parity, predict_onnx
from tests.unit.specs import spec_for
from tests.unit.test_target import _promotion_weeks

NUMERIC = ["horizon", "level", "discount"]


def test_a_blend_predicts_its_members_mean() -> None:
    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    y = np.exp(0.1 * x["a"]) + x["b"]
    blend = MeanRegressor([("linear", LinearRegression()), ("poisson", PoissonRegressor())]).fit(x, y)
    linear, poisson = LinearRegression().fit(x, y), PoissonRegressor().fit(x, y)
    assert_allclose(blend.predict(x), (linear.predict(x) + poisson.predict(x)) / 2)
    # Members fitted already are blended as they are, not fitted again.
    assert MeanRegressor.of_fitted([("linear", linear)]).estimators_[0] is linear
    with pytest.raises(ValueError, match="at least one member"):
        MeanRegressor([]).fit(x, y)


def test_every_blend_is_made_of_registered_candidates_taking_its_input() -> None:
    for name, members in BLENDS.items():
        assert len(members) >= 2
        assert all(ESTIMATORS[m][1] == ESTIMATORS[name][1] for m in members)
        # One level only: export, explanation and threshold snapping look one blend deep.
        assert not set(members) & set(BLENDS)


def test_the_gradient_boosting_blend_exports_as_its_members_mean() -> None:
    spec = spec_for(
        "forecast",
        NUMERIC,
        ["hist_gradient_boosting_blend"],
        features={"numeric": NUMERIC, "categorical": ["kind"]},
        level_column="level",
        horizon_days=7,
    )
    frame, y = _promotion_weeks()
    pipeline = float32_thresholds(make_pipeline(spec, "hist_gradient_boosting_blend").fit(frame, y))
    blend = pipeline.named_steps["estimator"]
    transformed = pipeline.named_steps["preprocess"].transform(frame)
    members = [m.predict(transformed) for m in blend.estimators_]
    # Poisson loss and log1p, both relative to the level: two different forecasts, averaged.
    assert np.abs(members[0] - members[1]).mean() > 0.01 * np.mean(y)
    assert_allclose(pipeline.predict(frame), np.mean(members, axis=0))
    # The thresholds of both members were snapped to float32 (what makes ONNX agree).
    for member in (blend.estimators_[0].estimator_, blend.estimators_[1].estimator_):
        for (predictor,) in member._predictors:
            thresholds = predictor.nodes["num_threshold"]
            assert_allclose(thresholds.astype(np.float32).astype(np.float64), thresholds, rtol=0, atol=0)
    onnx_bytes = export(pipeline, spec)
    feed = onnx_inputs(frame, NUMERIC, ["kind"])
    assert_allclose(predict_onnx(onnx_bytes, "forecast", feed), pipeline.predict(frame), rtol=1e-4, atol=1e-3)
    assert parity(onnx_bytes, pipeline, spec, frame) < 1e-2


def test_training_blends_the_members_it_fitted_as_candidates_without_fitting_them_again() -> None:
    from storecast.training.data import Frame
    from storecast.training.fitting import fit_blend, fit_candidate

    spec = spec_for(
        "forecast",
        NUMERIC,
        ["hist_gradient_boosting_log1p", "hist_gradient_boosting_blend"],
        features={"numeric": NUMERIC, "categorical": ["kind"]},
        level_column="level",
        horizon_days=7,
    )
    frame, y = _promotion_weeks(2000)
    rows = Frame(
        keys=pd.DataFrame(index=frame.index),
        features=frame,
        label=y.astype(float),
        time=np.full(len(frame), np.datetime64("2026-01-05")),
    )
    log1p = fit_candidate(spec, "hist_gradient_boosting_log1p", rows)
    blend = fit_blend(spec, "hist_gradient_boosting_blend", {"hist_gradient_boosting_log1p": log1p}, rows)
    poisson, reused = blend.named_steps["estimator"].estimators_
    assert reused is log1p.named_steps["estimator"]
    assert poisson.estimator_.loss == "poisson"
    # The same forecast as a blend fitted from scratch on the same rows.
    fresh = fit_candidate(spec, "hist_gradient_boosting_blend", rows)
    assert_allclose(blend.predict(frame), fresh.predict(frame))
