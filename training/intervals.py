"""Split-conformal prediction intervals whose width follows the forecast's level.

A residual of a large series is larger than one of a small series, so one absolute
width per horizon is too wide for the small series and too narrow for the large
ones. Residuals are therefore scaled by ``max(forecast, 1) ** power`` before their
quantile is taken, and an interval is ``forecast ± quantile * max(forecast, 1) ** power``.
``power`` is chosen on the validation window from 0 (constant width), 0.5 (Poisson-like)
and 1 (proportional): fitted on its earlier half, the power whose 80 % intervals cover
most evenly across the quartiles of the forecast on its later half wins, and the
quantiles are then refitted on the whole window, per horizon bucket.

The stored form (``ml.model_versions.intervals``) is
``{"scale_power": p, "half_widths": {bucket: {level: q}}}``; versions from before
level-aware intervals stored ``{bucket: {level: q}}``, which reads as power 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from training.metrics import bucket_label, coverage_by_band, horizon_bucket

F64 = npt.NDArray[np.float64]
#: Candidate scale powers, simplest first (ties go to the simpler one).
SCALE_POWERS = (0.0, 0.5, 1.0)
#: The level whose coverage by forecast quartile chooses the power.
CHOOSING_LEVEL = 0.8


def _parts(intervals: dict[str, Any]) -> tuple[float, dict[str, dict[str, float]]]:
    if "half_widths" in intervals:
        return float(intervals["scale_power"]), intervals["half_widths"]
    return 0.0, intervals


def levels(intervals: dict[str, Any]) -> list[str]:
    """The coverage levels stored, as their keys ('0.8', '0.95')."""
    return list(next(iter(_parts(intervals)[1].values())))


def half_widths(intervals: dict[str, Any], forecast: F64, horizon: F64, buckets: list[int]) -> dict[str, F64]:
    """Half-width of each row's interval, by level."""
    power, table = _parts(intervals)
    scale = np.maximum(forecast, 1.0) ** power
    index = horizon_bucket(horizon, buckets)
    labels = [bucket_label(int(i), buckets) for i in range(int(index.max(initial=0)) + 1)]
    out = {}
    for level in levels(intervals):
        per_bucket = np.array([table.get(label, {}).get(level, np.nan) for label in labels])
        out[level] = per_bucket[index] * scale
    return out


def _quantiles(
    residuals: F64, index: npt.NDArray[np.int64], buckets: list[int], interval_levels: list[float]
) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for b in range(len(buckets)):
        r = residuals[index == b]
        if not len(r):
            r = residuals
        n = len(r)
        table[bucket_label(b, buckets)] = {
            str(level): float(np.quantile(r, min(1.0, math.ceil((n + 1) * level) / n), method="higher"))
            for level in interval_levels
        }
    return table


def fit(
    y: F64,
    forecast: F64,
    horizon: F64,
    time: npt.NDArray[np.datetime64],
    buckets: list[int],
    interval_levels: list[float],
) -> dict[str, Any]:
    """Choose the scale power on the validation rows and fit the half-widths (see the module)."""
    index = horizon_bucket(horizon, buckets)
    middle = np.sort(time)[len(time) // 2]
    early, late = time < middle, time >= middle
    if not early.any():
        early = late = np.ones(len(y), dtype=bool)
    spread: dict[float, float] = {}
    for power in SCALE_POWERS:
        scale = np.maximum(forecast, 1.0) ** power
        table = _quantiles(
            np.abs(y - forecast)[early] / scale[early], index[early], buckets, [CHOOSING_LEVEL]
        )
        trial = {"scale_power": power, "half_widths": table}
        width = half_widths(trial, forecast[late], horizon[late], buckets)[str(CHOOSING_LEVEL)]
        lower, upper = np.maximum(forecast[late] - width, 0.0), forecast[late] + width
        bands = coverage_by_band(y[late], forecast[late], (y[late] >= lower) & (y[late] <= upper))
        spread[power] = max(abs(c - CHOOSING_LEVEL) for c in bands if not math.isnan(c))
    power = min(SCALE_POWERS, key=lambda p: (round(spread[p], 3), p))
    scale = np.maximum(forecast, 1.0) ** power
    return {
        "scale_power": power,
        "half_widths": _quantiles(np.abs(y - forecast) / scale, index, buckets, interval_levels),
        "chosen_by": {str(p): round(v, 4) for p, v in spread.items()},
    }
