"""Generate a deterministic sample retailer with documented, learnable structure.

Everything is vectorised numpy. Each part (catalogue, customers, anonymous
sales, offers) draws from its own random stream spawned from the seed, so the
same seed always gives the same data. The planted effects are listed in
``docs/sample-data.md``; the generator also returns the latent truths
(:attr:`SampleData.truth`) so tests can check the effects are really there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from storecast.database.pgbinary import Column
from storecast.database.sample.catalogue import (
    CATEGORIES,
    EMBEDDING_MODEL,
    WEEKLY,
    Catalogue,
    build_catalogue,
    seasonal_multiplier,
    weekday,
)
from storecast.database.sample.scales import Scale

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Default last day of the sample history. Fixed, so a seed always gives the same data.
DEFAULT_END_DATE = np.datetime64("2026-11-22", "D")
#: How far before the history customers may have signed up (their earlier orders are not kept).
PRE_HISTORY_DAYS = 1100
AGE_BANDS = np.array(["18-24", "25-34", "35-44", "45-54", "55-64", "65+"])
DISCOUNT_DEPTHS = np.array([0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50])
OFFER_DAYS = 14


@dataclass
class SampleData:
    """Generated tables (in foreign-key order) and the latent truths behind them."""

    tables: dict[str, list[Column]]
    truth: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    def row_counts(self) -> dict[str, int]:
        """Rows per table."""
        return {name: len(cols[0].values) for name, cols in self.tables.items()}


@dataclass
class _Orders:
    """Orders and their lines before ids are assigned."""

    customer: I64  # -1 for anonymous
    store: I64
    day: I64
    seconds: I64  # seconds after midnight
    channel: npt.NDArray[np.str_]
    line_order: I64  # index into the order arrays
    line_product: I64
    line_quantity: I64
    line_offer_discount: F64  # personal-offer discount per unit, as a fraction


def generate(scale: Scale, seed: int = 42, end_date: np.datetime64 = DEFAULT_END_DATE) -> SampleData:
    """Generate the sample retailer for ``scale`` and ``seed``."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    cat = build_catalogue(scale, np.datetime64(str(end_date), "D"), streams[0])
    customers, cust_orders, truth = _customers(scale, cat, streams[1])
    anon = _anonymous(scale, cat, streams[2])
    offers, impressions, redemptions, red_orders = _offers(scale, cat, customers, cust_orders, streams[3])
    orders = _concat_orders([cust_orders, red_orders, anon])
    tables = _tables(cat, customers, orders, offers, impressions, redemptions, streams[4])
    tables["inventory_snapshots"] = _inventory(tables, streams[5])
    truth.update(
        {
            "product_appeal": cat.appeal,
            "product_style_cluster": cat.style_cluster,
            "product_is_listing": cat.is_listing,
            "product_popularity": cat.popularity,
        }
    )
    return SampleData(tables=tables, truth=truth)


# --------------------------------------------------------------------- customers


