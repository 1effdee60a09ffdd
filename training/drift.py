"""What a version's inputs and outputs looked like in training, kept to measure drift later.

For each numeric feature: bin edges at the training rows' deciles and the share of rows
in each bin (``edges`` cut the line like PostgreSQL's ``width_bucket``: bin 0 below the
first edge, bin i from edge i up to the next), plus the share of NULLs. For each
categorical feature: the share of its most frequent values and of all others. The same
for the predictions on the test window. The scoring side counts the same bins in SQL on
the scored date's rows (:mod:`storecast.scoring.drift`) and compares with :func:`psi`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Quantiles of the training values that cut the bins.
QUANTILES = np.linspace(0.1, 0.9, 9)
#: Categories kept by name; the rest share one bin.
TOP_CATEGORIES = 20
#: Share given to an empty bin, so that the index stays finite (a common choice).
EPSILON = 1e-4
#: The population stability index above which a distribution is usually read as shifted
#: (below 0.1 as stable).
PSI_SHIFT = 0.25


def numeric_reference(values: npt.NDArray[np.float64]) -> dict[str, Any]:
    """Decile edges of the non-missing values, the share in each bin and the share missing."""
    present = values[~np.isnan(values)]
    edges = [float(e) for e in np.unique(np.quantile(present, QUANTILES))] if len(present) else []
    return {
        "edges": edges,
        "shares": _numeric_shares(values, edges),
        "null_share": float(1 - len(present) / max(len(values), 1)),
    }


def categorical_reference(values: pd.Series) -> dict[str, Any]:
    """The share of the most frequent categories ('' is NULL) and of all the others."""
    counts = values.astype(str).value_counts(normalize=True)
    top = counts.head(TOP_CATEGORIES)
    return {"categories": {str(k): float(v) for k, v in top.items()}, "other_share": float(1 - top.sum())}


def _numeric_shares(values: npt.NDArray[np.float64], edges: list[float]) -> list[float]:
    """Shares of the non-missing values in each bin of ``edges`` (as ``width_bucket`` cuts)."""
    present = values[~np.isnan(values)]
    bins = np.searchsorted(np.asarray(edges, dtype=float), present, side="right")
    return [float(s) for s in np.bincount(bins, minlength=len(edges) + 1) / max(len(present), 1)]


def _categorical_shares(values: pd.Series, ref: dict[str, Any]) -> tuple[list[float], list[float]]:
    counts = values.astype(str).value_counts(normalize=True)
    actual = [float(counts.get(k, 0.0)) for k in ref["categories"]]
    return [*ref["categories"].values(), float(ref["other_share"])], [*actual, 1 - sum(actual)]


def reference(
    features: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    predictions: npt.NDArray[np.float64],
    test_features: pd.DataFrame,
    test_times: npt.NDArray[Any],
) -> dict[str, Any]:
    """The drift reference of a version: its training features, its test predictions, and
    for each feature the largest PSI of a single test date against training (``test_psi``).

    One date is never distributed like a window of many (calendar features, customers'
    ages), so the drift that counts is what a scored date shows beyond what the version's
    own test dates showed when it was chosen.
    """
    out: dict[str, Any] = {
        "numeric": {c: numeric_reference(features[c].to_numpy(dtype=float)) for c in numeric},
        "categorical": {c: categorical_reference(features[c]) for c in categorical},
        "prediction": numeric_reference(np.asarray(predictions, dtype=float)),
    }
    dates = [test_times == t for t in np.unique(test_times)]
    for c, ref in out["numeric"].items():
        values = test_features[c].to_numpy(dtype=float)
        ref["test_psi"] = max(
            (psi(ref["shares"], _numeric_shares(values[d], ref["edges"])) for d in dates), default=0.0
        )
    for c, ref in out["categorical"].items():
        ref["test_psi"] = max(
            (psi(*_categorical_shares(test_features[c][d], ref)) for d in dates), default=0.0
        )
    return out


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two distributions over the same bins: the sum of
    (actual - expected) * ln(actual / expected), empty bins counted as :data:`EPSILON`.
    Below 0.1 is usually read as stable, above :data:`PSI_SHIFT` as a shift."""
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))
