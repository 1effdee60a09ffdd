"""A synthetic weekly store x product panel with shelf prices, deals and feature ads, as CSV files.

Shaped like the panels retailers keep (and like the one storecast was judged on): many
stores, a few products in a few categories, two years and a quarter of weeks, one till
total per store, product and week. The process is a plain multiplicative one, not fitted
to any data: store size x product level x yearly season x (price / regular price) to a
per-product elasticity x a feature-ad lift x a dip when the category's other products are
on deal, with negative-binomial noise. Regular shelf prices differ by store (some above
list) and step once during the history; deals run chain-wide (no store) or in one store.
The files hold each store's shelf price for every week, the weeks forecast included, as
a scanner panel records them and a retailer plans them (``raw.shelf_prices``). With
``growth`` every series also trends: its level changes by a factor ``exp(g)`` a year,
``g`` drawn per series from a normal with that spread (what a real panel has and this
stationary process lacks: products and stores that grow or decline). With ``shift`` the
whole chain's demand steps by that factor :data:`SHIFT_WEEKS` before the end (a relaunch,
a competitor closing, a price level that moved): a model that learnt the levels of the
history and not of the last weeks under-forecasts every series after it. With
``festival`` a holiday that moves in the year (Eid al-Fitr, about 11 days earlier each
year) lifts the week it falls in, and by half as much in log the week before it, each
category by its own factor (:data:`FESTIVAL_LIFT`): a week a year earlier misses it, and
only a calendar of events (``raw.calendar_events``, written with ``calendar``) says when
it comes. With ``dip`` the week after a deal sells less, as shoppers who stocked up on it
buy less (what keeps, bought on a deal, is bought forward): it gives back that share of
the deal's price lift, in log. With ``shock`` every week moves the whole chain's demand by
a factor of its own, and each store's by another (weather, a pay day, a local event:
what every product in a store shares in a week and no feature foretells), each
lognormal with that spread in log and mean 1; they are noise, not part of ``mean``. With
``products`` the chain sells that many products instead of :data:`PRODUCTS`: with one,
each store sells it alone, and no store's week holds another product to read a price's
response against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks.raw_csv import RawFiles

#: The judged panel's size: 83 stores x 11 products.
STORES = 83
PRODUCTS = 11
CATEGORIES = 3
WEEKS = 117  # two years and a quarter
FIRST_WEEK = date(2024, 1, 1)  # a Monday
#: With ``shift``: the weeks before the end from which the chain's demand has stepped.
SHIFT_WEEKS = 24
#: With ``festival``: the holiday's name and days (Eid al-Fitr, as announced, in the panel's years).
FESTIVAL = "eid al-fitr"
FESTIVAL_DAYS = (date(2024, 4, 10), date(2025, 3, 30), date(2026, 3, 20))
#: The festival's lift on its week by category; the week before takes the square root.
FESTIVAL_LIFT = (1.6, 1.3, 1.0)


@dataclass(frozen=True)
class PanelShape:
    """How a draw departs from the stationary promotion panel (module docstring): each
    a process real panels have and the plain one lacks."""

    growth: float = 0.0
    shift: float = 1.0
    festival: bool = False
    dip: float = 0.0
    shock: float = 0.0
    #: How many products the chain sells (one: a one-product chain, whose stores sell that
    #: product alone; the draw is another from the first product on).
    products: int = PRODUCTS


#: The stationary panel: no shape.
PLAIN = PanelShape()


@dataclass(frozen=True)
class Simulated:
    """One draw of the panel: arrays are stores x weeks x products."""

    weeks: list[date]
    category: npt.NDArray[np.int64]
    list_price: npt.NDArray[np.float64]
    price: npt.NDArray[np.float64]
    mean: npt.NDArray[np.float64]  # the expected units, before the noise
    units: npt.NDArray[np.int64]
    promotions: list[list[object]]  # product, store (None: every store), first day, last day, depth, ad


def simulate(seed: int = 7, shape: PanelShape = PLAIN) -> Simulated:
    """Draw the panel (the same for the same seed and shape)."""
    rng = np.random.default_rng(seed)
    products = shape.products
    weeks = [FIRST_WEEK + timedelta(weeks=w) for w in range(WEEKS)]
    category = np.arange(products) % CATEGORIES
    list_price = np.round(rng.uniform(1.5, 6.0, products), 2)
    level = rng.lognormal(2.3, 0.6, products)
    elasticity = rng.uniform(-3.5, -1.2, products)
    store_size = rng.lognormal(0.0, 0.5, STORES)
    # Regular shelf price per store and product: a store price index (up to 15 % above list),
    # with one step change per product part-way through the history.
    price_index = rng.uniform(0.9, 1.15, (STORES, 1)) * rng.uniform(0.97, 1.03, (STORES, products))
    step_week = rng.integers(20, WEEKS - 20, products)
    step = rng.uniform(0.92, 1.12, products)
    week_index = np.arange(WEEKS)
    regular = (
        list_price[None, None, :]
        * price_index[:, None, :]
        * np.where(week_index[None, :, None] >= step_week[None, None, :], step[None, None, :], 1.0)
    )
    phase = rng.uniform(0, 2 * np.pi, CATEGORIES)
    season = np.exp(0.25 * np.sin(2 * np.pi * week_index[:, None] / 52.18 + phase[None, category]))

    # Deals: chain-wide events about every 9 weeks per product (a third featured in the ad),
    # and occasional single-store deals.
    discount = np.zeros((STORES, WEEKS, products))
    feature = np.zeros((STORES, WEEKS, products), dtype=bool)
    promotions: list[list[object]] = []
    for p in range(products):
        w = int(rng.integers(0, 9))
        while w < WEEKS:
            length = int(rng.integers(1, 3))
            depth, ad = float(rng.choice([0.1, 0.15, 0.2, 0.25, 0.3, 0.4])), bool(rng.random() < 0.35)
            discount[:, w : w + length, p] = depth
            feature[:, w : w + length, p] = ad
            promotions.append(
                [p + 1, None, weeks[w], weeks[min(w + length, WEEKS) - 1] + timedelta(days=6), depth, ad]
            )
            w += length + int(rng.integers(5, 14))
    for s, w, p in zip(*np.nonzero(rng.random((STORES, WEEKS, products)) < 0.02), strict=True):
        if discount[s, w, p] == 0:
            depth = float(rng.choice([0.1, 0.2, 0.3]))
            discount[s, w, p] = depth
            promotions.append([p + 1, s + 1, weeks[w], weeks[w] + timedelta(days=6), depth, False])

    on_deal = discount > 0
    others_on_deal = np.zeros_like(discount)
    for c in range(CATEGORIES):
        members = category == c
        count = on_deal[:, :, members].sum(axis=2, keepdims=True)
        others = (count - on_deal[:, :, members]) / max(members.sum() - 1, 1)
        others_on_deal[:, :, members] = others
    price = regular * (1 - discount)
    mean = (
        store_size[:, None, None]
        * level[None, None, :]
        * season[None, :, :]
        * (price / regular) ** elasticity[None, None, :]
        * np.where(feature, 1.6, 1.0)
        * (1 - 0.25 * others_on_deal)
    )
    if shape.growth:
        # Its own draw, so that the stationary panel stays what it was.
        rate = np.random.default_rng(seed + 1000).normal(0.0, shape.growth, (STORES, 1, products))
        mean = mean * np.exp(rate * (week_index[None, :, None] - WEEKS) / 52.18)
    mean = mean * np.where(week_index[None, :, None] >= WEEKS - SHIFT_WEEKS, shape.shift, 1.0)
    if shape.festival:
        mean = mean * festival_lift(category)[None, :, :]
    if shape.dip:
        # Shoppers who stocked up on a deal buy less the week after: that week gives back
        # the share `dip` of the deal's price lift, in log.
        price_lift = (price / regular) ** elasticity[None, None, :]
        mean[:, 1:, :] = mean[:, 1:, :] * price_lift[:, :-1, :] ** -shape.dip
    dispersion = 4.0
    drawn = mean
    if shape.shock:
        # Its own draw, so that the other shapes stay what they were.
        shocks = np.random.default_rng(seed + 2000).normal(0.0, shape.shock, (STORES + 1, WEEKS))
        factor = np.exp(shocks[1:] + shocks[:1] - shape.shock**2)  # store-week x chain-week, mean 1
        drawn = mean * factor[:, :, None]
    units = rng.negative_binomial(dispersion, dispersion / (dispersion + drawn))
    return Simulated(weeks, category, list_price, price, mean, units, promotions)


def festival_lift(category: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The festival's factor on the mean, weeks x products: its category's lift in the week
    holding a festival day, the square root of it in the week before, 1 elsewhere."""
    lift = np.ones((WEEKS, len(category)))
    by_product = np.array(FESTIVAL_LIFT)[category]
    for day in FESTIVAL_DAYS:
        week = (day - FIRST_WEEK).days // 7
        if 0 <= week < WEEKS:
            lift[week] = by_product
        if 0 <= week - 1 < WEEKS:
            lift[week - 1] = np.sqrt(by_product)
    return lift


