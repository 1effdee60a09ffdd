"""Split-conformal prediction intervals whose width and skew follow the forecast's level.

A residual of a large series is larger than one of a small series, and counts are
skewed: a small forecast can miss far more upwards than downwards (it cannot go below
0). One symmetric width per horizon is therefore too wide for the small series and too
narrow for the large ones, and clips most lower bounds at 0. So:

* residuals are **scaled** by ``max(forecast, 1) ** power``. For residuals
  ``s(forecast) * e`` with ``e`` alike at every level, the least-squares **slope** of
  ``log |residual|`` on ``log max(forecast, 1)`` estimates the power of ``s`` (clipped to
  [0, 1]) without counting any coverage; where the series have spreads (below), within
  series, shrunk toward the pooled slope by how much of their difference could be noise
  (the spreads take how far each series misses beside the others). It is a candidate
  beside 0 (constant width), 0.5 (Poisson-like) and 1 (proportional): fitted on the
  validation window's earlier half, the power whose 80 % intervals cover most evenly
  across the deciles of the forecast on its later half wins, ties going to the one
  nearest the slope. When the later half is too small for coverage by decile to mean
  anything (fewer than :data:`MIN_CHOOSING_ROWS` rows a decile: a few series'
  validation weeks), the slope is the power;
* the **signed** scaled residuals give a lower and an upper quantile, ``(1 - level) / 2``
  and ``(1 + level) / 2``, so an interval can reach further up than down;
* the quantiles are taken per horizon bucket **and per band of the forecast's level**
  (the validation forecasts' quartiles; Mondrian conformal), each band on its own rows
  when it has at least :data:`MIN_BAND_ROWS` of them, else on the bucket's rows; a
  bucket with fewer than that borrows every bucket's rows. Conformal quantiles of few
  residuals over-cover: from 12 (a small panel's first horizon in two validation
  weeks) the 80 % interval spans their whole range and covers 11 / 13, about 85 %.

* series at the same level can differ in how far they miss (a department with a
  back-to-school peak beside a steady one, a promoted product beside a staple): each
  series' **spread** is the mean absolute scaled residual of its validation rows
  relative to all rows', each capped at the 90th percentile of all (:data:`SPREAD_CAP`:
  one holiday's miss does not make a steady series volatile), its log shrunk toward the
  mean by how much such ratios vary from noise alone (empirical Bayes: a panel whose
  series differ by chance only keeps 1). The power is chosen, and the quantiles taken,
  on residuals each divided by its series' spread from the series' other validation
  periods (leave one period out). A series with fewer than :data:`MIN_SPREAD_PERIODS`
  validation periods, or none, has spread 1.

* some weeks of the year miss by more than others (a back-to-school peak, a holiday), and
  a validation window of a few months holds only some of them: where the spec names a
  **width column** (``interval_width_column``: last year's move into the target period, in
  log units), each residual is also divided by ``1 + slope * |width|``. The slope is the
  least-squares slope of the absolute residuals (scaled as above) on ``|width|`` over their
  intercept, clipped to [0, :data:`MAX_WIDTH_SLOPE`]: 0 where the column says nothing of
  the misses, and then the intervals are as without it. A row without the column's value
  takes the validation rows' median.

An interval is ``[max(forecast + lower * s, 0), forecast + upper * s]`` with
``s = max(forecast, 1) ** power * spread * (1 + slope * |width|)``, widened where needed
to contain the forecast.
The stored form (``ml.model_versions.intervals``) is
``{"scale_power": p, "band_edges": [...], "quantiles": {bucket: {band: {level: [lower, upper]}}},
"series_spread": {series: spread}, "width_slope": slope, "width_fill": median}`` (a series
named by its keys joined with ``|``; no width keys without a width column).
Versions from before stored symmetric half-widths, ``{"scale_power": p, "half_widths":
{bucket: {level: q}}}`` or just ``{bucket: {level: q}}``; they read as ``[-q, q]`` in one band.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from storecast.training.errors import TrainingError
from storecast.training.metrics import bucket_label, coverage_by_band, horizon_bucket

F64 = npt.NDArray[np.float64]
Series = npt.NDArray[np.str_]
Bounds = dict[str, tuple[F64, F64]]
#: Fixed candidate scale powers, beside the residuals' own slope.
SCALE_POWERS = (0.0, 0.5, 1.0)
#: The slope is rounded to 1 / SLOPE_STEPS: finer would be noise.
SLOPE_STEPS = 20
#: The level whose coverage by forecast quartile chooses the power.
CHOOSING_LEVEL = 0.8
#: Level bands: the validation forecasts' quartiles.
BANDS = 4
#: Finer bands the power is judged on: within each calibrated band, coverage should not
#: drift with the level either.
CHOOSING_BANDS = 10
#: Fewest residuals a band is calibrated on by itself.
MIN_BAND_ROWS = 50
#: Rows at the pooled mean added to each series' own when its spread is estimated: a series
#: that missed by nothing (nothing sold, 0 forecast) keeps a width, and no log is of 0. A
#: whole row pulls every series back on top of the shrinkage: in the unit test's 200
#: series over 20 periods, half with four times the others' noise, those covered
#: 0.75-0.79 against 0.84-0.85 with a whole row, 0.77-0.81 against 0.82-0.83 with this.
PRIOR_ROWS = 0.1
#: Fewest validation periods (as-of dates) a series' spread is estimated from; a series
#: with fewer has none (1). From two validation weeks (a large panel's, before its window
#: held :data:`MIN_CALIBRATION_ORIGINS`) each residual's
#: spread would come from one other week: on the sample's weekly shape the 80 % intervals
#: then covered 0.77, 0.78, 0.79 and 0.83 by forecast quartile, against 0.81, 0.80, 0.79
#: and 0.81 without (docs/benchmark-notes.md).
MIN_SPREAD_PERIODS = 4
#: A series' spread is taken on absolute residuals capped at this quantile of all of them:
#: an 80 % interval is set by a series' usual misses, and one holiday missed by half would
#: otherwise widen a steady series' intervals for every week after it (docs/benchmark-notes.md).
SPREAD_CAP = 0.9
#: Fewest later-half rows per choosing band for coverage to choose the power: a decile's
#: 80 % coverage from n rows is known to about two standard errors, ``2 * sqrt(0.16 / n)``,
#: 0.08 from 100 rows. From 30 (0.15) the least uneven of the candidates was the one whose
#: deciles happened to fall nearest 0.8: on the real weekly set (7 series, about 30 rows a
#: decile) the chosen power ran from 0 to 1 between neighbouring weeks, and its slope
#: alone scored better over 52 origins (docs/benchmark-notes.md).
MIN_CHOOSING_ROWS = 100
#: The most the width column's slope can be: a row whose target period moved by 1 in log
#: units last year (2.7 times its level) is at most this many times wider than one that
#: did not move, whatever a few validation rows say.
MAX_WIDTH_SLOPE = 10.0


#: Fewest as-of dates (forecast origins) the longest horizon's validation residuals come
#: from. What every series shares in a week (the weather, a pay day, a chain-wide event)
#: moves all of a week's residuals together, so a large panel's two validation weeks hold
#: rows enough but two draws of it: on a panel with such weekly factors (``--data shocks``)
#: the 80 % intervals covered 0.75-0.78 by forecast quartile (docs/benchmark-notes.md).
MIN_CALIBRATION_ORIGINS = 8


def min_calibration_origins(horizon_days: int, spacing_days: int) -> int:
    """Fewest validation as-of dates ``spacing_days`` apart for the longest horizon's rows,
    ``horizon_days`` ahead, to come from :data:`MIN_CALIBRATION_ORIGINS` of them: the latest
    as-of dates before the test window have only their shorter horizons matured."""
    return MIN_CALIBRATION_ORIGINS + math.ceil(horizon_days / max(spacing_days, 1)) - 1


def min_calibration_rows(buckets: list[int]) -> int:
    """Fewest validation rows a forecast's intervals are calibrated on: enough for its first
    horizon bucket to hold :data:`MIN_BAND_ROWS` in each level band, that bucket holding
    ``buckets[0]`` of the ``buckets[-1]`` horizons (by default a quarter of them, so of the
    rows: 800). ``training.split`` grows a small panel's validation window to hold them:
    from 7 series' two validation weeks (56 rows) the real weekly set's 80 % intervals
    covered 0.73-0.77 at horizons 2-4 (docs/benchmark-notes.md)."""
    return BANDS * MIN_BAND_ROWS * math.ceil(buckets[-1] / buckets[0])


def _normalised(intervals: dict[str, Any]) -> dict[str, Any]:
    """Any stored form as the current one."""
    if "quantiles" in intervals:
        return intervals
    power, table = (
        (float(intervals["scale_power"]), intervals["half_widths"])
        if "half_widths" in intervals
        else (0.0, intervals)
    )
    return {
        "scale_power": power,
        "band_edges": [],
        "quantiles": {b: {"0": {lv: [-q, q] for lv, q in qs.items()}} for b, qs in table.items()},
    }


def levels(intervals: dict[str, Any]) -> list[str]:
    """The coverage levels stored, as their keys ('0.8', '0.95')."""
    bucket = next(iter(_normalised(intervals)["quantiles"].values()))
    return list(next(iter(bucket.values())))


def _band(forecast: F64, edges: list[float]) -> npt.NDArray[np.int64]:
    return np.searchsorted(np.asarray(edges, dtype=np.float64), forecast, side="right").astype(np.int64)


def _spread_of(spreads: dict[str, float], series: Series | None, n: int) -> F64:
    """Each row's series spread (1 for a series without one)."""
    if series is None or not spreads:
        return np.ones(n)
    return np.asarray(pd.Series(series).map(spreads).fillna(1.0), dtype=np.float64)


