"""Explanations: contributions plus the base value give the model's raw score, for every
kind of model storecast trains, through the exported explainer (ONNX preprocessing)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from storecast.training.estimators import make_pipeline
from storecast.training.explain import Explainer, export_explainer, raw_score, reasons_json
from storecast.training.export import float32_thresholds, onnx_inputs
from storecast.training.spec import ModelSpec
from tests.unit.specs import spec_for

NUMERIC = ["level", "discount", "orders", "recency_days", "age_days", "basket"]
CATEGORICAL = ["store", "kind"]
BTYD = ["orders", "recency_days", "age_days", "basket"]


def _rows(n: int, seed: int) -> pd.DataFrame:
    """Rows with a few missing numbers, 300 stores, and customers' repeat orders drawn
    from a BG/NBD (so that the models reading its quantities have something to fit)."""
    rng = np.random.default_rng(seed)
    level = rng.normal(size=n)
    level[rng.random(n) < 0.05] = np.nan
    age = rng.uniform(60, 700, n)
    rate, dropout = rng.gamma(0.8, 1 / 40, n), rng.beta(0.9, 3.0, n)
    orders, last = np.ones(n), np.zeros(n)  # the first order at age 0
    for i in range(n):
        t = rng.exponential(1 / rate[i])
        while t <= age[i]:
            orders[i], last[i] = orders[i] + 1, t
            if rng.random() < dropout[i]:
                break
            t += rng.exponential(1 / rate[i])
    return pd.DataFrame(
        {
            "level": level,
            "discount": (rng.random(n) < 0.2) * rng.uniform(0.1, 0.4, n),
            "orders": orders,
            "recency_days": age - last,
            "age_days": age,
            "basket": rng.gamma(4, 10, n),
            "store": rng.integers(0, 300, n).astype(str),
            "kind": rng.choice(["a", "b", "c"], n),
        }
    ).astype(dict.fromkeys(NUMERIC, np.float32))


def _target(frame: pd.DataFrame, task: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    store = frame["store"].astype(int).to_numpy()
    signal = (
        0.5 * np.nan_to_num(frame["level"].to_numpy())
        + 3 * frame["discount"].to_numpy()
        + np.sin(store)
        + 0.2 * frame["orders"].to_numpy()
    )
    if task == "binary":
        return np.asarray(rng.random(len(frame)) < 1 / (1 + np.exp(0.5 - signal)), dtype=int)
    return np.asarray(rng.poisson(np.exp(1 + signal)), dtype=float)


CASES = [
    ("forecast", "hist_gradient_boosting_regressor", False),
    ("forecast", "hist_gradient_boosting_poisson", False),
    ("forecast", "hist_gradient_boosting_poisson_level", False),
    ("forecast", "hist_gradient_boosting_log1p", False),
    ("forecast", "hist_gradient_boosting_blend", False),
    ("forecast", "ridge", False),
    ("regression", "tweedie_glm", False),
    ("regression", "bg_nbd_spend", False),
    ("regression", "bg_nbd_gamma_gamma", False),
    ("binary", "hist_gradient_boosting_classifier", True),
    ("binary", "logistic_regression", True),
    ("binary", "bg_nbd", False),
    ("binary", "bg_nbd_probability", True),
]


def _spec(task: str, candidate: str) -> ModelSpec:
    return spec_for(
        task,
        NUMERIC,
        [candidate],
        # 300 stores: coded for the trees, left out by the linear models.
        features={"numeric": NUMERIC, "categorical": CATEGORICAL, "native_only": ["store"]},
        btyd_columns=BTYD if task != "forecast" else None,
    )


@pytest.mark.parametrize(("task", "candidate", "calibrated"), CASES)
def test_contributions_and_base_add_up_to_the_raw_score(task: str, candidate: str, calibrated: bool) -> None:
    from storecast.training.btyd import BTYDFeatures

    spec = _spec(task, candidate)
    train, test = _rows(4_000, 0), _rows(1_000, 1)
    test.loc[:49, "kind"] = "unseen"  # a category the model never saw
    y = _target(train, task, 0)
    btyd = BTYDFeatures(horizon_days=spec.horizon_days).fit(train[BTYD]) if task != "forecast" else None
    pipeline = float32_thresholds(make_pipeline(spec, candidate, btyd).fit(train[spec.feature_columns], y))
    if calibrated:
        pipeline = Pipeline(
            [
                ("preprocess", pipeline.steps[0][1]),
                (
                    "calibrate",
                    CalibratedClassifierCV(FrozenEstimator(pipeline.steps[-1][1]), method="isotonic").fit(
                        pipeline.steps[0][1].transform(train[spec.feature_columns]), y
                    ),
                ),
            ]
        )
    explainer = Explainer.load(export_explainer(pipeline, spec, train))
    feed = onnx_inputs(test, list(spec.features.numeric), list(spec.features.categorical))
    contributions = explainer.contributions(feed)
    expected = raw_score(pipeline, test[spec.feature_columns])
    assert contributions.shape == (len(test), len(explainer.names))
    # float32 inputs through ONNX Runtime; the sums themselves are float64.
    assert_allclose(explainer.base + contributions.sum(axis=1), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(contributions).sum(axis=0).max() > 0
    # Contributions are reported per input column: one-hot columns summed back, BG/NBD's
    # quantities credited to the customer columns they are computed from.
    assert set(explainer.names) <= {*NUMERIC, *CATEGORICAL}
    if candidate.startswith("bg_nbd"):
        assert set(explainer.names) == set(BTYD)
    if candidate.startswith("hist_"):
        # The discount drives the target, so the trees give it credit.
        assert np.abs(contributions[:, explainer.names.index("discount")]).mean() > 0.01


def test_reasons_keep_the_largest_contributions_with_their_values() -> None:
    contributions = np.array([[0.5, -2.0, 0.1], [0.0, 0.0, 0.3]])
    values = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"], "c": [3, 4]})
    first, second = (json.loads(r) for r in reasons_json(contributions, ["a", "b", "c"], values, top=2))
    assert first == [
        {"feature": "b", "value": "x", "contribution": -2.0, "direction": "down"},
        {"feature": "a", "value": 1.0, "contribution": 0.5, "direction": "up"},
    ]
    # A zero contribution is no reason, and NaN is null.
    assert second == [{"feature": "c", "value": 4, "contribution": 0.3, "direction": "up"}]


def test_bg_nbd_quantities_are_credited_to_their_inputs_by_shapley_values() -> None:
    from storecast.training.btyd import BTYDFeatures

    spec = _spec("binary", "bg_nbd_probability")
    train = _rows(3_000, 0)
    y = _target(train, "binary", 0)
    btyd = BTYDFeatures(horizon_days=spec.horizon_days).fit(train[BTYD])
    pipeline = make_pipeline(spec, "bg_nbd_probability", btyd).fit(train[spec.feature_columns], y)
    explainer = Explainer.load(export_explainer(pipeline, spec, train))
    rows = _rows(200, 1)
    # The reference customer (the training means) has nothing to explain.
    rows.loc[0, BTYD] = train[BTYD].mean().to_numpy()
    contributions = explainer.contributions(
        onnx_inputs(rows, list(spec.features.numeric), list(spec.features.categorical))
    )
    by_name = dict(zip(explainer.names, contributions.T, strict=True))
    assert_allclose(contributions[0], 0.0, atol=1e-5)
    # The probability of a purchase does not read the mean order value: no credit (a dummy).
    assert_allclose(by_name["basket"], 0.0, atol=1e-9)
    # Recency carries the most: a customer long silent is less likely to buy.
    assert np.abs(by_name["recency_days"]).mean() > np.abs(by_name["age_days"]).mean()
    silent = rows["recency_days"].to_numpy() > 2 * train["recency_days"].mean()
    assert (by_name["recency_days"][silent] < 0).mean() > 0.9
