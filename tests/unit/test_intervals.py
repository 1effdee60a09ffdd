"""Conformal intervals: level-aware width, skew and bands, on data whose coverage is known."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from storecast.training import intervals as intervals_module
from storecast.training import metrics as m
from storecast.training.errors import TrainingError
from storecast.training.intervals import (
    BANDS,
    MIN_BAND_ROWS,
    MIN_CALIBRATION_ORIGINS,
    bounds,
    fit,
    min_calibration_origins,
    min_calibration_rows,
)

TIME = np.repeat(np.arange(4), 1000).astype("datetime64[D]")


def _heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts over three orders of magnitude with noise proportional to the level."""
    rng = np.random.default_rng(seed)
    forecast = np.exp(rng.uniform(0, np.log(1000), n))
    return forecast, np.maximum(forecast * (1 + 0.3 * rng.standard_normal(n)), 0)


def _counts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Negative-binomial counts around their mean: right-skewed, most skewed where small (means
    from 3 up: below that, integer outcomes cannot be covered 80 % without randomising)."""
    rng = np.random.default_rng(seed)
    mean = np.exp(rng.uniform(np.log(3), np.log(300), n))
    return mean, rng.negative_binomial(3, 3 / (3 + mean)).astype(float)


def _band_coverage(intervals: Mapping[str, Any], forecast: np.ndarray, y: np.ndarray) -> list[float]:
    lower, upper = bounds(dict(intervals), forecast, np.ones(len(y)), [1])["0.8"]
    return m.coverage_by_band(y, forecast, (y >= lower) & (y <= upper))


def test_intervals_follow_the_level_when_the_noise_does() -> None:
    forecast, y = _heteroscedastic(4000, 0)
    intervals = fit(y, forecast, np.ones(4000), TIME, [1], [0.8, 0.95])
    assert intervals["scale_power"] == 1.0
    # On fresh data from the same process, every quartile of the level is covered about 80 %.
    forecast, y = _heteroscedastic(4000, 1)
    assert all(0.75 <= c <= 0.85 for c in _band_coverage(intervals, forecast, y))
    # A constant symmetric width would not: the smallest quartile over-covered, the largest under-covered.
    flat = {"1-1": {"0.8": float(np.quantile(np.abs(y - forecast), 0.8))}}
    bands = _band_coverage(flat, forecast, y)
    assert bands[0] > 0.95
    assert bands[-1] < 0.6


def test_count_intervals_cover_every_level_band_and_reach_further_up_than_down() -> None:
    forecast, y = _counts(4000, 3)
    intervals = fit(y, forecast, np.ones(4000), TIME, [1], [0.8])
    forecast, y = _counts(4000, 4)
    assert all(0.76 <= c <= 0.84 for c in _band_coverage(intervals, forecast, y))
    lower, upper = bounds(intervals, forecast, np.ones(4000), [1])["0.8"]
    assert np.median(upper - forecast) > np.median(forecast - lower)
    # Negative-binomial noise grows faster than the square root of the mean, slower than the mean.
    assert 0.5 < intervals["scale_power"] <= 1.0


def test_periods_without_a_sale_do_not_leave_the_lower_tail_empty() -> None:
    # Intermittent daily sales: Poisson means of 0.5-3 units, a third of the periods sell
    # nothing. With the scale the forecast itself (power 1) every such period has the
    # residual -1, so the lower quantile is -1, its bound 0, and nothing misses below.
    def intermittent(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        mean = np.exp(rng.uniform(np.log(0.5), np.log(3), 4000))
        return mean, rng.poisson(mean).astype(float)

    forecast, y = intermittent(0)
    intervals = fit(y, forecast, np.ones(4000), TIME, [1], [0.8])
    assert intervals["scale_power"] == 1.0
    forecast, y = intermittent(1)
    lower = bounds(intervals, forecast, np.ones(4000), [1])["0.8"][0]
    assert (y < lower).mean() < 0.05  # not the tenth a lower tail would miss
    # The upper tail takes the misses the lower one cannot: 80 %, not 90 %, in every band
    # (the upper quantile at the lower tail's place covered 0.87, its bands up to 0.90).
    assert all(0.76 <= c <= 0.84 for c in _band_coverage(intervals, forecast, y))
    # Without ties the tails stay even: a tenth of 999 continuous residuals (less one, the
    # conformal correction) outside each bound.
    residuals = np.random.default_rng(2).standard_normal(999)
    low, high = intervals_module._pair(residuals, 0.8)
    assert {int((residuals < low).sum()), int((residuals > high).sum())} <= {98, 99}


def test_constant_noise_keeps_a_constant_width() -> None:
    rng = np.random.default_rng(2)
    forecast = rng.uniform(10, 1000, 4000)
    y = forecast + 20 * rng.standard_normal(4000)
    assert fit(y, forecast, np.ones(4000), TIME, [1], [0.8])["scale_power"] == 0.0


def test_few_rows_take_the_residuals_slope_as_the_power() -> None:
    # Two weeks of seven series: too few rows to judge coverage by decile of the level.
    rng = np.random.default_rng(6)
    forecast = np.exp(rng.uniform(np.log(50), np.log(5000), 56))
    y = forecast * (1 + 0.1 * rng.standard_normal(56))
    intervals = fit(y, forecast, np.ones(56), np.repeat(np.arange(2), 28).astype("datetime64[D]"), [1], [0.8])
    assert intervals["scale_power"] == intervals["chosen_by"]["slope"]
    assert intervals["scale_power"] >= 0.8
    # Constant noise on the same levels: the slope is near 0.
    y = forecast + 20 * rng.standard_normal(56)
    intervals = fit(y, forecast, np.ones(56), np.repeat(np.arange(2), 28).astype("datetime64[D]"), [1], [0.8])
    assert intervals["scale_power"] <= 0.2


def _departments(periods: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seven series whose misses grow in proportion to their own forecast, which moves
    within a factor e either way, the large ones steadier (relative noise 0.3 down to 0.03
    over levels 100 to 10,000): the misses grow with the level within a series, about as
    its square root across them."""
    rng = np.random.default_rng(seed)
    level = np.geomspace(100, 10_000, 7)
    noise = 0.3 * np.sqrt(level[0] / level)
    season = np.exp(rng.uniform(-1.0, 1.0, (periods, 7)))
    forecast = (level * season).ravel()
    y = np.maximum(forecast * (1 + np.tile(noise, periods) * rng.standard_normal(7 * periods)), 0)
    series = np.tile(np.array([f"{k}|1" for k in range(7)]), periods)
    time = np.repeat(np.arange(periods), 7).astype("datetime64[D]")
    return forecast, y, series, time


