"""Regressors that forecast relative to a series' recent level: on ``log1p`` of the target
with a bias correction, or with a log link on the rate over the level.

On raw units, squared error lets a few very large periods (promotion weeks) pull the whole
fit; on ``log(1 + y)`` they weigh far less. With ``level_index`` the wrapped estimator fits
``log1p(y) - log1p(level)``, the level being one of its input columns (a series' recent
mean): trees cannot forecast beyond the values they were fitted on, so a series whose level
has moved since the training weeks is forecast from where it stands, and the trees learn
what lifts or lowers a period against it (a promotion, the season). A missing or negative
level counts as 0, which leaves the target as it is. With ``lift_index`` the offset also
holds a column of the period's expected change in log units (a planned price at the
product's elasticity, missing counting as 0): trees stop at the deepest deal they saw, and
a deal deeper than the product's history holds, or one never run with a feature ad, would
be forecast at the lift of the nearest one seen; in the offset it is forecast at that
elasticity, and the trees learn what is left.

The back-transform ``expm1`` of a mean log under-forecasts the mean, so the prediction is
multiplied by a correction: summed actuals over summed back-transformed fits on the
training rows (Duan's smearing estimate in its ratio form). It exports to ONNX as the
wrapped model's graph followed by the level's log1p added, Exp, Sub 1 and Mul
(:func:`storecast.training.export.export`).

A log link (Poisson loss) needs no such correction, but fitted on units it learns each
series' level from its store and product and pulls a series that has moved back to it.
:class:`LevelRateRegressor` fits it on units over ``1 + level``, each row weighted by
``1 + level``: the same Poisson deviance as units with ``log(1 + level)`` as an offset, so
the trees learn what lifts a period against where the series stands, as the log1p model
does, while the loss stays the one of counts. It exports as the wrapped graph's raw score
plus the level's log1p, then Exp.

Gradient boosting with Poisson loss moves a leaf's log prediction by a Newton step,
``learning_rate * (rate / prediction - 1)``, with nothing to bound it (LightGBM's
``max_delta_step``). From the first prediction (about 1: the rate over the level) a
row selling a hundred times its level steps past its own log in one tree, and a leaf of
such rows diverges: a seasonal product's first weeks, its level 0 and its sales in the
thousands, forecast 1e8 units and more, and rows sharing leaves with them too. So the
rate is fitted at most :data:`MAX_RATE`: such a row counts as one selling 50 times its
level. What it sold beyond that is rarely what history could tell; the log1p member
forecasts it on its own scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, RegressorMixin, clone

F64 = npt.NDArray[np.float64]
#: The most a row's rate over ``1 + level`` counts for in :class:`LevelRateRegressor`'s
#: fit: at the trees' learning rate of 0.05 a Newton step from 1 stays below the rate's
#: log up to about 90 times (module docstring).
MAX_RATE = 50.0


def log1p_level(level: npt.ArrayLike) -> F64:
    """``log1p`` of a level column, a missing or negative level counting as 0."""
    values = np.asarray(level, dtype=np.float64)
    return np.log1p(np.maximum(np.nan_to_num(values, nan=0.0), 0.0))


def log_lift(lift: npt.ArrayLike) -> F64:
    """A planned period's expected change in log units, a missing one counting as 0."""
    return np.nan_to_num(np.asarray(lift, dtype=np.float64), nan=0.0)


class LevelRelativeRegressor(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """A wrapped estimator (``estimator_`` once fitted) and where the level sits among its
    input columns; ONNX export converts the wrapped one and appends the back-transform."""

    def __init__(
        self, estimator: Any = None, level_index: int | None = None, lift_index: int | None = None
    ) -> None:
        self.estimator = estimator
        self.level_index = level_index
        self.lift_index = lift_index

    def _offset(self, features: Any) -> F64 | float:
        offset: F64 | float = 0.0
        if self.level_index is not None:
            offset = log1p_level(np.asarray(features)[:, self.level_index])
        if self.lift_index is not None:
            offset = offset + log_lift(np.asarray(features)[:, self.lift_index])
        return offset


class Log1pRegressor(LevelRelativeRegressor):
    """``correction_ * expm1(estimator(X) + log1p(X[:, level_index]))``, the estimator
    fitted on ``log1p(y) - log1p(X[:, level_index])`` (without the level when ``level_index``
    is None)."""

    def _back_transformed(self, features: Any) -> F64:
        raw = np.asarray(self.estimator_.predict(features), dtype=np.float64)
        return np.expm1(raw + self._offset(features))

    def fit(self, features: Any, y: npt.ArrayLike) -> Log1pRegressor:
        """Fit the wrapped estimator on ``log1p(y)`` (less the level's), then the bias correction."""
        target = np.asarray(y, dtype=np.float64)
        if (target < 0).any():
            raise ValueError("a log1p target needs non-negative values")
        self.estimator_ = clone(self.estimator).fit(features, np.log1p(target) - self._offset(features))
        fitted = np.maximum(self._back_transformed(features), 0.0).sum()
        self.correction_ = float(target.sum() / fitted) if fitted > 0 else 1.0
        return self

    def predict(self, features: Any) -> F64:
        """The prediction on the original scale."""
        return self.correction_ * self._back_transformed(features)


class LevelRateRegressor(LevelRelativeRegressor):
    """``(1 + level) * estimator(X)``, the estimator (with a log link) fitted on
    ``y / (1 + level)`` with weights ``1 + level``: a Poisson fit with ``log1p(level)`` as
    its offset (``level`` is ``X[:, level_index]``, a missing or negative one counting as 0).
    The rate is fitted at most :data:`MAX_RATE` (module docstring)."""

    def fit(self, features: Any, y: npt.ArrayLike) -> LevelRateRegressor:
        """Fit the wrapped estimator on the rate over ``1 + level`` (at most :data:`MAX_RATE`),
        weighted by ``1 + level``."""
        target = np.asarray(y, dtype=np.float64)
        scale = np.exp(self._offset(features)) * np.ones_like(target)
        rate = np.minimum(target / scale, MAX_RATE)
        self.estimator_ = clone(self.estimator).fit(features, rate, sample_weight=scale)
        return self

    def predict(self, features: Any) -> F64:
        """The prediction in units."""
        rate = np.asarray(self.estimator_.predict(features), dtype=np.float64)
        return np.asarray(np.exp(self._offset(features)) * rate, dtype=np.float64)
