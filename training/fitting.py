"""Fit one candidate estimator, or a blend of candidates, on a window of training rows."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline

from storecast.training.blend import MeanRegressor
from storecast.training.btyd import BTYDFeatures
from storecast.training.data import Frame
from storecast.training.estimators import BLENDS, fit_leaves_to, make_pipeline
from storecast.training.export import float32_thresholds
from storecast.training.spec import ModelSpec

#: Where a step says what it is doing (a line at a time): the CLI prints it, tests collect it.
Progress = Callable[[str], None]


def fit_candidate(
    spec: ModelSpec, name: str, train: Frame, btyd: BTYDFeatures | None = None, say: Progress | None = None
) -> Pipeline:
    """Fit candidate ``name`` on ``train``. A solver that stops at its iteration limit is
    said in one line (sklearn's advice to raise ``max_iter`` is not a setting a user has):
    the candidate is still judged on validation like the rest. Trees' leaves are sized to
    the rows (:func:`storecast.training.estimators.fit_leaves_to`); a blend's members are
    each fitted as a candidate (:func:`fit_blend`)."""
    if name in BLENDS:
        return fit_blend(spec, name, {}, train, btyd, say)
    assert train.label is not None
    data = train
    if spec.task == "binary" and spec.class_balance.policy == "downsample_negatives":
        # Keeping a share of the negatives speeds up fitting on rare positives; the
        # calibration on the (untouched) validation window undoes the shift in rates.
        rng = np.random.default_rng(0)
        keep = (train.label == 1) | (rng.random(len(train)) < spec.class_balance.negative_rate)
        data = train.subset(keep)
    pipeline = fit_leaves_to(make_pipeline(spec, name, btyd), len(data))
    assert data.label is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(data.features[spec.feature_columns], data.label)
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if say and any(issubclass(w.category, ConvergenceWarning) for w in caught):
        say(f"{spec.name}: {name} stopped at its solver's iteration limit before converging")
    return float32_thresholds(pipeline)


def fit_blend(
    spec: ModelSpec,
    name: str,
    fitted: dict[str, Pipeline],
    train: Frame,
    btyd: BTYDFeatures | None = None,
    say: Progress | None = None,
) -> Pipeline:
    """Blend ``name`` of its members fitted on ``train``, reusing those in ``fitted`` (fitted
    on the same rows as candidates of their own). The members take the same input, so their
    preprocessing, fitted on the same rows, is one and the same: the first one's serves."""
    members = [
        fitted[member] if member in fitted else fit_candidate(spec, member, train, btyd, say)
        for member in BLENDS[name]
    ]
    blend = MeanRegressor.of_fitted(
        [(member, p.named_steps["estimator"]) for member, p in zip(BLENDS[name], members, strict=True)]
    )
    return Pipeline([("preprocess", members[0].named_steps["preprocess"]), ("estimator", blend)])