def _customers(
    scale: Scale, cat: Catalogue, rng: np.random.Generator
) -> tuple[dict[str, npt.NDArray[Any]], _Orders, dict[str, npt.NDArray[Any]]]:
    n, days = scale.customers, scale.days
    n_cat = len(CATEGORIES)
    business = rng.random(n) < 0.08
    # Pareto/NBD-style: purchases are Poisson at a customer-specific rate while
    # the customer is alive, and the lifetime is exponential in calendar time,
    # independent of the rate. Recency and frequency therefore both carry signal.
    rate = rng.gamma(0.9, np.where(business, 1 / 9, 1 / 21) / 0.9)
    lifetime = rng.exponential(rng.gamma(2.0, 900.0 / 2.0, n))
    basket = 1.0 + rng.gamma(2.0, 0.9, n) * np.where(business, 1.8, 1.0)
    qty_rate = rng.gamma(1.0, np.where(business, 1.0, 0.25))
    online_share = rng.beta(0.8, 2.5, n)
    app_pref = rng.random(n)
    physical = np.flatnonzero(cat.store_format != "online")
    home = rng.choice(physical, size=n)
    affinity = rng.gamma(0.35, 1.0, (n, n_cat)) + 1e-6
    affinity /= affinity.sum(axis=1, keepdims=True)
    deal = rng.normal(0, 0.9, n)
    signup_day = np.where(
        rng.random(n) < 0.7, -rng.integers(1, PRE_HISTORY_DAYS, n), rng.integers(0, days, n)
    )

    # Calendar-time warp: orders follow the weekly and yearly cycle.
    ext_days = np.arange(-PRE_HISTORY_DAYS, days)
    ext_dates = cat.dates[0] + ext_days.astype("timedelta64[D]")
    ext_season = WEEKLY[weekday(ext_dates)] / WEEKLY.mean() * seasonal_multiplier(ext_dates, 0.18)
    op_time = np.concatenate([[0.0], np.cumsum(ext_season)])  # at day boundaries
    grid = np.arange(len(op_time), dtype=np.float64) - PRE_HISTORY_DAYS

    start_op = np.interp(signup_day.astype(np.float64), grid, op_time)
    death_day = signup_day + lifetime
    end_op = np.interp(np.minimum(death_day, days).astype(np.float64), grid, op_time)
    expected = rate * np.maximum(end_op - start_op, 0.0)
    # Enough draws to outlast the lifetime with near certainty; extras are cut below.
    k = np.ceil(expected + 6 * np.sqrt(expected) + 3).astype(np.int64)
    owner = np.repeat(np.arange(n), k)
    gaps = rng.exponential(1.0, len(owner)) / rate[owner]
    csum = np.cumsum(gaps)
    group_start = np.cumsum(k) - k
    before = np.where(group_start > 0, csum[np.maximum(group_start - 1, 0)], 0.0)
    op = start_op[owner] + csum - np.repeat(before, k)
    when = np.interp(op, op_time, grid)
    keep = (when >= 0) & (when < days) & (when < death_day[owner])
    owner, when = owner[keep], when[keep]
    day = np.floor(when).astype(np.int64)
    seconds = (7 * 3600 + (when - day) * 15 * 3600).astype(np.int64)

    online = rng.random(len(owner)) < online_share[owner]
    store = np.where(online, 0, home[owner]).astype(np.int64)
    channel = np.where(online, np.where(rng.random(len(owner)) < app_pref[owner], "app", "web"), "store")

    n_lines = 1 + rng.poisson(basket[owner] - 1.0)
    line_order = np.repeat(np.arange(len(owner)), n_lines)
    line_cust = owner[line_order]
    cum_aff = np.cumsum(affinity, axis=1)
    u = rng.random(len(line_order))
    line_cat = (u[:, None] > cum_aff[line_cust]).sum(axis=1).clip(0, n_cat - 1)
    product = _choose_products(cat, store[line_order], day[line_order], line_cat, rng)
    quantity = 1 + rng.poisson(qty_rate[line_cust])

    orders = _Orders(
        customer=owner.astype(np.int64),
        store=store,
        day=day,
        seconds=seconds,
        channel=channel,
        line_order=line_order.astype(np.int64),
        line_product=product,
        line_quantity=quantity.astype(np.int64),
        line_offer_discount=np.zeros(len(line_order)),
    )
    customers: dict[str, npt.NDArray[Any]] = {
        "signup_day": signup_day,
        "home": home,
        "business": business,
        "affinity": affinity,
        "deal": deal,
        "online_share": online_share,
        "age_band": rng.choice(AGE_BANDS, n),
        "age_null": rng.random(n) < 0.15,
        "loyalty": rng.random(n) < 0.7,
        "email": rng.random(n) < 0.55,
    }
    truth: dict[str, npt.NDArray[Any]] = {
        "customer_rate": rate,
        "customer_death_day": death_day,
        "customer_basket": basket,
        "customer_deal": deal,
    }
    return customers, orders, truth


def _choose_products(cat: Catalogue, store: I64, day: I64, category: I64, rng: np.random.Generator) -> I64:
    """Draw a product per line from the demand intensity of its store, day and category."""
    _, n_days, n_products = cat.intensity.shape
    flat = np.cumsum(cat.intensity.ravel())
    row = (store * n_days + day) * n_products

    def cum_at(pos: I64) -> F64:
        return np.where(pos >= 0, flat[np.maximum(pos, 0)], 0.0)

    lo_pos = row + cat.category_bounds[category] - 1
    hi_pos = row + cat.category_bounds[category + 1] - 1
    lo, hi = cum_at(lo_pos), cum_at(hi_pos)
    # A category with no sales that day in that store: draw from the whole store-day.
    empty = hi <= lo
    lo = np.where(empty, cum_at(row - 1), lo)
    hi = np.where(empty, cum_at(row + n_products - 1), hi)
    target = lo + rng.random(len(store)) * (hi - lo)
    idx = np.searchsorted(flat, target, side="right")
    return np.asarray(np.clip(idx - row, 0, n_products - 1), dtype=np.int64)