def _width_factor(intervals: dict[str, Any], width: F64 | None, n: int) -> F64:
    """Each row's ``1 + slope * |width|``, a missing width counting as the stored median (1
    for a version fitted without a width column)."""
    slope = float(intervals.get("width_slope", 0.0))
    if slope == 0.0:
        return np.ones(n)
    fill = float(intervals["width_fill"])
    size = np.full(n, fill) if width is None else np.abs(np.asarray(width, dtype=np.float64))
    return 1.0 + slope * np.where(np.isfinite(size), size, fill)


def bounds(
    intervals: dict[str, Any],
    forecast: F64,
    horizon: F64,
    buckets: list[int],
    series: Series | None = None,
    width: F64 | None = None,
) -> Bounds:
    """Lower and upper bound of each row's interval, by level (the lower clipped at 0).
    ``series`` names each row's series as :func:`series_names` does; without it (or for a
    version stored before spreads) every series has spread 1. ``width`` is each row's value
    of the width column, where the version was fitted with one."""
    stored = _normalised(intervals)
    scale = np.maximum(forecast, 1.0) ** float(stored["scale_power"])
    scale = scale * _spread_of(stored.get("series_spread", {}), series, len(forecast))
    scale = scale * _width_factor(stored, width, len(forecast))
    bucket = horizon_bucket(horizon, buckets)
    band = _band(forecast, stored["band_edges"])
    out: Bounds = {}
    for level in levels(stored):
        lower, upper = np.full(len(forecast), np.nan), np.full(len(forecast), np.nan)
        for b in np.unique(bucket):
            bands = stored["quantiles"].get(bucket_label(int(b), buckets), {})
            for key, quantiles in bands.items():
                rows = (bucket == b) & (band == int(key)) if len(bands) > 1 else bucket == b
                lower[rows], upper[rows] = quantiles[level]
        # A band whose residuals all lean one way would give an interval beside the forecast;
        # it always contains it (the stored scores promise lower <= forecast <= upper).
        low = np.minimum(np.maximum(forecast + lower * scale, 0.0), forecast)
        out[level] = (low, np.maximum(forecast + upper * scale, forecast))
    return out


