"""The mean of several regressors' predictions (forecast combination).

Candidates that differ in loss or target (Poisson, log1p relative to the level) err in
different places, and the mean of their forecasts is often as accurate as the better of
them or more, while a short validation window picks the better one little more surely
than a coin (docs/benchmark-notes.md). The members take the same input and are fitted on
the same rows; the blend exports to ONNX as the members' graphs side by side over the
shared inputs, their outputs summed and scaled (:func:`storecast.training.export.export`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, RegressorMixin, clone

F64 = npt.NDArray[np.float64]


class MeanRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """The unweighted mean of ``estimators``' predictions, each a ``(name, regressor)`` pair."""

    def __init__(self, estimators: list[tuple[str, Any]] | None = None) -> None:
        self.estimators = estimators

    @classmethod
    def of_fitted(cls, estimators: list[tuple[str, Any]]) -> MeanRegressor:
        """A blend of regressors already fitted on the same rows, without fitting them again."""
        blend = cls(estimators)
        blend.estimators_ = [estimator for _, estimator in estimators]
        return blend

    def fit(self, features: Any, y: npt.ArrayLike) -> MeanRegressor:
        """Fit a copy of every member on the same rows."""
        if not self.estimators:
            raise ValueError("a blend needs at least one member")
        self.estimators_ = [clone(estimator).fit(features, y) for _, estimator in self.estimators]
        return self

    def predict(self, features: Any) -> F64:
        """The members' mean prediction."""
        predictions = [np.asarray(member.predict(features), dtype=np.float64) for member in self.estimators_]
        return np.asarray(np.mean(predictions, axis=0), dtype=np.float64)
