"""Fitting a candidate: a solver that stops at its iteration limit is said in one line,
not as scikit-learn's advice to raise ``max_iter`` (a parameter no setting reaches)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import PoissonRegressor

from storecast.training import estimators
from storecast.training.data import Frame
from storecast.training.fitting import fit_candidate
from tests.unit.specs import spec_for

NUMERIC = ["level", "discount"]


def _frame(n: int) -> Frame:
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"level": rng.gamma(2.0, 50.0, n), "discount": rng.random(n)})
    label = rng.poisson(1 + features["level"].to_numpy() * (1 + 3 * features["discount"].to_numpy()))
    return Frame(
        keys=pd.DataFrame({"series_id": np.arange(n)}),
        features=features,
        label=label.astype(np.float64),
        time=np.full(n, np.datetime64("2026-01-05")),
    )


def test_a_solver_stopped_at_its_iteration_limit_is_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real solver, allowed two iterations: it cannot converge on these counts.
    monkeypatch.setitem(
        estimators.ESTIMATORS, "poisson_glm", (lambda spec: PoissonRegressor(max_iter=2), "scaled")
    )
    spec = spec_for("forecast", NUMERIC, ["poisson_glm"])
    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline = fit_candidate(spec, "poisson_glm", _frame(500), say=said.append)
    assert said == ["test_model: poisson_glm stopped at its solver's iteration limit before converging"]
    assert not [w for w in caught if "max_iter" in str(w.message)]
    assert np.isfinite(pipeline.predict(_frame(20).features)).all()


def test_a_converged_solver_says_nothing() -> None:
    spec = spec_for("forecast", NUMERIC, ["poisson_glm"])
    said: list[str] = []
    fit_candidate(spec, "poisson_glm", _frame(500), say=said.append)
    assert said == []


def test_calibrating_on_few_positives_warns_of_nothing_and_leaves_the_filters_alone() -> None:
    from sklearn.linear_model import LogisticRegression

    from storecast.training.calibration import calibrator

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] > 2.0).astype(int)  # a handful of positives: folds smaller than sklearn likes
    model = LogisticRegression().fit(x, y)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calibrated = calibrator(model, "sigmoid", x, y)
    assert not [w for w in caught if "least populated class" in str(w.message)]
    assert warnings.filters == filters
    assert calibrated.predict_proba(x).shape == (200, 2)


def test_a_calibrator_fits_on_four_rows_and_as_sklearns_five_folds_on_more() -> None:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator
    from sklearn.linear_model import LogisticRegression

    from storecast.training.calibration import calibrator

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + rng.normal(size=200) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    for method in ("sigmoid", "isotonic"):
        folds = CalibratedClassifierCV(FrozenEstimator(model), method=method, ensemble=False).fit(x, y)
        np.testing.assert_allclose(calibrator(model, method, x, y).predict_proba(x), folds.predict_proba(x))
    # sklearn's five folds need five rows: a young base's validation half held four.
    few = calibrator(model, "sigmoid", x[:4], np.array([0, 1, 0, 1]))
    assert few.predict_proba(x).shape == (200, 2)


@pytest.mark.parametrize(
    ("dates", "advice"),
    [
        (
            1,
            "load more history (each period matures more labels), or try another horizon (--var churn_days, now 90)",
        ),
        (12, ": try another horizon (--var churn_days, now 90)"),
    ],
)
def test_labels_of_one_outcome_say_whether_the_data_is_young(dates: int, advice: str) -> None:
    from datetime import date, timedelta

    from storecast.training.errors import TrainingError
    from storecast.training.split import TimeSplit
    from storecast.training.train import _trainable

    spec = spec_for("binary", NUMERIC, ["logistic_regression"], horizon_days=90, horizon_var="churn_days")
    times = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(dates)]
    rows = _frame(9)
    rows.label = np.zeros(9)
    split = TimeSplit(train=times, validation=[], test=[])
    with pytest.raises(TrainingError) as raised:
        _trainable(spec, split, rows, lambda _: None)
    message = str(raised.value)
    assert f"every training label is False (9 rows from {dates} as-of date" in message
    assert message.endswith(advice)
    assert ("load more history" in message) == (dates == 1)
    # Where a setting, not the data, keeps the history short, the advice names it instead.
    with pytest.raises(TrainingError) as raised:
        _trainable(spec, split, rows, lambda _: None, lambda: "raise --var history_weeks, now 8")
    assert ("load more history" in str(raised.value)) is False
    assert ("raise --var history_weeks, now 8, or try another horizon" in str(raised.value)) == (dates == 1)


def test_trees_on_few_rows_split_with_leaves_sized_to_them() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline

    few, many = _frame(60), _frame(2000)
    # At the shared 40 rows a leaf, 60 rows cannot be split: every tree is one leaf.
    stump = HistGradientBoostingRegressor(min_samples_leaf=40, max_iter=5).fit(few.features, few.label)
    assert all(predictor.nodes.shape[0] == 1 for (predictor,) in stump._predictors)
    spec = spec_for("forecast", NUMERIC, ["hist_gradient_boosting_regressor"])
    trees = fit_candidate(spec, "hist_gradient_boosting_regressor", few).named_steps["estimator"]
    assert trees.min_samples_leaf == 6  # a 10th of 60
    assert (estimators.leaf_cap(30), estimators.leaf_cap(200)) == (estimators.MIN_LEAF_ROWS, 20)
    assert max(predictor.nodes.shape[0] for (predictor,) in trees._predictors) > 1
    assert (
        fit_candidate(spec, "hist_gradient_boosting_regressor", many)
        .named_steps["estimator"]
        .min_samples_leaf
        == 40
    )
    # A blend fitted as a candidate (the refit before the test window) sizes each member's.
    blend_spec = spec_for("forecast", NUMERIC, ["hist_gradient_boosting_blend"], level_column="level")
    blend = fit_candidate(blend_spec, "hist_gradient_boosting_blend", few).named_steps["estimator"]
    assert [member.estimator_.min_samples_leaf for member in blend.estimators_] == [6, 6]
    # An estimator's own smaller setting is kept.
    own = estimators.fit_leaves_to(
        Pipeline([("trees", HistGradientBoostingRegressor(min_samples_leaf=3))]), 60
    )
    assert own.named_steps["trees"].min_samples_leaf == 3