def _pair(residuals: F64, level: float) -> list[float]:
    """Conformal lower and upper quantiles of signed residuals for a two-sided ``level``:
    the ``floor((n + 1) * tail)``-th and ``ceil((n + 1) * (1 - tail))``-th smallest of n,
    the upper one moved down by as many places as rows tied at the lower one leave the
    lower tail short of its misses.

    A count cannot go below 0, so every period without a sale has the same least
    residual where the scale is the forecast itself (power 1: ``-1``). When those rows
    fill the lower tail, the lower bound is 0 for every one of them and none misses
    below; the upper tail alone then missed a tenth, and the 80 % interval covered 90 %
    (the demo's daily forecasts above 0.7 units, a third of whose days sell nothing:
    0.90 on validation, 0.88-0.93 on three origins' test weeks; docs/benchmark-notes.md).
    Without ties nothing moves."""
    ordered = np.sort(residuals)
    n, tail = len(ordered), (1 - level) / 2
    low = max(math.floor((n + 1) * tail), 1)
    high = min(math.ceil((n + 1) * (1 - tail)), n)
    # Rows strictly below the lower quantile are the ones the interval misses below.
    below = int(np.searchsorted(ordered, ordered[low - 1], side="left"))
    high = max(high - (low - 1 - below), low)
    return [float(ordered[low - 1]), float(ordered[high - 1])]


