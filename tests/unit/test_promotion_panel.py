"""The weekly benchmark's simulated promotion panel: its files hold the draw, and its
``true mean`` row (the floor storecast is measured against) is what the units were drawn around."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.promotion_panel import (
    FESTIVAL,
    FESTIVAL_DAYS,
    FESTIVAL_LIFT,
    FIRST_WEEK,
    SHIFT_WEEKS,
    PanelShape,
    simulate,
    write_panel,
)
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
    flat, trending = simulate(), simulate(shape=PanelShape(growth=0.3))
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
    flat, shifted = simulate(), simulate(shape=PanelShape(shift=1.3))
    before, after = slice(None, -SHIFT_WEEKS), slice(-SHIFT_WEEKS, None)
    np.testing.assert_array_equal(shifted.mean[:, before, :], flat.mean[:, before, :])
    np.testing.assert_allclose(shifted.mean[:, after, :], 1.3 * flat.mean[:, after, :])
    # The units follow: the last weeks sell about 30 % more, every store alike.
    by_store = shifted.units[:, after, :].sum(axis=(1, 2)) / flat.units[:, after, :].sum(axis=(1, 2))
    assert 1.2 < np.median(by_store) < 1.4
    assert (by_store > 1.0).mean() > 0.9


def test_the_festival_lifts_its_week_and_the_week_before_and_moves_with_its_days(tmp_path: Path) -> None:
    flat, festive = simulate(), simulate(shape=PanelShape(festival=True))
    ratio = festive.mean / flat.mean
    weeks = [(day - FIRST_WEEK).days // 7 for day in FESTIVAL_DAYS]
    # 11 days earlier each year: a week a year back is not the festival's week.
    assert np.diff(weeks).tolist() == [50, 51]
    lifted = sorted({w for week in weeks for w in (week - 1, week)})
    others = np.setdiff1d(np.arange(len(flat.weeks)), lifted)
    np.testing.assert_array_equal(ratio[:, others, :], 1.0)
    by_product = np.array(FESTIVAL_LIFT)[festive.category]
    for week in weeks:
        np.testing.assert_allclose(ratio[:, week, :], np.broadcast_to(by_product, ratio[:, week, :].shape))
        np.testing.assert_allclose(ratio[:, week - 1, :] ** 2, ratio[:, week, :])
    # The retailer's calendar names every festival day; without ``calendar`` there is none.
    with write_panel(tmp_path, shape=PanelShape(festival=True), calendar=True)[
        "calendar_events"
    ].open() as handle:
        assert [(row["event_date"], row["event"]) for row in csv.DictReader(handle)] == [
            (str(day), FESTIVAL) for day in FESTIVAL_DAYS
        ]
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "calendar_events" not in write_panel(plain, shape=PanelShape(festival=True))


def test_the_dip_panel_gives_back_a_share_of_the_deal_s_lift_the_week_after() -> None:
    flat, dipped = simulate(), simulate(shape=PanelShape(dip=0.3))
    np.testing.assert_array_equal(dipped.units.shape, flat.units.shape)
    stores, weeks, products = flat.mean.shape
    # The discount of every store, week and product, from the promotions written.
    discount = np.zeros((stores, weeks, products))
    for product, store, first, last, depth, _ in flat.promotions:
        assert isinstance(first, date)
        assert isinstance(last, date)
        covered = [w for w, week in enumerate(flat.weeks) if first <= week <= last]
        stores_covered = slice(None) if store is None else int(str(store)) - 1
        discount[stores_covered, covered, int(str(product)) - 1] = float(str(depth))
    log_ratio = np.log(dipped.mean / flat.mean)
    after_deal = discount[:, :-1, :] > 0
    # No dip in the first week, nor after a week at the regular price.
    np.testing.assert_array_equal(log_ratio[:, 0, :], 0.0)
    np.testing.assert_allclose(log_ratio[:, 1:, :][~after_deal], 0.0, atol=1e-12)
    # After a deal, 30 % of its price lift (1 - depth) ** elasticity, in log: per product
    # the dip over ln(1 - depth) is -0.3 x its elasticity (drawn in [-3.5, -1.2]).
    for p in range(products):
        mask = after_deal[:, :, p]
        share = log_ratio[:, 1:, p][mask] / np.log(1 - discount[:, :-1, p][mask])
        np.testing.assert_allclose(share, share[0])
        assert 0.3 * 1.2 <= share[0] <= 0.3 * 3.5


def test_the_shocks_panel_moves_every_product_of_a_week_together_around_the_same_mean() -> None:
    flat, shocked = simulate(), simulate(shape=PanelShape(shock=0.15))
    # Noise, not part of the mean the `true mean` row forecasts.
    np.testing.assert_array_equal(shocked.mean, flat.mean)
    # The whole chain's week: near its mean in the plain draw (tens of thousands of units),
    # off by the chain's factor and the average of 83 stores' (spread about 0.15) here.
    chain = np.log(shocked.units.sum(axis=(0, 2)) / shocked.mean.sum(axis=(0, 2)))
    assert np.log(flat.units.sum(axis=(0, 2)) / flat.mean.sum(axis=(0, 2))).std() < 0.05
    assert 0.1 < chain.std() < 0.2
    # A store's week beyond the chain's: its products move together, by about 0.15 in log
    # on top of the noise a store's week has in the plain draw.
    store = np.log(shocked.units.sum(axis=2) / shocked.mean.sum(axis=2)) - chain[None, :]
    plain = np.log(flat.units.sum(axis=2) / flat.mean.sum(axis=2))
    assert 0.1 < np.sqrt(store.var() - plain.var()) < 0.2
    # Mean 1: the draw's total is the mean's within a few per cent.
    assert abs(shocked.units.sum() / shocked.mean.sum() - 1) < 0.05


def test_a_one_product_chain_sells_that_product_alone_in_every_store(tmp_path: Path) -> None:
    panel = simulate(shape=PanelShape(products=1))
    stores, weeks, products = panel.units.shape
    assert products == 1
    assert panel.mean.shape == (stores, weeks, 1)
    assert {row[0] for row in panel.promotions} == {1}
    paths = write_panel(tmp_path, shape=PanelShape(products=1))
    with paths["products"].open() as handle:
        assert [row["product_id"] for row in csv.DictReader(handle)] == ["1"]
    with paths["shelf_prices"].open() as handle:
        prices = list(csv.DictReader(handle))
    assert len(prices) == stores * weeks
    assert len({row["price_id"] for row in prices}) == len(prices)