def write_panel(
    folder: Path, seed: int = 7, shape: PanelShape = PLAIN, calendar: bool = False
) -> dict[str, Path]:
    """Write stores, products, orders, order_items, promotions and shelf_prices CSVs for
    ``storecast load``; with ``calendar`` the festival's days too (calendar_events), past
    and planned, as a retailer knows them."""
    panel = simulate(seed, shape)
    weeks = panel.weeks
    products = shape.products
    files = RawFiles(folder)
    files.write(
        "stores",
        [[s + 1, f"Store {s + 1}", f"zone {s % 4}"] for s in range(STORES)],
    )
    files.write(
        "products",
        [
            [p + 1, f"Product {p + 1}", f"category {panel.category[p]}", panel.list_price[p]]
            for p in range(products)
        ],
    )
    orders, items = [], []
    for s in range(STORES):
        for w in range(WEEKS):
            order_id = s * WEEKS + w + 1
            orders.append([order_id, s + 1, f"{weeks[w]}T12:00:00Z", "store"])
            items += [
                [order_id, p + 1, p + 1, int(panel.units[s, w, p]), f"{panel.price[s, w, p]:.2f}"]
                for p in range(products)
                if panel.units[s, w, p] > 0
            ]
    files.write("orders", orders)
    files.write("order_items", items)
    files.write("promotions", [[i + 1, *row] for i, row in enumerate(panel.promotions)])
    files.write(
        "shelf_prices",
        [
            [
                (s * WEEKS + w) * products + p + 1,
                p + 1,
                s + 1,
                weeks[w],
                weeks[w] + timedelta(days=6),
                f"{panel.price[s, w, p]:.2f}",
            ]
            for s in range(STORES)
            for w in range(WEEKS)
            for p in range(products)
        ],
    )
    if calendar:
        files.write("calendar_events", [[day, FESTIVAL] for day in FESTIVAL_DAYS])
    return files.paths
