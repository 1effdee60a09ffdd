"""Probability calibration of a binary model on its validation window, kept only where its
ONNX export matches scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

from storecast.training.data import Frame
from storecast.training.errors import ParityError
from storecast.training.export import export, parity
from storecast.training.spec import ModelSpec


def calibrator(estimator: Any, method: str, x: Any, y: npt.ArrayLike) -> CalibratedClassifierCV:
    """One calibrator fitted on the rows ``x``, ``y`` around the frozen, already fitted model."""
    # The frozen model is not refit per fold, so one split over every row gives what
    # sklearn's default five folds give, without their need of five rows (a young base's
    # validation half held four, and training stopped on sklearn's error).
    every_row = np.arange(np.shape(y)[0])
    return CalibratedClassifierCV(
        FrozenEstimator(estimator), method=method, ensemble=False, cv=[(every_row, every_row)]
    ).fit(x, y)


def calibrate(
    spec: ModelSpec,
    pipeline: Pipeline,
    validation: Frame,
    test: Frame,
    methods: tuple[str, ...] = ("sigmoid", "isotonic"),
) -> tuple[Pipeline, str | None, str]:
    """Calibrate on the validation window: of ``methods`` (sigmoid, isotonic) the one with
    the lower Brier score on the later half of it, provided the ONNX export matches
    scikit-learn on ``test``. Returns the pipeline, the method (None when the window has
    one class) and a note saying what was compared."""
    assert validation.label is not None
    y = validation.label
    if len(np.unique(y)) < 2:
        return pipeline, None, "not calibrated: the validation window has a single class"
    preprocess, estimator = pipeline.named_steps["preprocess"], pipeline.named_steps["estimator"]
    x = preprocess.transform(validation.features[spec.feature_columns])
    middle = np.sort(validation.time)[len(validation.time) // 2]
    early, late = validation.time < middle, validation.time >= middle
    scores: dict[str, float] = {}
    for method in methods:
        if len(np.unique(y[early])) == 2 and late.any():
            trial = calibrator(estimator, method, x[early], y[early])
            scores[method] = float(brier_score_loss(y[late], trial.predict_proba(x[late])[:, 1]))
    ranked = sorted(scores, key=lambda k: scores[k]) or [methods[0]]
    notes = []
    for method in ranked:
        calibrated = calibrator(estimator, method, x, y)
        candidate = Pipeline([("preprocess", preprocess), ("calibrate", calibrated)])
        try:
            parity(export(candidate, spec), candidate, spec, test.features[spec.feature_columns])
        except ParityError as exc:
            notes.append(f"{method} rejected: {exc}")
            continue
        brier = ", ".join(f"{k} {v:.5f}" for k, v in scores.items())
        return (
            candidate,
            method,
            "; ".join([f"{method} (Brier on the later validation half: {brier})", *notes]),
        )
    raise ParityError("; ".join(notes))