def _quantiles(
    residuals: F64,
    bucket: npt.NDArray[np.int64],
    band: npt.NDArray[np.int64],
    buckets: list[int],
    interval_levels: list[float],
) -> dict[str, dict[str, dict[str, list[float]]]]:
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for b in range(len(buckets)):
        rows = bucket == b
        if rows.sum() < MIN_BAND_ROWS:
            rows = np.ones(len(residuals), dtype=bool)
        pooled = residuals[rows]
        table[bucket_label(b, buckets)] = {}
        for k in range(int(band.max(initial=0)) + 1):
            r = residuals[rows & (band == k)]
            r = r if len(r) >= MIN_BAND_ROWS else pooled
            table[bucket_label(b, buckets)][str(k)] = {
                str(level): _pair(r, level) for level in interval_levels
            }
    return table


def _edges(forecast: F64) -> list[float]:
    return [float(e) for e in np.unique(np.quantile(forecast, np.linspace(0, 1, BANDS + 1)[1:-1]))]


def keyed_bounds(
    intervals: dict[str, Any],
    forecast: F64,
    horizon: F64,
    buckets: list[int],
    keys: pd.DataFrame,
    columns: list[str],
    width: F64 | None = None,
) -> Bounds:
    """:func:`bounds` for rows given by their keys: the series (``columns`` of ``keys``) are
    named only when the version has spreads to look them up in (a large panel has none,
    and naming a million rows takes a while)."""
    named = series_names(keys, columns) if intervals.get("series_spread") else None
    return bounds(intervals, forecast, horizon, buckets, named, width)


def series_names(keys: pd.DataFrame, columns: list[str]) -> Series:
    """Each row's series as stored in ``series_spread``: its key columns' values joined by ``|``."""
    # Column by column: a row-wise join runs Python once per row (seconds on a million).
    names = keys[columns[0]].astype(str)
    for column in columns[1:]:
        names = names + "|" + keys[column].astype(str)
    return names.to_numpy(dtype=str)