# --------------------------------------------------------------------- anonymous sales


def _anonymous(scale: Scale, cat: Catalogue, rng: np.random.Generator) -> _Orders:
    # Anonymous line items per product x store x day are Poisson in the demand
    # intensity, so weekly/yearly cycles, trend and promotion lift show in sales.
    factor = scale.anonymous_lines / cat.intensity.sum()
    counts = rng.poisson(cat.intensity.ravel() * factor)
    cells = np.repeat(np.flatnonzero(counts), counts[counts > 0])
    n_stores, n_days, n_products = cat.intensity.shape
    store, day, product = np.unravel_index(cells, (n_stores, n_days, n_products))
    # Group lines of the same store-day into baskets of about 2.2 lines.
    store_day = store * n_days + day
    order_by = np.lexsort((rng.random(len(cells)), store_day))
    store, day, product, store_day = (
        store[order_by],
        day[order_by],
        product[order_by],
        store_day[order_by],
    )
    first = np.concatenate([[True], store_day[1:] != store_day[:-1]]) if len(cells) else np.zeros(0, bool)
    new_order = first | (rng.random(len(cells)) < 1 / 2.2)
    line_order = np.cumsum(new_order) - 1
    heads = np.flatnonzero(new_order)
    n_orders = len(heads)
    o_store = store[heads].astype(np.int64)
    channel = np.where(o_store == 0, np.where(rng.random(n_orders) < 0.4, "app", "web"), "store")
    return _Orders(
        customer=np.full(n_orders, -1, dtype=np.int64),
        store=o_store,
        day=day[heads].astype(np.int64),
        seconds=rng.integers(7 * 3600, 22 * 3600, n_orders).astype(np.int64),
        channel=channel,
        line_order=line_order.astype(np.int64),
        line_product=product.astype(np.int64),
        line_quantity=(1 + rng.poisson(0.3, len(cells))).astype(np.int64),
        line_offer_discount=np.zeros(len(cells)),
    )


# --------------------------------------------------------------------- offers


