"""Evaluation metrics for binary, regression and forecast models.

scikit-learn's metrics are imported where they are used: the registry and the CLI read
:data:`HIGHER_IS_BETTER` here, and `storecast models list` should not wait for scikit-learn.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

#: Whether a larger value of the metric is better (used for selection and promotion).
HIGHER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "brier": False,
    "log_loss": False,
    "ece": False,
    "mae": False,
    "rmse": False,
    "wape": False,
    # WAPE plus |bias| (both shares of the actual volume): accuracy that does not buy a
    # lower WAPE with a forecast that runs systematically high or low.
    "wape_bias": False,
    "poisson_deviance": False,
    "gini": True,
    "r2": True,
    "mase": False,
}


def better(metric: str, new: float, old: float) -> bool:
    """Whether ``new`` beats ``old`` on ``metric``."""
    return new > old if HIGHER_IS_BETTER[metric] else new < old


def expected_calibration_error(y: F64, p: F64, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-width probability bins, weighted by rows."""
    table = reliability_table(y, p, bins)
    return float(sum(n * abs(rate - mean) for _, mean, rate, n in table) / max(len(y), 1))


def reliability_table(y: F64, p: F64, bins: int = 10) -> list[tuple[int, float, float, int]]:
    """(bin, mean predicted, observed rate, rows) for each non-empty bin of width 1/bins."""
    index = np.clip((p * bins).astype(int), 0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append((b + 1, float(p[mask].mean()), float(y[mask].mean()), int(mask.sum())))
    return out


def binary_metrics(y: F64, p: F64) -> dict[str, float]:
    """ROC-AUC, PR-AUC, Brier score, log loss and expected calibration error."""
    from sklearn import metrics as skm

    both = len(np.unique(y)) == 2
    clipped = np.clip(p, 1e-7, 1 - 1e-7)
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "brier": float(skm.brier_score_loss(y, clipped)),
        "log_loss": float(skm.log_loss(y, clipped, labels=[0, 1])),
        "ece": expected_calibration_error(y, p),
        "positive_rate": float(y.mean()),
    }


def margin_at_k(y: F64, p: F64, groups: npt.NDArray[np.int64], k: int, margin: F64) -> dict[str, float]:
    """Per group (customer), over its ``k`` highest scores: the expected margin (score x
    margin, what following the ranking promises) and the realised one (label x margin),
    averaged over groups."""
    order = np.lexsort((-p, groups))
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    top = rank < k
    expected = np.add.reduceat(p[order] * margin[order] * top, starts)
    realised = np.add.reduceat(y[order] * margin[order] * top, starts)
    return {
        f"expected_margin_at_{k}": float(expected.mean()),
        f"realised_margin_at_{k}": float(realised.mean()),
    }


def ranking_metrics(y: F64, p: F64, groups: npt.NDArray[np.int64], k: int) -> dict[str, float]:
    """Precision@k, recall@k and NDCG@k per group (customer), averaged over groups with a positive."""
    order = np.lexsort((-p, groups))
    g, yy = groups[order], y[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = np.arange(len(g)) - np.repeat(starts, np.diff(np.r_[starts, len(g)]))
    top = rank < k
    hits = np.add.reduceat(yy * top, starts)
    positives = np.add.reduceat(yy, starts)
    gains = np.add.reduceat(yy * top / np.log2(rank + 2), starts)
    sizes = np.diff(np.r_[starts, len(g)])
    ideal = np.array(
        [
            np.sum(1 / np.log2(np.arange(min(int(n), k, int(s))) + 2))
            for n, s in zip(positives, sizes, strict=True)
        ]
    )
    has = positives > 0
    if not has.any():
        return {
            f"precision_at_{k}": float("nan"),
            f"recall_at_{k}": float("nan"),
            f"ndcg_at_{k}": float("nan"),
        }
    return {
        f"precision_at_{k}": float((hits[has] / np.minimum(sizes[has], k)).mean()),
        f"recall_at_{k}": float((hits[has] / positives[has]).mean()),
        f"ndcg_at_{k}": float((gains[has] / ideal[has]).mean()),
    }


def normalized_gini(y: F64, p: F64) -> float:
    """Gini of ``y`` ordered by ``p``, divided by the Gini of ``y`` ordered by itself (1 = perfect)."""

    def gini(order_by: F64) -> float:
        ordered = y[np.argsort(-order_by, kind="stable")]
        cumulative = np.cumsum(ordered) / max(ordered.sum(), 1e-12)
        return float(cumulative.sum() / len(y) - (len(y) + 1) / (2 * len(y)))

    perfect = gini(y)
    return gini(p) / perfect if perfect else float("nan")


def regression_metrics(y: F64, p: F64) -> dict[str, float]:
    """MAE, RMSE, WAPE, bias (mean error / mean actual), R², normalized Gini and Poisson deviance."""
    from sklearn import metrics as skm

    error = p - y
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "wape": float(np.abs(error).sum() / max(np.abs(y).sum(), 1e-12)),
        "bias": float(error.mean() / max(abs(y.mean()), 1e-12)),
        "r2": float(skm.r2_score(y, p)),
        "gini": normalized_gini(y, p),
        "poisson_deviance": float(skm.mean_poisson_deviance(y, np.clip(p, 1e-6, None))),
    }