def _spreads(
    residuals: F64, series: Series, time: npt.NDArray[np.datetime64]
) -> tuple[dict[str, float], F64]:
    """Each series' spread (see the module), and each row's spread from its series' *other*
    periods (leave one period out), which is what its residual is divided by.

    A series' ratio is its mean absolute residual over all rows' (each capped at the
    :data:`SPREAD_CAP` quantile of all), with :data:`PRIOR_ROWS` more at the pooled mean.
    Its log is shrunk toward the mean log by ``between / (between + noise)``: ``noise``,
    the variance of a log ratio from chance alone, is the rows' relative variance around
    their series' mean, pooled over series, over the series' number of periods (not
    rows: a period's horizons miss together); ``between`` is what the log ratios vary
    beyond their noise. On the log scale a volatile series' ratio is as certain as a
    steady one's. Dividing each residual by a spread that its own period helped estimate
    would shrink it towards the others', and the intervals would under-cover (the
    sample's weekly shape: 0.75-0.78 by quartile where they covered 0.79-0.81 without
    spreads)."""
    if not len(residuals):
        return {}, np.ones(0)
    absolute = np.abs(residuals)
    capped = np.minimum(absolute, np.quantile(absolute, SPREAD_CAP))
    pooled = float(capped.mean())
    if pooled == 0.0:
        return {}, np.ones(len(residuals))
    # Each capped absolute residual over the pooled mean: a series' ratio is the mean of its own.
    size = capped / pooled
    names, inverse = np.unique(series, return_inverse=True)
    cells = pd.DataFrame({"series": inverse, "time": time, "size": size})
    by_cell = cells.groupby(["series", "time"])["size"]
    cell_sum = by_cell.transform("sum").to_numpy(dtype=np.float64)
    cell_rows = by_cell.transform("count").to_numpy(dtype=np.float64)
    sums = np.bincount(inverse, size)
    rows = np.bincount(inverse).astype(np.float64)
    periods = _periods(inverse, time)
    eligible = periods >= MIN_SPREAD_PERIODS
    if not eligible.any():
        return {}, np.ones(len(size))
    log_ratio = np.log((sums + PRIOR_ROWS) / (rows + PRIOR_ROWS))
    deviation = size / np.exp(log_ratio)[inverse] - 1
    relative = float((deviation**2).sum() / max(len(size) - len(names), 1))
    weights = rows * eligible
    centre = float(np.average(log_ratio, weights=weights))
    between = max(
        float(
            np.average((log_ratio - centre) ** 2, weights=weights)
            - np.average(relative / periods, weights=weights)
        ),
        0.0,
    )

    def shrunk(log_ratio: F64, periods: F64, eligible: npt.NDArray[np.bool_]) -> F64:
        noise = np.divide(relative, periods, out=np.full(len(periods), np.inf), where=periods > 0)
        total = between + noise
        usable = eligible & np.isfinite(total) & (total > 0)
        weight = np.divide(between, total, out=np.zeros(len(total)), where=usable)
        spread: F64 = np.exp(weight * (log_ratio - centre))
        return spread

    spread = shrunk(log_ratio, periods, eligible)
    others = shrunk(
        np.log((sums[inverse] - cell_sum + PRIOR_ROWS) / (rows[inverse] - cell_rows + PRIOR_ROWS)),
        periods[inverse] - 1,
        eligible[inverse],
    )
    return {str(k): round(float(v), 4) for k, v, e in zip(names, spread, eligible, strict=True) if e}, others


def _scaled(
    y: F64, forecast: F64, power: float, time: npt.NDArray[np.datetime64], series: Series | None
) -> tuple[F64, dict[str, float]]:
    """Residuals over their scale, ``max(forecast, 1) ** power`` times their series' spread
    from its other periods, and the series' spreads (none without ``series``)."""
    residuals = (y - forecast) / np.maximum(forecast, 1.0) ** power
    if series is None:
        return residuals, {}
    spreads, others = _spreads(residuals, series, time)
    return residuals / others, spreads