def _offers(
    scale: Scale,
    cat: Catalogue,
    customers: dict[str, npt.NDArray[Any]],
    cust_orders: _Orders,
    rng: np.random.Generator,
) -> tuple[
    dict[str, npt.NDArray[Any]],
    dict[str, npt.NDArray[Any]],
    dict[str, npt.NDArray[Any]],
    _Orders,
]:
    days, per_week = scale.days, scale.offers_per_week
    first_monday = int((7 - weekday(cat.dates[:1])[0]) % 7)
    weeks = (days - first_monday) // 7
    n_offers = weeks * per_week
    offer_week = np.repeat(np.arange(weeks), per_week)
    start_day = first_monday + 7 * offer_week
    core = np.flatnonzero(~cat.is_listing)
    n_cat = len(CATEGORIES)
    is_product_offer = rng.random(n_offers) < 0.7
    weights = cat.popularity[core] / cat.popularity[core].sum()
    product = np.where(is_product_offer, rng.choice(core, n_offers, p=weights), -1)
    category = np.where(
        is_product_offer,
        cat.product_category_idx[np.maximum(product, 0)],
        rng.integers(0, n_cat, n_offers),
    )
    depth = rng.choice(DISCOUNT_DEPTHS, n_offers)
    cat_median = np.array([v[0] for v in CATEGORIES.values()])
    ref_price = np.where(is_product_offer, cat.list_price[np.maximum(product, 0)], cat_median[category])
    own = np.where(is_product_offer, cat.is_own_brand[np.maximum(product, 0)], rng.random(n_offers) < 0.3)
    offers: dict[str, npt.NDArray[Any]] = {
        "product": product,
        "category": category,
        "depth": depth,
        "margin": np.round(depth * ref_price, 2),
        "start_day": start_day,
        "own": own,
    }

    # Impressions follow shopping trips: an active customer is shown offers
    # in the days after an order; lapsed customers stop seeing them.
    spawn = rng.poisson(1.0, len(cust_orders.customer))
    src = np.repeat(np.arange(len(spawn)), spawn)
    shown = cust_orders.day[src] + cust_orders.seconds[src] / 86400 + rng.uniform(0.5, 10.0, len(src))
    shown_day = np.floor(shown).astype(np.int64)
    week = (shown_day - first_monday) // 7
    pick = rng.integers(0, 2 * per_week, len(src))
    offer_w = np.where((pick >= per_week) & (week >= 1), week - 1, week)
    valid = (shown_day < days) & (week >= 0) & (week < weeks)
    src, shown, offer_w, pick = src[valid], shown[valid], offer_w[valid], pick[valid]
    offer = offer_w * per_week + pick % per_week
    imp_customer = cust_orders.customer[src]
    impressions: dict[str, npt.NDArray[Any]] = {
        "customer": imp_customer,
        "offer": offer,
        "when": shown,
    }

    # Redemption: affinity to the offer's category, discount depth and the
    # customer's persistent deal-proneness (visible as their past redemption rate).
    affinity = customers["affinity"]
    aff = affinity[imp_customer, category[offer]]
    logit = (
        -3.6
        + 1.0 * np.log(aff * n_cat + 0.05)
        + 5.0 * (depth[offer] - 0.27)
        + customers["deal"][imp_customer]
    )
    redeem = rng.random(len(offer)) < 1 / (1 + np.exp(-logit))
    delay = rng.exponential(3.0, len(offer))
    redeemed_at = shown + delay
    deadline = start_day[offer] + OFFER_DAYS  # offers end after day start+13
    redeem &= (redeemed_at < deadline) & (redeemed_at < days)
    red_idx = np.flatnonzero(redeem)
    redemptions: dict[str, npt.NDArray[Any]] = {
        "impression": red_idx,
        "when": redeemed_at[red_idx],
    }

    # Each redemption is an order with the offered product (or one from the category).
    r_offer = offer[red_idx]
    r_cust = imp_customer[red_idx]
    cat_lo = cat.category_bounds[category[r_offer]]
    n_core_in_cat = np.array(
        [(~cat.is_listing[cat.category_bounds[c] : cat.category_bounds[c + 1]]).sum() for c in range(n_cat)]
    )
    cat_pick = cat_lo + (rng.random(len(red_idx)) * n_core_in_cat[category[r_offer]]).astype(np.int64)
    r_product = np.where(product[r_offer] >= 0, product[r_offer], cat_pick)
    r_when = redeemed_at[red_idx]
    r_day = np.floor(r_when).astype(np.int64)
    home = customers["home"]
    online = rng.random(len(red_idx)) < customers["online_share"][r_cust]
    r_store = np.where(online, 0, home[r_cust]).astype(np.int64)
    red_orders = _Orders(
        customer=r_cust.astype(np.int64),
        store=r_store,
        day=r_day,
        seconds=((r_when - r_day) * 86400).astype(np.int64),
        channel=np.where(online, "web", "store"),
        line_order=np.arange(len(red_idx), dtype=np.int64),
        line_product=r_product.astype(np.int64),
        line_quantity=np.ones(len(red_idx), dtype=np.int64),
        line_offer_discount=depth[r_offer].astype(np.float64),
    )
    return offers, impressions, redemptions, red_orders


# --------------------------------------------------------------------- assembly


def _concat_orders(parts: list[_Orders]) -> _Orders:
    offsets = np.cumsum([0] + [len(p.customer) for p in parts[:-1]])
    return _Orders(
        customer=np.concatenate([p.customer for p in parts]),
        store=np.concatenate([p.store for p in parts]),
        day=np.concatenate([p.day for p in parts]),
        seconds=np.concatenate([p.seconds for p in parts]),
        channel=np.concatenate([p.channel for p in parts]),
        line_order=np.concatenate([p.line_order + o for p, o in zip(parts, offsets, strict=True)]),
        line_product=np.concatenate([p.line_product for p in parts]),
        line_quantity=np.concatenate([p.line_quantity for p in parts]),
        line_offer_discount=np.concatenate([p.line_offer_discount for p in parts]),
    )


