"""The weekly benchmark's simulated promotion panel: its files hold the draw, and its
``true mean`` row (the floor storecast is measured against) is what the units were drawn around."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.promotion_panel import SHIFT_WEEKS, simulate, write_panel
from benchmarks.weekly_demand import SERIES_STORE, WEEKS, _true_means


def test_the_files_hold_the_simulated_units(tmp_path: Path) -> None:
    panel = simulate()
    paths = write_panel(tmp_path)
    with paths["order_items"].open() as handle:
        quantities = [int(row["quantity"]) for row in csv.DictReader(handle)]
    assert sum(quantities) == int(panel.units.sum())
    assert len(quantities) == int((panel.units > 0).sum())
    np.testing.assert_array_equal(simulate().units, panel.units)  # the same draw for the same seed


def test_the_units_are_drawn_around_the_true_mean() -> None:
    panel = simulate()
    # Over 100,000 cells the noise averages out: the draw's total is the mean's within 1 %.
    assert abs(panel.units.sum() / panel.mean.sum() - 1) < 0.01
    # and per product and week, where promotions lift the mean, the two move together.
    by_cell = np.corrcoef(panel.units.sum(axis=0).ravel(), panel.mean.sum(axis=0).ravel())[0, 1]
    assert by_cell > 0.95


def test_the_true_mean_row_forecasts_each_series_and_horizon_with_its_mean() -> None:
    panel = simulate()
    origin = panel.weeks[-WEEKS.horizons]
    frame = _true_means([origin]).frame
    stores, _, products = panel.mean.shape
    assert len(frame) == stores * products * WEEKS.horizons
    row = frame[(frame["series"] == 3 * SERIES_STORE + 5) & (frame["horizon"] == 2)].iloc[0]
    assert row["target"] == origin + timedelta(weeks=1)
    assert row["forecast"] == panel.mean[2, len(panel.weeks) - WEEKS.horizons + 1, 4]
    assert pd.isna(row["lower_80"])


def test_the_trend_panel_grows_and_declines_series_and_leaves_the_stationary_one_alone() -> None:
    flat, trending = simulate(), simulate(growth=0.3)
    np.testing.assert_array_equal(simulate().units, flat.units)
    # The last week is where the trends meet: the same means there, and a year earlier each
    # series stood at its last level divided by its yearly factor.
    np.testing.assert_allclose(trending.mean[:, -1, :], flat.mean[:, -1, :], rtol=0.02)
    yearly = np.log(trending.mean / flat.mean)
    change = yearly[:, -1, :] - yearly[:, -53, :]
    assert 0.25 < change.std() < 0.35  # a year's log growth, spread 0.3 across series
    # Growers and decliners alike.
    assert (change > 0.3).mean() > 0.1
    assert (change < -0.3).mean() > 0.1


def test_the_shifted_panel_steps_the_whole_chain_in_its_last_weeks_only() -> None:
    flat, shifted = simulate(), simulate(shift=1.3)
    before, after = slice(None, -SHIFT_WEEKS), slice(-SHIFT_WEEKS, None)
    np.testing.assert_array_equal(shifted.mean[:, before, :], flat.mean[:, before, :])
    np.testing.assert_allclose(shifted.mean[:, after, :], 1.3 * flat.mean[:, after, :])
    # The units follow: the last weeks sell about 30 % more, every store alike.
    by_store = shifted.units[:, after, :].sum(axis=(1, 2)) / flat.units[:, after, :].sum(axis=(1, 2))
    assert 1.2 < np.median(by_store) < 1.4
    assert (by_store > 1.0).mean() > 0.9