def _slope_power(y: F64, forecast: F64, time: npt.NDArray[np.datetime64], series: Series | None) -> float:
    """The least-squares slope of ``log |y - forecast|`` on ``log max(forecast, 1)``, in [0, 1]
    (0 when it cannot be estimated: fewer than 3 non-zero residuals or one level only);
    with ``series``, the slope within series (:func:`_within_series_slope`)."""
    residual = np.abs(y - forecast)
    keep = residual > 0
    level = np.log(np.maximum(forecast[keep], 1.0))
    if keep.sum() < 3 or np.ptp(level) == 0:
        return 0.0
    response = np.log(residual[keep])
    slope = float(np.polyfit(level, response, 1)[0])
    if series is not None:
        group = _spread_groups(series, time)[keep]
        slope = _within_series_slope(slope, level, response, group, time[keep])
    return float(np.clip(slope, 0.0, 1.0))


def _within_series_slope(
    pooled: float, level: F64, response: F64, group: npt.NDArray[np.int64], time: npt.NDArray[np.datetime64]
) -> float:
    """The slope of ``response`` on ``level`` within each group (each taken relative to its
    group's means), shrunk toward the ``pooled`` slope by how much of their difference
    could be noise.

    A series' spread takes how far it misses beside the others, so the power is to say
    how a series' misses grow as its own forecast moves. Pooled over series, the slope
    mixes both: the real weekly set's departments miss in proportion to their own
    forecast or faster (within, 1 or more on 33 of 52 origins, up to 3.8 before the
    clip), while the large departments are the steady ones (pooled, about 0.55); the
    pooled slope left the lowest quartile's intervals wide, 0.87 covered over those
    origins (docs/benchmark-notes.md). From a few
    periods a series, though, the within slope is noise (the real set by month, three
    months of validation). So the within slope keeps ``1 - noise / difference ** 2`` of
    its difference from the pooled one (none when that is negative; empirical Bayes, as
    the spreads are shrunk), ``noise`` its least-squares variance with a series' rows of
    one period counted once (its horizons miss together)."""
    numbered = np.unique(group, return_inverse=True)[1]
    within_level = level - _group_means(level, numbered)
    variation = float((within_level**2).sum())
    # A series whose forecast does not move says nothing within it (rounding leaves a
    # constant forecast's logs a little off its mean).
    if np.ptp(within_level) <= 1e-9:
        return pooled
    within_response = response - _group_means(response, numbered)
    within = float((within_level * within_response).sum()) / variation
    misfit = within_response - within * within_level
    groups = int(numbered.max()) + 1
    cells = len(pd.DataFrame({"group": group, "time": time}).drop_duplicates())
    noise = float((misfit**2).sum()) / max(len(level) - groups - 1, 1) / variation * len(level) / cells
    difference = (within - pooled) ** 2
    if difference == 0.0:
        return within
    return pooled + max(1.0 - noise / difference, 0.0) * (within - pooled)