def test_the_power_follows_a_series_own_level_where_spreads_take_the_series_apart() -> None:
    forecast, y, series, time = _departments(40, 8)
    horizon = np.ones(len(y))
    within = fit(y, forecast, horizon, time, [1], [0.8], series)
    pooled = fit(y, forecast, horizon, time, [1], [0.8])
    # Too few rows to count coverage by decile: the slope is the power.
    assert within["scale_power"] == within["chosen_by"]["slope"]
    # Logs of absolute misses are noisy: over seeds 8-13 within 0.79-1 (the truth 1),
    # pooled 0.48-0.60.
    assert within["scale_power"] >= 0.75
    assert pooled["scale_power"] <= 0.7
    assert len(within["series_spread"]) == 7
    # With three periods a series has no spread, and nothing takes the series apart but the power.
    forecast, y, series, time = _departments(3, 8)
    named = fit(y, forecast, np.ones(len(y)), time, [1], [0.8], series)
    assert named["scale_power"] == fit(y, forecast, np.ones(len(y)), time, [1], [0.8])["scale_power"]


def test_a_within_series_slope_within_its_noise_of_the_pooled_one_is_the_pooled_one() -> None:
    rng = np.random.default_rng(14)
    group = np.repeat(np.arange(7), 5)
    time = np.tile(np.arange(5), 7).astype("datetime64[D]")
    between = np.repeat(np.linspace(0, 4, 7), 5)
    # Forecasts that barely move within a series: their within slope is all noise.
    level = between + 0.01 * rng.standard_normal(35)
    response = 0.5 * between + rng.standard_normal(35)
    assert intervals_module._within_series_slope(0.5, level, response, group, time) == 0.5
    # Forecasts that move: the within slope, 1, nearly whole.
    level = between + rng.uniform(-1, 1, 35)
    response = 0.3 * between + (level - between) + 0.1 * rng.standard_normal(35)
    assert intervals_module._within_series_slope(0.3, level, response, group, time) > 0.95