def _tables(
    cat: Catalogue,
    customers: dict[str, npt.NDArray[Any]],
    orders: _Orders,
    offers: dict[str, npt.NDArray[Any]],
    impressions: dict[str, npt.NDArray[Any]],
    redemptions: dict[str, npt.NDArray[Any]],
    rng: np.random.Generator,
) -> dict[str, list[Column]]:
    dates = cat.dates
    day0 = dates[0]
    n_stores = len(cat.store_format)
    n_products = len(cat.list_price)
    n_customers = len(customers["home"])
    category_names = np.array(list(CATEGORIES))

    def at(day: npt.NDArray[Any], seconds: npt.NDArray[Any]) -> npt.NDArray[np.datetime64]:
        midnight = (day0 + np.asarray(day).astype("timedelta64[D]")).astype("datetime64[us]")
        return np.asarray(midnight + np.asarray(seconds).astype("timedelta64[s]"), dtype="datetime64[us]")

    def fractional_day(x: F64) -> npt.NDArray[np.datetime64]:
        day = np.floor(x).astype(np.int64)
        return at(day, ((x - day) * 86400).astype(np.int64))

    # Orders are numbered in time order, like a real order system.
    ts = at(orders.day, orders.seconds)
    order_rank = np.argsort(ts, kind="stable")
    order_id = np.empty(len(ts), dtype=np.int64)
    order_id[order_rank] = np.arange(1, len(ts) + 1)
    line_oid = order_id[orders.line_order]
    line_sort = np.lexsort((rng.random(len(line_oid)), line_oid))
    line_oid = line_oid[line_sort]
    new_order = np.concatenate([[True], line_oid[1:] != line_oid[:-1]])
    line_no = (
        np.arange(len(line_oid)) - np.maximum.accumulate(np.where(new_order, np.arange(len(line_oid)), 0)) + 1
    )
    product = orders.line_product[line_sort]
    quantity = orders.line_quantity[line_sort]
    line_store = orders.store[orders.line_order][line_sort]
    line_day = orders.day[orders.line_order][line_sort]
    promo = cat.promo_discount[line_store, line_day, product]
    offer_disc = orders.line_offer_discount[line_sort]
    price = cat.list_price[product]
    discount = np.round(price * quantity * promo + price * offer_disc, 2)

    store_name = np.where(
        cat.store_format == "online",
        "Online shop",
        np.char.add(
            np.char.add(np.char.capitalize(cat.store_region), " "),
            np.char.add(cat.store_format, np.char.add(" ", np.arange(n_stores).astype(str))),
        ),
    )
    red_imp = redemptions["impression"]
    redemption_order_index = _redemption_order_index(orders, len(red_imp))

    tables: dict[str, list[Column]] = {
        "stores": [
            Column("store_id", "int8", np.arange(1, n_stores + 1)),
            Column("store_name", "text", store_name),
            Column("region", "text", cat.store_region),
            Column("format", "text", cat.store_format),
            Column("opened_at", "date", cat.store_opened),
        ],
        "customers": [
            Column("customer_id", "int8", np.arange(1, n_customers + 1)),
            Column("signup_date", "date", day0 + customers["signup_day"].astype("timedelta64[D]")),
            Column("region", "text", cat.store_region[customers["home"]]),
            Column("segment", "text", np.where(customers["business"], "business", "household")),
            Column("age_band", "text", customers["age_band"], null=customers["age_null"]),
            Column("is_loyalty_member", "bool", customers["loyalty"]),
            Column("email_opt_in", "bool", customers["email"]),
        ],
        "products": [
            Column("product_id", "int8", np.arange(1, n_products + 1)),
            Column("title", "text", cat.title),
            Column("brand", "text", cat.brand),
            Column("category", "text", cat.product_category),
            Column("platform", "text", cat.platform),
            Column("list_price", "numeric", cat.list_price),
            Column("unit_cost", "numeric", cat.unit_cost),
            Column("is_own_brand", "bool", cat.is_own_brand),
            Column("sustainability_score", "numeric", cat.sustainability, null=cat.sustainability_null),
            Column("is_verified_sustainable", "bool", cat.verified),
            Column("launched_at", "date", day0 + cat.launch_day.astype("timedelta64[D]")),
            Column("initial_stock", "int4", cat.initial_stock),
        ],
        "product_embeddings": [
            Column("product_id", "int8", np.arange(1, n_products + 1)),
            Column("embedding", "vector", cat.embedding),
            Column("embedding_model", "text", np.full(n_products, EMBEDDING_MODEL)),
            Column(
                "created_at",
                "timestamptz",
                at(np.maximum(cat.launch_day, 0) - 1, np.zeros(n_products, np.int64)),
            ),
        ],
        "orders": [
            Column("order_id", "int8", order_id[order_rank]),
            Column(
                "customer_id",
                "int8",
                orders.customer[order_rank] + 1,
                null=orders.customer[order_rank] < 0,
            ),
            Column("store_id", "int8", orders.store[order_rank] + 1),
            Column("ordered_at", "timestamptz", ts[order_rank]),
            Column("channel", "text", orders.channel[order_rank]),
        ],
        "order_items": [
            Column("order_id", "int8", line_oid),
            Column("line_no", "int4", line_no),
            Column("product_id", "int8", product + 1),
            Column("quantity", "numeric", quantity, scale=0),
            Column("unit_price", "numeric", price),
            Column("discount_amount", "numeric", discount),
            Column("promo_flag", "bool", promo > 0),
        ],
        "promotions": [
            Column("promotion_id", "int8", cat.promotions["promotion_id"]),
            Column("product_id", "int8", cat.promotions["product_id"]),
            Column(
                "store_id",
                "int8",
                cat.promotions["store_id"],
                null=np.asarray(cat.promotions["store_null"], bool),
            ),
            Column("start_date", "date", cat.promotions["start_date"]),
            Column("end_date", "date", cat.promotions["end_date"]),
            Column("discount_pct", "numeric", cat.promotions["discount_pct"], scale=4),
            Column("feature_ad", "bool", cat.promotions["feature_ad"]),
        ],
        "offers": [
            Column("offer_id", "int8", np.arange(1, len(offers["depth"]) + 1)),
            Column("product_id", "int8", offers["product"] + 1, null=offers["product"] < 0),
            Column("category", "text", category_names[offers["category"]]),
            Column("discount_depth", "numeric", offers["depth"], scale=4),
            Column("margin_impact", "numeric", offers["margin"]),
            Column("start_date", "date", day0 + offers["start_day"].astype("timedelta64[D]")),
            Column("end_date", "date", day0 + (offers["start_day"] + 13).astype("timedelta64[D]")),
            Column("is_own_brand", "bool", offers["own"]),
        ],
        "impressions": [
            Column("impression_id", "int8", np.arange(1, len(impressions["offer"]) + 1)),
            Column("customer_id", "int8", impressions["customer"] + 1),
            Column("offer_id", "int8", impressions["offer"] + 1),
            Column("shown_at", "timestamptz", fractional_day(impressions["when"])),
        ],
        "redemptions": [
            Column("redemption_id", "int8", np.arange(1, len(red_imp) + 1)),
            Column("impression_id", "int8", red_imp + 1),
            Column("redeemed_at", "timestamptz", fractional_day(redemptions["when"])),
            Column("order_id", "int8", order_id[redemption_order_index]),
        ],
    }
    return tables


