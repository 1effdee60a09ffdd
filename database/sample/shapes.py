"""Reshape a generated sample retailer into the shapes real retail data comes in.

The generator makes one kind of retailer: many products and stores, customers
acquired over years, daily orders, personal offers. Real data is often narrower.
Each shape here turns a :class:`SampleData` into one such retailer, so that the
whole path (load, build, train, score) can be tested on it:

``one-cohort``
    Every customer acquired in one quarter: only customers whose first order in
    the history falls in its first 91 days are kept (signed up on that day), with
    their orders; other customers and their orders are removed.
``no-offers``
    A retailer without personal offers: no offers, impressions or redemptions.
``one-product``
    A retailer that sells one product (the best-selling one): every other line,
    product, promotion and offer is removed.
``weekly``
    A weekly store x product panel (scanner data): one anonymous order per store
    and week, dated on the week's Monday, with one line per product on the shelf
    that week (from the pair's first sale to its last), of 0 units where it sold
    none; about a tenth of the product x store x weeks are missing, as in a panel
    where a week was not reported. No customers' orders and no offers.
``monthly``
    A monthly store x product report: as ``weekly``, by calendar month (one order per
    store and month, dated on its first day), every month reported; only the months the
    history covers whole.
``above-list``
    Shelf prices above list price: a fifth of the products sell 5-25 % above their
    list price from the middle of the history on.
``fading``
    Customers who slow down instead of stopping at once: each customer's orders
    thin out with the time since their first order, halving every so often at a
    pace of their own (a median of a year). BG/NBD assumes a steady rate until a
    customer drops out; real customers' interest often fades.
``drifting``
    Customers whose interest comes and goes: each customer's orders after their
    first are thinned by an activity level of their own, drawn anew (uniform on
    0-1) at the start of each spell, spells lasting a random 120 days on average.
    BG/NBD takes a customer's rate as steady; here the last months say more about
    the next ones than the whole history does.
``returns``
    Customers who send some of what they bought back, as an online shop's customers do:
    each customer returns each line of their orders whole with a chance of their own
    (a Beta(1, 5) draw: a sixth of the lines on average, most customers few, some many), a
    parcel per order some days after it (1 plus an exponential of mean 9), as an order of
    its own with the lines' quantities negated at their prices and discounts. Returns
    falling after the history's last order are not yet made and left out.
``stockouts``
    Shelves that run empty now and then, with a stock count every day: each product x
    store runs out on a day with a chance of its own (a Beta(1, 60) draw: about one day in
    60 on average, some pairs far more often), for a spell of 4 days on average (geometric);
    the store's lines of it on those days are lost sales, removed (and an order left
    without lines with them). ``inventory_snapshots`` holds the pair's stock at the end of
    every day from its first sale on: 0 on the days out, else some days of its sales.
``barcodes``
    Keys as retailers keep them: products by 13-digit numbers like EAN-13 barcodes
    (from 4006381000001), stores, promotions and offers by codes of 10 digits, every
    one past integer's 2,147,483,647.

Shapes apply in the order given, ``barcodes`` last wherever it is named (the others
index arrays by key); each keeps every foreign key valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from storecast.database.pgbinary import Column
from storecast.database.sample.generate import SampleData

Mask = npt.NDArray[np.bool_]


def _get(data: SampleData, table: str, column: str) -> npt.NDArray[Any]:
    return next(c.values for c in data.tables[table] if c.name == column)


def _keep(data: SampleData, table: str, mask: Mask) -> None:
    data.tables[table] = [
        dataclasses.replace(c, values=c.values[mask], null=None if c.null is None else c.null[mask])
        for c in data.tables[table]
    ]


def _set(data: SampleData, table: str, column: str, values: npt.NDArray[Any]) -> None:
    data.tables[table] = [
        dataclasses.replace(c, values=values, null=None) if c.name == column else c
        for c in data.tables[table]
    ]


def _keep_orders(data: SampleData, keep: Mask) -> None:
    """Keep the orders in ``keep`` and the lines and redemptions that point at them."""
    kept = _get(data, "orders", "order_id")[keep]
    _keep(data, "orders", keep)
    _keep(data, "order_items", np.isin(_get(data, "order_items", "order_id"), kept))
    redemption = next(c for c in data.tables["redemptions"] if c.name == "order_id")
    unknown = np.zeros(len(redemption.values), dtype=bool) if redemption.null is None else redemption.null
    _keep(data, "redemptions", unknown | np.isin(redemption.values, kept))


def _line_orders(data: SampleData) -> npt.NDArray[np.int64]:
    """Per order line, the row of its order in ``orders`` (whatever order the ids are in)."""
    order_ids = _get(data, "orders", "order_id")
    by_id = np.argsort(order_ids)
    return by_id[np.searchsorted(order_ids, _get(data, "order_items", "order_id"), sorter=by_id)]


def _drop_orders_without_lines(data: SampleData) -> None:
    _keep_orders(data, np.isin(_get(data, "orders", "order_id"), _get(data, "order_items", "order_id")))


def no_offers(data: SampleData, rng: np.random.Generator) -> SampleData:
    """No personal offers: empty offers, impressions and redemptions."""
    for table in ("redemptions", "impressions", "offers"):
        _keep(data, table, np.zeros(len(data.tables[table][0].values), dtype=bool))
    return data


def _first_orders(
    data: SampleData,
) -> tuple[npt.NDArray[np.int64], Mask, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per order its customer, whether it has one and its day; per customer id the day of
    their first order (the largest integer for a customer without orders)."""
    customer = _get(data, "orders", "customer_id").astype(np.int64)
    nulls = next(c.null for c in data.tables["orders"] if c.name == "customer_id")
    identified = ~nulls if nulls is not None else np.ones(len(customer), dtype=bool)
    days = _get(data, "orders", "ordered_at").astype("datetime64[D]").astype(np.int64)
    first = np.full(int(_get(data, "customers", "customer_id").max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, customer[identified], days[identified])
    return customer, identified, days, first


def one_cohort(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Keep the customers whose first order falls in the history's first quarter."""
    customer, identified, days, first = _first_orders(data)
    ids = _get(data, "customers", "customer_id")
    in_cohort = first[ids] < days.min() + 91
    cohort = ids[in_cohort]
    _keep(data, "customers", in_cohort)
    _set(data, "customers", "signup_date", first[cohort].astype("datetime64[D]"))
    _keep_orders(data, ~identified | np.isin(customer, cohort))
    _keep(data, "impressions", np.isin(_get(data, "impressions", "customer_id"), cohort))
    _keep(
        data,
        "redemptions",
        np.isin(_get(data, "redemptions", "impression_id"), _get(data, "impressions", "impression_id")),
    )
    return data


def one_product(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Keep only the best-selling product (and drop offers, which target others)."""
    product = _get(data, "order_items", "product_id")
    units = np.bincount(product, weights=_get(data, "order_items", "quantity"))
    best = int(np.argmax(units))
    _keep(data, "order_items", product == best)
    _drop_orders_without_lines(data)
    no_offers(data, rng)
    for table in ("promotions", "inventory_snapshots", "product_embeddings", "products"):
        _keep(data, table, _get(data, table, "product_id") == best)
    return data


def _on_the_shelf(
    cells: npt.NDArray[np.int64], quantity: npt.NDArray[np.int64], revenue: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Every (store, period, product) cell from a pair's first sale to its last, as scanner
    data records the periods a product was on the shelf: 0 units where it sold none, at the
    pair's mean price; the cells sorted by store, period and product, with units and price.
    Periods are numbered (weeks or months since the epoch), one apart."""
    pairs, pair_of = np.unique(cells[:, [0, 2]], axis=0, return_inverse=True)
    pair_of = pair_of.ravel()
    first = np.full(len(pairs), np.iinfo(np.int64).max)
    last = np.full(len(pairs), np.iinfo(np.int64).min)
    np.minimum.at(first, pair_of, cells[:, 1])
    np.maximum.at(last, pair_of, cells[:, 1])
    spans = last - first + 1
    pair = np.repeat(np.arange(len(pairs)), spans)
    period = first[pair] + np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
    shelf = np.stack([pairs[pair, 0], period, pairs[pair, 1]], axis=1)
    order = np.lexsort((shelf[:, 2], shelf[:, 1], shelf[:, 0]))
    shelf, pair = shelf[order], pair[order]

    def key(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return (rows[:, 0] * 100_000 + rows[:, 1]) * 100_000 + rows[:, 2]

    sold = np.searchsorted(key(shelf), key(cells))
    units = np.zeros(len(shelf), dtype=np.int64)
    units[sold] = quantity
    mean_price = np.bincount(pair_of, weights=revenue) / np.bincount(pair_of, weights=quantity)
    price = mean_price[pair]
    price[sold] = revenue / quantity
    return shelf, units, price


def _week_number(day: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    # 1970-01-01 was a Thursday: shift by 3 days so that weeks start on Mondays.
    return (day + 3) // 7


def _week_start(week: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    return (week * 7 - 3).astype("datetime64[D]")


def _month_number(day: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_start(month: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    return month.astype("datetime64[M]").astype("datetime64[D]")


def weekly(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Aggregate every sale into one anonymous order per store and week, with missing weeks."""
    return _panel(data, rng, _week_number, _week_start, unreported=0.1, whole_only=False)


def monthly(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Aggregate every sale into one anonymous order per store and calendar month."""
    return _panel(data, rng, _month_number, _month_start, unreported=0.0, whole_only=True)


def _panel(
    data: SampleData,
    rng: np.random.Generator,
    number: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.int64]],
    start: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.datetime64]],
    unreported: float,
    whole_only: bool,
) -> SampleData:
    """One anonymous order per store and period (``number`` of a day since the epoch, dated on
    ``start`` of the number), a line per product on the shelf, ``unreported`` of them
    dropped; with ``whole_only`` only the periods the history covers whole."""
    no_offers(data, rng)
    # Till totals count what sold: a return (``returns`` named first) is a customer's, and
    # the panel has no customers.
    sold = _get(data, "order_items", "quantity") >= 0
    line_order = _line_orders(data)[sold]
    day = _get(data, "orders", "ordered_at").astype("datetime64[D]").astype(np.int64)[line_order]
    period = number(day)
    store = _get(data, "orders", "store_id").astype(np.int64)[line_order]
    product = _get(data, "order_items", "product_id").astype(np.int64)[sold]
    keys = np.stack([store, period, product], axis=1)
    cells, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    units = _get(data, "order_items", "quantity")[sold]
    quantity = np.bincount(inverse, weights=units).astype(np.int64)
    revenue = np.bincount(inverse, weights=units * _get(data, "order_items", "unit_price")[sold]).astype(
        np.float64
    )
    if whole_only:
        # A month the history covers in part would read as a drop of up to 97 % (a week cut
        # short at the start of a weekly panel is one of a hundred, and left as it was).
        first, last = (np.datetime64(int(d), "D") for d in (day.min(), day.max()))
        whole = (start(cells[:, 1]) >= first) & (start(cells[:, 1] + 1) <= last + 1)
        cells, quantity, revenue = cells[whole], quantity[whole], revenue[whole]
    cells, quantity, price = _on_the_shelf(cells, quantity, revenue)
    reported = rng.random(len(cells)) >= unreported
    cells, quantity, price = cells[reported], quantity[reported], price[reported]
    baskets, basket_of = np.unique(cells[:, :2], axis=0, return_inverse=True)
    basket_of = basket_of.ravel()
    # Cells are sorted by store, week and product, so each basket's lines are contiguous.
    line_no = np.arange(len(cells)) - np.searchsorted(basket_of, basket_of) + 1
    n = len(baskets)
    data.tables["orders"] = [
        Column("order_id", "int8", np.arange(1, n + 1)),
        Column("customer_id", "int8", np.zeros(n, dtype=np.int64), null=np.ones(n, dtype=bool)),
        Column("store_id", "int8", baskets[:, 0]),
        Column("ordered_at", "timestamptz", start(baskets[:, 1]).astype("datetime64[us]")),
        Column("channel", "text", np.full(n, "store")),
    ]
    data.tables["order_items"] = [
        Column("order_id", "int8", basket_of + 1),
        Column("line_no", "int4", line_no),
        Column("product_id", "int8", cells[:, 2]),
        Column("quantity", "numeric", quantity, scale=0),
        Column("unit_price", "numeric", np.round(price, 2)),
        Column("discount_amount", "numeric", np.zeros(len(cells))),
        Column("promo_flag", "bool", np.zeros(len(cells), dtype=bool)),
    ]
    return data


def above_list(data: SampleData, rng: np.random.Generator) -> SampleData:
    """A fifth of the products sell above list price in the second half of the history."""
    ordered = _get(data, "orders", "ordered_at")
    middle = ordered.min() + (ordered.max() - ordered.min()) / 2
    late = _get(data, "orders", "order_id")[ordered >= middle]
    products = _get(data, "products", "product_id")
    markup = np.ones(int(products.max()) + 1)
    dearer = products[rng.random(len(products)) < 0.2]
    markup[dearer] = rng.uniform(1.05, 1.25, len(dearer))
    line_late = np.isin(_get(data, "order_items", "order_id"), late)
    factor = np.where(line_late, markup[_get(data, "order_items", "product_id")], 1.0)
    _set(data, "order_items", "unit_price", np.round(_get(data, "order_items", "unit_price") * factor, 2))
    return data


def fading(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Thin each customer's orders by their age: the rate halves every half-life of their own."""
    customer, identified, days, first = _first_orders(data)
    ids = _get(data, "customers", "customer_id")
    half_life = np.full(len(first), np.inf)
    half_life[ids] = 365.0 * rng.lognormal(0.0, 0.75, len(ids))
    who = np.where(identified, customer, 0)
    age = np.where(identified, days - first[who], 0)
    kept = rng.random(len(customer)) < np.exp2(-age / half_life[who])
    _keep_orders(data, ~identified | kept)
    return data


#: Mean length of a ``drifting`` customer's spell of steady interest, in days.
SPELL_DAYS = 120.0


def drifting(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Thin each customer's later orders by an activity level redrawn every spell."""
    customer, identified, days, first = _first_orders(data)
    who = np.where(identified, customer, 0)
    age = np.where(identified, days - first[who], 0)
    # Enough spells to outlast the history for (almost) every customer: the chance that
    # this many spells of mean SPELL_DAYS end before it does is negligible.
    spells = int(np.ceil(3 * (days.max() - days.min() + 1) / SPELL_DAYS)) + 10
    ends = np.cumsum(rng.exponential(SPELL_DAYS, (len(first), spells)), axis=1)
    activity = rng.random((len(first), spells))
    spell = np.minimum((ends[who] <= age[:, None]).sum(axis=1), spells - 1)
    kept = (age == 0) | (rng.random(len(customer)) < activity[who, spell])
    _keep_orders(data, ~identified | kept)
    return data


#: ``returns``: Beta parameters of each customer's chance of returning a line.
RETURN_CHANCE = (1.0, 5.0)
#: ``returns``: mean days from an order to the return of its lines, beyond the first day.
RETURN_DELAY_DAYS = 9.0


def _appended(data: SampleData, table: str, source: npt.NDArray[np.int64], values: dict[str, Any]) -> None:
    """Append copies of the rows ``source`` of ``table``, the columns in ``values`` (never NULL) replaced."""

    def appended(c: Column) -> Column:
        added_null = (
            np.zeros(len(source), dtype=bool) if c.name in values or c.null is None else c.null[source]
        )
        return dataclasses.replace(
            c,
            values=np.concatenate([c.values, values.get(c.name, c.values[source])]),
            null=None if c.null is None else np.concatenate([c.null, added_null]),
        )

    data.tables[table] = [appended(c) for c in data.tables[table]]


def returns(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Return some lines of identified customers' orders, each order's in a parcel of its own."""
    customer, identified, _, first = _first_orders(data)
    chance = np.zeros(len(first))
    ids = _get(data, "customers", "customer_id")
    chance[ids] = rng.beta(*RETURN_CHANCE, len(ids))
    order_ids = _get(data, "orders", "order_id")
    ordered_at = _get(data, "orders", "ordered_at")
    line_order = _get(data, "order_items", "order_id")
    line_row = _line_orders(data)
    who = np.where(identified, customer, 0)[line_row]
    returned = identified[line_row] & (_get(data, "order_items", "quantity") > 0)
    returned &= rng.random(len(line_row)) < chance[who]
    delay = (86_400 * (1 + rng.exponential(RETURN_DELAY_DAYS, len(order_ids)))).astype("timedelta64[s]")
    returned_at = ordered_at + delay.astype(ordered_at.dtype.str.replace("M8", "m8"))
    returned &= returned_at[line_row] <= ordered_at.max()
    parcels = np.unique(line_row[returned])
    # New keys in the key columns' own type.
    parcel_ids = (order_ids.max() + 1 + np.arange(len(parcels))).astype(order_ids.dtype)
    _appended(data, "orders", parcels, {"order_id": parcel_ids, "ordered_at": returned_at[parcels]})
    lines = np.flatnonzero(returned)
    _appended(
        data,
        "order_items",
        lines,
        {
            "order_id": parcel_ids[np.searchsorted(parcels, line_row[lines])].astype(line_order.dtype),
            "quantity": -_get(data, "order_items", "quantity")[lines],
        },
    )
    return data


#: ``stockouts``: Beta parameters of each product x store's daily chance of running out.
STOCKOUT_CHANCE = (1.0, 60.0)
#: ``stockouts``: mean days a stock-out lasts (geometric, at least one).
STOCKOUT_DAYS = 4.0


def stockouts(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Spells out of stock per product x store: the lines then are lost, the daily count is 0."""
    line_order = _line_orders(data)
    day = _get(data, "orders", "ordered_at").astype("datetime64[D]").astype(np.int64)
    first_day, days = day.min(), day.max() - day.min() + 1
    store_column = next(c for c in data.tables["orders"] if c.name == "store_id")
    in_store = np.ones(len(day), dtype=bool) if store_column.null is None else ~store_column.null
    lines = np.flatnonzero(in_store[line_order])
    store = store_column.values[line_order[lines]].astype(np.int64)
    product = _get(data, "order_items", "product_id")[lines].astype(np.int64)
    line_day = day[line_order[lines]] - first_day
    quantity = _get(data, "order_items", "quantity")[lines].astype(np.float64)
    pairs, pair_of = np.unique(np.stack([product, store], axis=1), axis=0, return_inverse=True)
    pair_of = pair_of.ravel()
    # Spells: a start on each pair x day with the pair's chance, lasting a geometric count of days.
    chance = rng.beta(*STOCKOUT_CHANCE, len(pairs))
    start_pair, start_day = np.nonzero(rng.random((len(pairs), days)) < chance[:, None])
    length = rng.geometric(1 / STOCKOUT_DAYS, len(start_pair))
    offset = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    out_day = np.repeat(start_day, length) + offset
    inside = out_day < days
    out = np.zeros((len(pairs), days), dtype=bool)
    out[np.repeat(start_pair, length)[inside], out_day[inside]] = True
    lost = np.zeros(len(line_order), dtype=bool)
    lost[lines] = out[pair_of, line_day]
    _keep(data, "order_items", ~lost)
    _drop_orders_without_lines(data)
    # A count every day from the pair's first sale: 0 when out, else about a week of its sales.
    first_sale = np.full(len(pairs), days)
    np.minimum.at(first_sale, pair_of, line_day)
    counted = np.arange(days)[None, :] >= first_sale[:, None]
    pair_index, count_day = np.nonzero(counted)
    mean_daily = np.bincount(pair_of, weights=np.maximum(quantity, 0), minlength=len(pairs)) / (
        days - first_sale
    )
    on_hand = np.where(out[pair_index, count_day], 0, 1 + rng.poisson(7 * mean_daily[pair_index]))
    data.tables["inventory_snapshots"] = [
        Column("snapshot_date", "date", (first_day + count_day).astype("datetime64[D]")),
        Column("product_id", "int8", pairs[pair_index, 0]),
        Column("store_id", "int8", pairs[pair_index, 1]),
        Column("on_hand", "numeric", on_hand, scale=0),
    ]
    return data


#: ``barcodes``: what each key column's values are moved up by.
KEY_CODES = {
    "product_id": 4_006_381_000_000,
    "store_id": 9_000_000_000,
    "promotion_id": 3_000_000_000,
    "offer_id": 5_000_000_000,
}


def barcodes(data: SampleData, rng: np.random.Generator) -> SampleData:
    """Every product, store, promotion and offer key moved past integer's range."""
    data.tables = {
        table: [
            dataclasses.replace(c, values=c.values.astype(np.int64) + KEY_CODES[c.name])
            if c.name in KEY_CODES
            else c
            for c in columns
        ]
        for table, columns in data.tables.items()
    }
    return data


#: Shapes by name, in the order ``storecast sample --shape`` documents them.
SHAPES: dict[str, Callable[[SampleData, np.random.Generator], SampleData]] = {
    "one-cohort": one_cohort,
    "no-offers": no_offers,
    "one-product": one_product,
    "weekly": weekly,
    "monthly": monthly,
    "above-list": above_list,
    "fading": fading,
    "drifting": drifting,
    "returns": returns,
    "stockouts": stockouts,
    "barcodes": barcodes,
}
#: Shapes applied after the others wherever they are named: they renumber keys.
LAST_SHAPES = ("barcodes",)


def reshape(data: SampleData, shapes: Sequence[str], seed: int = 42) -> SampleData:
    """Apply ``shapes`` in order (a copy of the tables is changed, not ``data``)."""
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        raise ValueError(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    out = SampleData(tables=dict(data.tables), truth=data.truth)
    rng = np.random.default_rng(seed)
    for shape in [s for s in shapes if s not in LAST_SHAPES] + [s for s in shapes if s in LAST_SHAPES]:
        out = SHAPES[shape](out, rng)
    return out
