"""A regressor fitted on ``log1p`` of the target, back-transformed with a bias correction.

On raw units, squared error lets a few very large periods (promotion weeks) pull the whole
fit; on ``log(1 + y)`` they weigh far less. The back-transform ``expm1`` of a mean log
under-forecasts the mean, so the prediction is multiplied by a correction: summed actuals
over summed back-transformed fits on the training rows (Duan's smearing estimate in its
ratio form). It exports to ONNX as the wrapped model's graph followed by Exp, Sub 1 and
Mul (:func:`storecast.training.export.export`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, RegressorMixin, clone

F64 = npt.NDArray[np.float64]


class Log1pRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """``correction_ * expm1(estimator(X))``, the estimator fitted on ``log1p(y)``."""

    def __init__(self, estimator: Any = None) -> None:
        self.estimator = estimator

    def _back_transformed(self, features: Any) -> F64:
        return np.expm1(np.asarray(self.estimator_.predict(features), dtype=np.float64))

    def fit(self, features: Any, y: npt.ArrayLike) -> Log1pRegressor:
        """Fit the wrapped estimator on ``log1p(y)``, then the bias correction."""
        target = np.asarray(y, dtype=np.float64)
        if (target < 0).any():
            raise ValueError("a log1p target needs non-negative values")
        self.estimator_ = clone(self.estimator).fit(features, np.log1p(target))
        fitted = np.maximum(self._back_transformed(features), 0.0).sum()
        self.correction_ = float(target.sum() / fitted) if fitted > 0 else 1.0
        return self

    def predict(self, features: Any) -> F64:
        """The prediction on the original scale."""
        return self.correction_ * self._back_transformed(features)