def test_a_band_with_few_rows_falls_back_to_its_bucket() -> None:
    forecast, y = _counts(120, 5)  # 30 rows a band, under the minimum
    intervals = fit(
        y, forecast, np.ones(120), np.repeat(np.arange(4), 30).astype("datetime64[D]"), [1], [0.8]
    )
    quantiles = intervals["quantiles"]["1-1"]
    assert len({tuple(q["0.8"]) for q in quantiles.values()}) == 1


def test_a_horizon_bucket_with_few_rows_borrows_every_buckets_rows() -> None:
    forecast, y = _counts(200, 7)
    # 20 first-horizon rows and 30 second-horizon ones (both under the minimum), 150 beyond.
    horizon = np.repeat([1, 2, 3, 4], [20, 30, 75, 75])
    time = np.tile(np.arange(2), 100).astype("datetime64[D]")
    intervals = fit(y, forecast, horizon.astype(float), time, [1, 2, 4], [0.8])
    quantiles = intervals["quantiles"]
    assert quantiles["1-1"] == quantiles["2-2"]
    assert quantiles["1-1"] != quantiles["3-4"]


def test_an_interval_always_contains_its_forecast() -> None:
    # Residuals that all lean one way (a band the model over-forecasts) give quantiles of one sign.
    forecast = np.linspace(0.1, 50, 4000)
    y = forecast * 0.5
    intervals = fit(y, forecast, np.ones(4000), TIME, [1], [0.8])
    lower, upper = bounds(intervals, forecast, np.ones(4000), [1])["0.8"]
    assert (lower <= forecast).all()
    assert (forecast <= upper).all()
    assert (lower >= 0).all()


def test_the_calibration_minimum_fills_the_first_bucket_s_bands() -> None:
    # The default buckets (a quarter, half and all of the horizons, daily or weekly) need 800.
    assert min_calibration_rows([7, 14, 28]) == min_calibration_rows([1, 2, 4]) == 800
    for buckets in ([1, 2, 4], [4, 7, 13], [1], [3, 6, 12, 26]):
        rows = min_calibration_rows(buckets)
        # Rows spread evenly over the horizons: the first bucket's share holds every band's minimum.
        assert rows * buckets[0] / buckets[-1] >= BANDS * MIN_BAND_ROWS


def test_the_longest_horizon_is_calibrated_on_enough_origins() -> None:
    # Weekly (or daily on a weekly grid) 4 weeks ahead: the latest 3 validation dates lack it.
    assert min_calibration_origins(28, 7) == MIN_CALIBRATION_ORIGINS + 3
    assert min_calibration_origins(84, 7) == MIN_CALIBRATION_ORIGINS + 11
    assert min_calibration_origins(1, 7) == MIN_CALIBRATION_ORIGINS


def _weeks_with_a_shared_factor(periods: int, rng: np.random.Generator) -> tuple[Any, Any, Any]:
    """200 series at levels 50-500 whose weeks each move them all by one lognormal factor
    (spread 0.2 in log, mean 1), each also missing by 15 % of its own."""
    level = np.exp(np.random.default_rng(0).uniform(np.log(50), np.log(500), 200))
    forecast = np.tile(level, periods)
    week = np.repeat(rng.normal(0.0, 0.2, periods), 200)
    y = forecast * np.exp(week - 0.02) * (1 + 0.15 * rng.standard_normal(200 * periods))
    return y, forecast, np.repeat(np.arange(periods), 200).astype("datetime64[D]")


