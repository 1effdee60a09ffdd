"""Stores, products, CLIP-like embeddings, promotions and the demand intensity they imply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from storecast.database.sample.scales import Scale

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

EMBEDDING_DIM = 768
EMBEDDING_MODEL = "clip-vit-large-patch14 (synthetic)"
STYLE_CLUSTERS = 12

#: Category -> (median list price, price elasticity, yearly amplitude, sells design listings).
CATEGORIES: dict[str, tuple[float, float, float, bool]] = {
    "grocery": (3.5, 1.2, 0.10, False),
    "fresh": (4.0, 1.0, 0.08, False),
    "household": (6.0, 1.6, 0.05, False),
    "beauty": (12.0, 1.8, 0.20, False),
    "baby": (15.0, 1.1, 0.05, False),
    "pet": (9.0, 1.3, 0.05, False),
    "home": (35.0, 2.2, 0.30, True),
    "apparel": (28.0, 2.4, 0.25, True),
    "toys": (22.0, 2.0, 0.60, True),
    "stationery": (8.0, 1.7, 0.25, True),
}
REGIONS = ("north", "south", "east", "west", "central")
STORE_FORMATS = ("hypermarket", "supermarket", "convenience")
#: Relative footfall per store format.
FORMAT_SIZE = {"hypermarket": 2.0, "supermarket": 1.0, "convenience": 0.45, "online": 1.6}
#: Day-of-week demand multipliers, Monday first.
WEEKLY = np.array([0.88, 0.84, 0.90, 0.98, 1.14, 1.32, 0.94])
OWN_BRAND = "Storecast Essentials"


@dataclass
class Catalogue:
    """Everything about stores and products the other generators need."""

    dates: npt.NDArray[np.datetime64]
    store_format: npt.NDArray[np.str_]
    store_region: npt.NDArray[np.str_]
    store_opened: npt.NDArray[np.datetime64]
    product_category: npt.NDArray[np.str_]
    product_category_idx: I64
    category_bounds: I64
    list_price: F64
    unit_cost: F64
    is_own_brand: npt.NDArray[np.bool_]
    is_listing: npt.NDArray[np.bool_]
    platform: npt.NDArray[np.str_]
    brand: npt.NDArray[np.str_]
    title: npt.NDArray[np.str_]
    sustainability: F64
    sustainability_null: npt.NDArray[np.bool_]
    verified: npt.NDArray[np.bool_]
    launch_day: I64
    initial_stock: I64
    style_cluster: I64
    appeal: F64
    embedding: npt.NDArray[np.float32]
    popularity: F64
    promo_discount: F64  # (stores, days, products), 0 when no promotion
    promo_feature: npt.NDArray[np.bool_]  # (stores, days, products)
    promotions: dict[str, npt.NDArray[Any]]
    intensity: F64  # (stores, days, products): expected line items per day before scaling


def seasonal_multiplier(dates: npt.NDArray[np.datetime64], amplitude: float) -> F64:
    """Yearly cycle ``1 + amplitude * cos(...)`` peaking before Christmas."""
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    # Peak around 20 December; the trough falls in June.
    return np.asarray(1.0 + amplitude * np.cos(2 * np.pi * (day_of_year - 354) / 365.25), dtype=np.float64)


def weekday(dates: npt.NDArray[np.datetime64]) -> I64:
    """Day of week, Monday = 0."""
    return ((dates.astype("datetime64[D]").astype(np.int64) - 4) % 7).astype(np.int64)


def build_catalogue(scale: Scale, end_date: np.datetime64, rng: np.random.Generator) -> Catalogue:
    """Generate stores, products, embeddings and promotions, and the demand intensity."""
    days = scale.days
    dates = end_date - np.arange(days - 1, -1, -1).astype("timedelta64[D]")
    n_stores = scale.stores
    store_format = np.array(["online", *rng.choice(STORE_FORMATS, size=n_stores - 1, p=[0.2, 0.55, 0.25])])
    store_region = np.array(["national", *rng.choice(REGIONS, size=n_stores - 1)])
    store_opened = dates[0] - rng.integers(200, 5000, size=n_stores).astype("timedelta64[D]")
    store_size = np.array([FORMAT_SIZE[f] for f in store_format]) * rng.lognormal(0, 0.25, n_stores)

    names = list(CATEGORIES)
    design_cats = [i for i, c in enumerate(names) if CATEGORIES[c][3]]
    # Every category gets core products, so every store sells every category.
    core_cat = np.concatenate(
        [np.arange(len(names)), rng.integers(0, len(names), scale.core_products - len(names))]
    )
    listing_cat = rng.choice(design_cats, size=scale.listings)
    cat_idx_unsorted = np.concatenate([core_cat, listing_cat])
    is_listing_unsorted = np.arange(len(cat_idx_unsorted)) >= scale.core_products
    # Products are numbered in category order, so a category is a contiguous id range.
    order = np.lexsort((is_listing_unsorted, cat_idx_unsorted))
    cat_idx = cat_idx_unsorted[order].astype(np.int64)
    is_listing = is_listing_unsorted[order]
    n_products = len(cat_idx)
    category_bounds = np.searchsorted(cat_idx, np.arange(len(names) + 1)).astype(np.int64)

    median_price = np.array([CATEGORIES[names[c]][0] for c in cat_idx])
    elasticity = np.array([CATEGORIES[names[c]][1] for c in cat_idx])
    list_price = np.round(median_price * rng.lognormal(0, 0.45, n_products), 2).clip(0.5)
    unit_cost = np.round(list_price * rng.uniform(0.45, 0.75, n_products), 2)
    is_own_brand = rng.random(n_products) < 0.22
    brand = np.where(
        is_own_brand,
        OWN_BRAND,
        np.char.add("Brand ", rng.integers(1, 40, n_products).astype(str)),
    )
    platform = np.where(is_listing, np.where(rng.random(n_products) < 0.7, "online", "marketplace"), "store")
    sustainability = rng.beta(2.2, 2.2, n_products) * 100
    sustainability_null = rng.random(n_products) < 0.08
    verified = (sustainability > 55) & (rng.random(n_products) < 0.55) & ~sustainability_null

    # Embeddings: unit vectors around a style-cluster centroid; cosine to the
    # centroid is about 0.7, between clusters about 0.
    centroids = rng.standard_normal((STYLE_CLUSTERS, EMBEDDING_DIM))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    cluster = rng.integers(0, STYLE_CLUSTERS, n_products).astype(np.int64)
    noise = rng.standard_normal((n_products, EMBEDDING_DIM)) / np.sqrt(EMBEDDING_DIM)
    emb = centroids[cluster] + noise
    embedding = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)

    # Appeal of a design: its style cluster, its sustainability and its price.
    cluster_appeal = rng.normal(0, 0.8, STYLE_CLUSTERS)
    sust_z = np.where(sustainability_null, 0.0, (sustainability - 50) / 25)
    appeal = (
        cluster_appeal[cluster]
        + 0.3 * sust_z
        + 0.35 * verified
        - 1.1 * np.log(list_price / median_price)
        + rng.normal(0, 0.35, n_products)
    )

    launch_day = np.where(
        is_listing,
        rng.integers(20, days, n_products),
        -rng.integers(200, 2000, n_products),
    ).astype(np.int64)

    # Heavy-tailed popularity makes the slowest core series intermittent.
    popularity = np.where(is_listing, 1.0, rng.lognormal(0.0, 1.1, n_products))
    trend = rng.normal(0, 0.18, n_products)

    t = np.arange(days)
    weekly = WEEKLY[weekday(dates)] / WEEKLY.mean()
    cat_amp = np.array([CATEGORIES[n][2] for n in names])
    # (days, products): category-specific yearly cycle, weekly cycle, product trend
    yearly_cycle = seasonal_multiplier(dates, 1.0) - 1.0  # cosine in [-1, 1]
    base = weekly[:, None] * (1.0 + cat_amp[cat_idx][None, :] * yearly_cycle[:, None])
    base = base * np.exp(trend[None, :] * (t[:, None] - days / 2) / 365.0) * popularity[None, :]

    # Design listings: sales follow launch, strongest in the first weeks.
    age = t[:, None] - launch_day[None, :]
    novelty = np.where(age >= 0, 0.25 + np.exp(-np.maximum(age, 0) / 90.0), 0.0)
    listing_rate = 0.35 * np.exp(appeal)[None, :] * novelty
    base = np.where(is_listing[None, :], weekly[:, None] * listing_rate, base)

    promo_discount, promo_feature, promotions = _promotions(
        rng, n_stores, days, n_products, is_listing, dates
    )
    lift = (1.0 - promo_discount) ** (-elasticity[None, None, :]) * np.where(promo_feature, 1.3, 1.0)
    intensity = store_size[:, None, None] * base[None, :, :] * lift
    # Listings sell through the online store (store 0) only.
    intensity[1:, :, is_listing] = 0.0
    # Stores sell nothing before they open.
    closed = dates[None, :] < store_opened[:, None]
    intensity[closed] = 0.0

    # Buy-in for a listing is planned from an average design, not its true appeal.
    expected_90d = 0.35 * np.exp(np.median(appeal[is_listing]) if is_listing.any() else 0.0) * 40
    initial_stock = np.where(
        is_listing,
        np.round(expected_90d * rng.uniform(0.8, 1.6, n_products) * 2.2),
        rng.integers(500, 5000, n_products),
    ).astype(np.int64)

    category = np.array(names)[cat_idx]
    title = np.char.add(
        np.char.add(np.char.add(brand, " "), category),
        np.char.add(" item ", (np.arange(n_products) + 1).astype(str)),
    )
    return Catalogue(
        dates=dates,
        store_format=store_format,
        store_region=store_region,
        store_opened=store_opened,
        product_category=category,
        product_category_idx=cat_idx,
        category_bounds=category_bounds,
        list_price=list_price,
        unit_cost=unit_cost,
        is_own_brand=is_own_brand,
        is_listing=is_listing,
        platform=platform,
        brand=brand,
        title=title,
        sustainability=np.round(sustainability, 2),
        sustainability_null=sustainability_null,
        verified=verified,
        launch_day=launch_day,
        initial_stock=initial_stock,
        style_cluster=cluster,
        appeal=appeal,
        embedding=embedding,
        popularity=popularity,
        promo_discount=promo_discount,
        promo_feature=promo_feature,
        promotions=promotions,
        intensity=intensity,
    )


def _promotions(
    rng: np.random.Generator,
    n_stores: int,
    days: int,
    n_products: int,
    is_listing: npt.NDArray[np.bool_],
    dates: npt.NDArray[np.datetime64],
) -> tuple[F64, npt.NDArray[np.bool_], dict[str, npt.NDArray[Any]]]:
    """Non-overlapping promotion episodes per core product, chain-wide or in one store."""
    core = np.flatnonzero(~is_listing)
    max_episodes = days // 30 + 2
    gaps = 25 + rng.exponential(45, (len(core), max_episodes))
    lengths = rng.integers(7, 15, (len(core), max_episodes))
    starts = np.cumsum(gaps + np.concatenate([np.zeros((len(core), 1)), lengths[:, :-1]], axis=1), axis=1)
    starts = starts.astype(np.int64) - 20
    valid = (starts >= 0) & (starts + lengths <= days)
    prod = np.repeat(core, max_episodes)[valid.ravel()]
    start = starts.ravel()[valid.ravel()]
    length = lengths.ravel()[valid.ravel()]
    n = len(prod)
    discount = rng.choice([0.1, 0.15, 0.2, 0.25, 0.3, 0.4], size=n)
    feature = rng.random(n) < 0.3
    chainwide = rng.random(n) < 0.6
    store = np.where(chainwide, -1, rng.integers(0, n_stores, n))

    promo_discount = np.zeros((n_stores, days, n_products))
    promo_feature = np.zeros((n_stores, days, n_products), dtype=bool)
    day_idx = np.repeat(start, length) + (
        np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    )
    ep = np.repeat(np.arange(n), length)
    for s in range(n_stores):
        hit = (store[ep] == -1) | (store[ep] == s)
        promo_discount[s, day_idx[hit], prod[ep[hit]]] = discount[ep[hit]]
        promo_feature[s, day_idx[hit], prod[ep[hit]]] = feature[ep[hit]]
    promotions: dict[str, npt.NDArray[Any]] = {
        "promotion_id": np.arange(1, n + 1),
        "product_id": prod + 1,
        "store_id": np.where(store < 0, 0, store + 1),
        "store_null": store < 0,
        "start_date": dates[start],
        "end_date": dates[start + length - 1],
        "discount_pct": discount,
        "feature_ad": feature,
    }
    return promo_discount, promo_feature, promotions