def horizon_bucket(horizon: F64, buckets: list[int]) -> npt.NDArray[np.int64]:
    """Index of the bucket (by upper bound) each horizon falls in."""
    return np.searchsorted(np.asarray(buckets), horizon, side="left").astype(np.int64)


def bucket_label(index: int, buckets: list[int]) -> str:
    """'1-7', '8-14', ... for bucket ``index``."""
    low = 1 if index == 0 else buckets[index - 1] + 1
    return f"{low}-{buckets[index]}" if index < len(buckets) else f">{buckets[-1]}"


def forecast_metrics(
    y: F64,
    p: F64,
    naive: F64,
    horizon: F64,
    buckets: list[int],
    intervals: dict[str, tuple[F64, F64]] | None = None,
) -> dict[str, object]:
    """Regression metrics plus MASE against the seasonal naive forecast, and with
    ``intervals`` (lower and upper bound per row, by level) their coverage and width,
    overall, per quartile of the forecast and per horizon bucket; ``horizon_range`` is
    the shortest and longest horizon the rows hold."""

    def block(mask: npt.NDArray[np.bool_]) -> dict[str, object]:
        error = p[mask] - y[mask]
        out: dict[str, object] = {
            "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error**2).mean())),
            "wape": float(np.abs(error).sum() / max(np.abs(y[mask]).sum(), 1e-12)),
            "bias": float(error.mean() / max(abs(y[mask].mean()), 1e-12)),
        }
        out["wape_bias"] = float(out["wape"]) + abs(float(out["bias"]))  # type: ignore[arg-type]
        naive_mae = float(np.abs(naive[mask] - y[mask]).mean())
        out["mase"] = float(out["mae"]) / naive_mae if naive_mae else float("nan")  # type: ignore[arg-type]
        for level, (all_lower, all_upper) in (intervals or {}).items():
            lower, upper = all_lower[mask], all_upper[mask]
            inside = (y[mask] >= lower) & (y[mask] <= upper)
            out[f"coverage_{level}"] = float(inside.mean())
            out[f"width_{level}"] = float((upper - lower).mean())
            out[f"coverage_{level}_by_level_quartile"] = coverage_by_band(y[mask], p[mask], inside)
        return out

    everything = np.ones(len(y), dtype=bool)
    result: dict[str, object] = dict(block(everything))
    index = horizon_bucket(horizon, buckets)
    result["by_horizon"] = {bucket_label(int(b), buckets): block(index == b) for b in np.unique(index)}
    # Which horizons the rows hold: a test window's latest as-of dates have only their
    # short horizons matured, which ``models show`` says.
    result["horizon_range"] = [int(horizon.min()), int(horizon.max())] if len(horizon) else []
    return result


def level_bands(forecast: F64, bands: int = 4) -> npt.NDArray[np.intp]:
    """Each forecast's quantile band of the forecasts (0 the lowest quartile, by default)."""
    edges = np.quantile(forecast, np.linspace(0, 1, bands + 1)[1:-1])
    return np.searchsorted(edges, forecast, side="right")


def coverage_by_band(y: F64, forecast: F64, inside: npt.NDArray[np.bool_], bands: int = 4) -> list[float]:
    """Coverage within each quantile band of the forecast (quartiles), lowest first."""
    if not len(y):
        return []
    band = level_bands(forecast, bands)
    return [float(inside[band == b].mean()) if (band == b).any() else float("nan") for b in range(bands)]