def test_what_a_week_shares_needs_many_validation_weeks() -> None:
    # Two validation weeks hold 400 rows but two draws of the week's factor: on the weeks
    # after them their intervals cover far less than 80 % on average.
    def coverage(weeks: int) -> float:
        covered = []
        for seed in range(40):
            rng = np.random.default_rng(seed)
            y, forecast, time = _weeks_with_a_shared_factor(weeks, rng)
            intervals = fit(y, forecast, np.ones(len(y)), time, [1], [0.8])
            y, forecast, _ = _weeks_with_a_shared_factor(30, rng)
            lower, upper = bounds(intervals, forecast, np.ones(len(y)), [1])["0.8"]
            covered.append(float(((y >= lower) & (y <= upper)).mean()))
        return float(np.mean(covered))

    assert coverage(2) < 0.7
    assert coverage(MIN_CALIBRATION_ORIGINS) > 0.75


def _two_kinds_of_series(
    periods: int, seed: int, spreads: tuple[float, float] = (0.1, 0.4)
) -> dict[str, Any]:
    """200 series at levels 50-500, half missing by ``spreads[0]`` of their level and half
    by ``spreads[1]``: the level alone cannot tell a steady series from a volatile one."""
    # The same series at the same levels whatever the seed: the seed draws their periods.
    level = np.exp(np.random.default_rng(0).uniform(np.log(50), np.log(500), 200))
    rng = np.random.default_rng(seed)
    noise = np.repeat(spreads, 100)
    series = np.tile(np.arange(200).astype(str), periods)
    forecast = np.tile(level, periods)
    y = forecast * (1 + np.tile(noise, periods) * rng.standard_normal(200 * periods))
    time = np.repeat(np.arange(periods), 200).astype("datetime64[D]")
    return {
        "y": y,
        "forecast": forecast,
        "series": series,
        "time": time,
        "volatile": np.tile(noise > 0.2, periods),
    }


def _kind_coverage(intervals: Mapping[str, Any], data: Mapping[str, Any], series: bool = True) -> list[float]:
    forecast, y = data["forecast"], data["y"]
    lower, upper = bounds(
        dict(intervals), forecast, np.ones(len(y)), [1], data["series"] if series else None
    )["0.8"]
    inside = (y >= lower) & (y <= upper)
    return [float(inside[~data["volatile"]].mean()), float(inside[data["volatile"]].mean())]


def test_a_volatile_series_gets_a_wider_interval_than_a_steady_one_at_its_level() -> None:
    past = _two_kinds_of_series(20, 8)
    intervals = fit(past["y"], past["forecast"], np.ones(4000), past["time"], [1], [0.8], past["series"])
    spread = np.array([intervals["series_spread"][str(s)] for s in range(200)])
    # Noise four times as large: a spread about four times as large, each from 20 periods.
    assert 3.0 < np.median(spread[100:]) / np.median(spread[:100]) < 5.0
    # On the same series' next periods, each kind is covered about 80 %...
    fresh = _two_kinds_of_series(20, 9)
    assert all(0.75 <= c <= 0.85 for c in _kind_coverage(intervals, fresh))
    # ...where one width for both kinds at a level over-covers the steady and under-covers the volatile.
    steady, volatile = _kind_coverage(intervals, fresh, series=False)
    assert steady > 0.95
    assert volatile < 0.7


def test_series_that_differ_by_chance_alone_keep_a_spread_near_one() -> None:
    # 200 series alike at one level, over 8 periods: their mean misses differ by chance only.
    rng = np.random.default_rng(10)
    forecast = np.full(1600, 100.0)
    y = forecast * (1 + 0.25 * rng.standard_normal(1600))
    series = np.tile(np.arange(200).astype(str), 8)
    time = np.repeat(np.arange(8), 200).astype("datetime64[D]")
    intervals = fit(y, forecast, np.ones(1600), time, [1], [0.8], series)
    assert len(intervals["series_spread"]) == 200
    assert all(0.9 <= s <= 1.1 for s in intervals["series_spread"].values())


