"""Baselines each model must beat, computed on the same test rows (one registry entry per kind)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from storecast.training.data import Frame

F64 = npt.NDArray[np.float64]


def _binned_rate(train: Frame, test: Frame, column: str, bins: int = 10) -> F64:
    """Positive rate of training rows in quantile bins of ``column``, looked up for test rows."""
    assert train.label is not None
    x_train = train.features[column].to_numpy(dtype=float)
    edges = np.unique(np.nanquantile(x_train, np.linspace(0, 1, bins + 1)[1:-1]))
    train_bin = np.searchsorted(edges, x_train)
    rates = np.array(
        [
            train.label[train_bin == b].mean() if (train_bin == b).any() else train.label.mean()
            for b in range(len(edges) + 1)
        ]
    )
    return rates[np.searchsorted(edges, test.features[column].to_numpy(dtype=float))]


def _category_rate(train: Frame, test: Frame, column: str) -> F64:
    assert train.label is not None
    overall = float(train.label.mean())
    by_category = {
        c: float(train.label[train.features[column].to_numpy() == c].mean())
        for c in np.unique(train.features[column])
    }
    return np.array([by_category.get(c, overall) for c in test.features[column]], dtype=float)


#: baseline -> function of the train and test rows returning predictions for the test rows
BASELINES: dict[str, Callable[[Frame, Frame], F64]] = {
    # Purchase and churn: the label's rate among training customers of similar recency.
    "recency_rule": lambda train, test: _binned_rate(train, test, "recency_days"),
    # Offers: the offer's own smoothed historical redemption rate.
    "historical_redemption_rate": lambda train, test: np.nan_to_num(
        test.features["offer_redemption_rate"].to_numpy(dtype=float)
    ),
    # CLV: spend in the last 365 days continues.
    "last_year_spend": lambda train, test: test.features["monetary_365d"].to_numpy(dtype=float),
    # Demand: the same weekday a week earlier (a year of weeks for weekly grain).
    "seasonal_naive": lambda train, test: test.features["units_seasonal_naive"].to_numpy(dtype=float),
    # Sell-through: the share of earlier items in the same category that sold through.
    "category_base_rate": lambda train, test: _category_rate(train, test, "category"),
}