def _inventory(tables: dict[str, list[Column]], rng: np.random.Generator) -> list[Column]:
    """Stock on hand at the end of the history for every product x store that sold in the
    last 28 days: between about 0.3 and 3 weeks of its recent sales, so some need reordering."""
    orders = {c.name: np.asarray(c.values) for c in tables["orders"]}
    items = {c.name: np.asarray(c.values) for c in tables["order_items"]}
    last_day = orders["ordered_at"].max().astype("datetime64[D]")
    position = np.searchsorted(orders["order_id"], items["order_id"])  # orders are sorted by id
    recent = orders["ordered_at"][position].astype("datetime64[D]") > last_day - 28
    store, product = orders["store_id"][position][recent], items["product_id"][recent]
    pairs, units = np.unique(np.stack([product, store]), axis=1, return_inverse=True)
    daily = np.bincount(units.ravel(), items["quantity"][recent], pairs.shape[1]) / 28
    on_hand = rng.poisson(daily * 7 * rng.uniform(0.3, 3.0, pairs.shape[1]))
    n = pairs.shape[1]
    return [
        Column("snapshot_date", "date", np.full(n, last_day)),
        Column("product_id", "int8", pairs[0]),
        Column("store_id", "int8", pairs[1]),
        Column("on_hand", "numeric", on_hand, scale=0),
    ]


def _redemption_order_index(orders: _Orders, n_redemptions: int) -> I64:
    """Positions of the redemption orders in the concatenated order arrays.

    Redemption orders are the one-line orders whose line carries an offer
    discount; they were concatenated in redemption order.
    """
    offer_lines = np.flatnonzero(orders.line_offer_discount > 0)
    idx = orders.line_order[offer_lines]
    assert len(idx) == n_redemptions
    return idx.astype(np.int64)