def test_a_series_without_a_spread_has_its_level_s_interval() -> None:
    past = _two_kinds_of_series(20, 11)
    intervals = fit(past["y"], past["forecast"], np.ones(4000), past["time"], [1], [0.8], past["series"])
    forecast = np.array([100.0, 100.0])
    known = bounds(intervals, forecast, np.ones(2), [1], np.array(["199", "new"]))["0.8"]
    unnamed = bounds(intervals, forecast, np.ones(2), [1])["0.8"]
    assert known[1][0] > unnamed[1][0]
    np.testing.assert_allclose([known[0][1], known[1][1]], [unnamed[0][1], unnamed[1][1]])


def test_a_series_that_missed_by_nothing_keeps_a_width() -> None:
    # Series "1" sold nothing and was forecast 0 (clipped) on every validation day.
    past = _two_kinds_of_series(10, 12)
    idle = past["series"] == "1"
    past["y"][idle], past["forecast"][idle] = 0.0, 0.0
    intervals = fit(past["y"], past["forecast"], np.ones(2000), past["time"], [1], [0.8], past["series"])
    assert 0 < intervals["series_spread"]["1"] < 0.5
    lower, upper = bounds(intervals, np.array([0.0, 100.0]), np.ones(2), [1], np.array(["1", "1"]))["0.8"]
    assert np.isfinite([*lower, *upper]).all()
    assert upper[1] > 100.0


def test_two_validation_weeks_are_too_few_to_tell_series_apart() -> None:
    # A large panel validates on two weeks: a spread from one other week is mostly chance.
    past = _two_kinds_of_series(2, 13)
    intervals = fit(past["y"], past["forecast"], np.ones(400), past["time"], [1], [0.8], past["series"])
    assert intervals["series_spread"] == {}
    alike = fit(past["y"], past["forecast"], np.ones(400), past["time"], [1], [0.8])
    assert intervals["quantiles"] == alike["quantiles"]


def test_one_holiday_does_not_make_a_steady_series_volatile(monkeypatch: pytest.MonkeyPatch) -> None:
    # Steady series (misses of 5 %) that each missed one holiday by +100 %, beside volatile
    # ones (20 %): their usual misses, not the holiday, should set their spread.
    past = _two_kinds_of_series(20, 20, spreads=(0.05, 0.2))
    steady_series = np.tile(np.arange(200) < 100, 20)
    holiday = (past["time"] == np.datetime64(5, "D")) & steady_series
    past["y"][holiday] = 2 * past["forecast"][holiday]
    fresh = {**_two_kinds_of_series(20, 21, spreads=(0.05, 0.2)), "volatile": ~steady_series}

    def fitted() -> tuple[float, list[float]]:
        intervals = fit(past["y"], past["forecast"], np.ones(4000), past["time"], [1], [0.8], past["series"])
        spread = np.array([intervals["series_spread"][str(s)] for s in range(200)])
        return float(np.median(spread[100:]) / np.median(spread[:100])), _kind_coverage(intervals, fresh)

    ratio, (steady, volatile) = fitted()
    monkeypatch.setattr(intervals_module, "SPREAD_CAP", 1.0)  # no cap
    uncapped_ratio, (uncapped_steady, uncapped_volatile) = fitted()
    # The true ratio is 4; uncapped, the holiday hides most of it.
    assert ratio >= 2.0 >= uncapped_ratio
    # Closer to 80 % both ways, though the capped holiday still widens the steady series.
    assert steady <= 0.96
    assert uncapped_steady >= 0.98
    assert volatile >= uncapped_volatile + 0.02