def _spread_groups(series: Series, time: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    """Each row's group for :func:`_slope_power`: its series' number where the series has
    :data:`MIN_SPREAD_PERIODS` validation periods or more, else -1 (one group for the rest)."""
    inverse = np.unique(series, return_inverse=True)[1]
    eligible = _periods(inverse, time) >= MIN_SPREAD_PERIODS
    return np.where(eligible[inverse], inverse, -1).astype(np.int64)


def _periods(inverse: npt.NDArray[np.intp], time: npt.NDArray[np.datetime64]) -> F64:
    """Each series' number of validation periods (as-of dates), the series numbered by
    ``inverse`` as :func:`numpy.unique` numbers them."""
    return np.asarray(
        pd.DataFrame({"series": inverse, "time": time}).groupby("series")["time"].nunique(), dtype=np.float64
    )


def _group_means(values: F64, numbered: npt.NDArray[np.intp]) -> F64:
    """Each row's mean of ``values`` over its group, the groups numbered 0, 1, ... as
    :func:`numpy.unique` numbers them."""
    means = np.bincount(numbered, values) / np.bincount(numbered)
    return np.asarray(means[numbered], dtype=np.float64)


def _width_slope(residuals: F64, width: F64) -> tuple[float, float]:
    """The width column's slope (see the module) and the median ``|width|`` a row without one
    takes; a slope of 0 where no row has one or they are all alike."""
    size = np.abs(width)
    known = np.isfinite(size)
    if known.sum() < 3 or np.ptp(size[known]) == 0:
        return 0.0, 0.0
    fill = float(np.median(size[known]))
    slope, intercept = np.polyfit(size[known], np.abs(residuals[known]), 1)
    if slope <= 0:
        return 0.0, fill
    ratio = slope / intercept if intercept > 0 else MAX_WIDTH_SLOPE
    return float(min(ratio, MAX_WIDTH_SLOPE)), fill


def fit(
    y: F64,
    forecast: F64,
    horizon: F64,
    time: npt.NDArray[np.datetime64],
    buckets: list[int],
    interval_levels: list[float],
    series: Series | None = None,
    width: F64 | None = None,
) -> dict[str, Any]:
    """Choose the scale power on the validation rows, estimate each series' spread (when
    ``series`` names them) and the width column's slope (when ``width`` holds its values),
    and fit the quantiles (see the module). A forecast that is not finite is a
    :class:`TrainingError`: no width can be fitted to its misses."""
    diverged = ~np.isfinite(forecast)
    if diverged.any():
        raise TrainingError(
            f"{int(diverged.sum()):,} of {len(forecast):,} validation forecasts are not finite (inf or NaN): "
            "the chosen candidate diverged on this data, and no interval can be fitted to its misses; "
            "leave it out of the spec's candidates, or look for rows whose units are far out of line "
            "with their level"
        )
    bucket = horizon_bucket(horizon, buckets)
    edges = _edges(forecast)
    band = _band(forecast, edges)
    middle = np.sort(time)[len(time) // 2]
    early, late = time < middle, time >= middle
    if not early.any():
        early = late = np.ones(len(y), dtype=bool)
    series_early, series_late = (None, None) if series is None else (series[early], series[late])
    slope = round(_slope_power(y, forecast, time, series) * SLOPE_STEPS) / SLOPE_STEPS
    powers = sorted({*SCALE_POWERS, slope}) if late.sum() >= MIN_CHOOSING_ROWS * CHOOSING_BANDS else [slope]
    unevenness: dict[float, float] = {}
    for power in powers:
        residuals, spreads = _scaled(y[early], forecast[early], power, time[early], series_early)
        trial = {
            "scale_power": power,
            "band_edges": edges,
            "quantiles": _quantiles(residuals, bucket[early], band[early], buckets, [CHOOSING_LEVEL]),
            "series_spread": spreads,
        }
        lower, upper = bounds(trial, forecast[late], horizon[late], buckets, series_late)[str(CHOOSING_LEVEL)]
        bands = coverage_by_band(
            y[late], forecast[late], (y[late] >= lower) & (y[late] <= upper), bands=CHOOSING_BANDS
        )
        unevenness[power] = max(abs(c - CHOOSING_LEVEL) for c in bands if not math.isnan(c))
    power = min(powers, key=lambda p: (round(unevenness[p], 3), abs(p - slope)))
    residuals, spreads = _scaled(y, forecast, power, time, series)
    widths: dict[str, float] = {}
    if width is not None:
        width_slope, fill = _width_slope(residuals, width)
        if width_slope > 0:
            widths = {"width_slope": round(width_slope, 4), "width_fill": round(fill, 6)}
            residuals = residuals / _width_factor(widths, width, len(residuals))
    return {
        "scale_power": power,
        "band_edges": edges,
        "quantiles": _quantiles(residuals, bucket, band, buckets, interval_levels),
        "series_spread": spreads,
        **widths,
        "chosen_by": {"slope": slope, **{str(p): round(v, 4) for p, v in unevenness.items()}},
    }