def test_a_forecast_that_diverged_is_a_training_error_naming_the_rows() -> None:
    forecast, y = _heteroscedastic(4000, 0)
    forecast[:3] = np.inf
    forecast[3] = np.nan
    # Not numpy's bare LinAlgError from the slope's least squares, which it was.
    with pytest.raises(TrainingError, match=r"4 of 4,000 validation forecasts are not finite"):
        fit(y, forecast, np.ones(4000), TIME, [1], [0.8])


def _weeks_that_move(n: int, seed: int, slope: float) -> dict[str, np.ndarray]:
    """Forecasts at levels 50-500 whose misses grow with ``|width|`` (last year's move into
    the target week, half the weeks calm at 0, half moving by up to 0.5): noise of 10 % of
    the level times ``1 + slope * |width|``."""
    rng = np.random.default_rng(seed)
    forecast = np.exp(rng.uniform(np.log(50), np.log(500), n))
    width = np.where(rng.uniform(size=n) < 0.5, 0.0, rng.uniform(-0.5, 0.5, n))
    y = forecast * (1 + 0.1 * (1 + slope * np.abs(width)) * rng.standard_normal(n))
    return {"forecast": forecast, "y": y, "width": width}


def _moving_coverage(intervals: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> list[float]:
    """80 % coverage of the calm weeks and of the weeks that moved by more than 0.3."""
    forecast, y, width = data["forecast"], data["y"], data["width"]
    lower, upper = bounds(dict(intervals), forecast, np.ones(len(y)), [1], None, width)["0.8"]
    inside = (y >= lower) & (y <= upper)
    return [float(inside[width == 0].mean()), float(inside[np.abs(width) > 0.3].mean())]


def test_weeks_that_moved_last_year_get_wider_intervals_where_their_misses_are_larger() -> None:
    past = _weeks_that_move(4000, 20, slope=6.0)
    intervals = fit(past["y"], past["forecast"], np.ones(4000), TIME, [1], [0.8], None, past["width"])
    # The misses' slope on |width| over their intercept: about the 6 drawn.
    assert 4.0 < intervals["width_slope"] < 8.0
    # On fresh weeks, the calm and the moving are each covered about 80 %...
    fresh = _weeks_that_move(4000, 21, slope=6.0)
    assert all(0.75 <= c <= 0.85 for c in _moving_coverage(intervals, fresh))
    # ...where without the column the calm over-cover and the moving under-cover.
    plain = fit(past["y"], past["forecast"], np.ones(4000), TIME, [1], [0.8])
    calm, moving = _moving_coverage(plain, fresh)
    assert calm > 0.88
    assert moving < 0.7


def test_a_width_column_that_says_nothing_of_the_misses_changes_little() -> None:
    past = _weeks_that_move(4000, 22, slope=0.0)
    intervals = fit(past["y"], past["forecast"], np.ones(4000), TIME, [1], [0.8], None, past["width"])
    assert intervals.get("width_slope", 0.0) < 0.5
    fresh = _weeks_that_move(4000, 23, slope=0.0)
    assert all(0.76 <= c <= 0.84 for c in _moving_coverage(intervals, fresh))


def test_a_row_without_a_width_takes_the_validation_median() -> None:
    past = _weeks_that_move(4000, 24, slope=6.0)
    intervals = fit(past["y"], past["forecast"], np.ones(4000), TIME, [1], [0.8], None, past["width"])
    forecast = np.array([100.0, 100.0])
    median = np.array([intervals["width_fill"], intervals["width_fill"]])
    unknown = bounds(intervals, forecast, np.ones(2), [1], None, np.array([np.nan, np.nan]))["0.8"]
    known = bounds(intervals, forecast, np.ones(2), [1], None, median)["0.8"]
    np.testing.assert_allclose(unknown, known)
    # A version fitted without the column ignores one given at scoring.
    plain = fit(past["y"], past["forecast"], np.ones(4000), TIME, [1], [0.8])
    np.testing.assert_allclose(
        bounds(plain, forecast, np.ones(2), [1], None, np.array([0.0, 0.5]))["0.8"],
        bounds(plain, forecast, np.ones(2), [1])["0.8"],
    )
