"""Sizes of the sample retailer, one registry entry per ``--scale``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """How big a sample retailer to generate.

    Attributes
    ----------
    customers:
        Identified (loyalty) customers.
    core_products:
        Products ranged in every store and online (``platform = 'store'``).
    listings:
        Design listings launched during the period and sold online only; the
        population the sell-through model learns from.
    stores:
        Stores including the one online store.
    days:
        Length of the order history.
    anonymous_lines:
        Expected anonymous till lines (customer lines come on top).
    offers_per_week:
        Personal offers started each week.
    """

    customers: int
    core_products: int
    listings: int
    stores: int
    days: int
    anonymous_lines: int
    offers_per_week: int


SCALES: dict[str, Scale] = {
    "tiny": Scale(
        customers=400,
        core_products=30,
        listings=160,
        stores=3,
        days=550,
        anonymous_lines=12_000,
        offers_per_week=4,
    ),
    "small": Scale(
        customers=3_000,
        core_products=60,
        listings=300,
        stores=6,
        days=730,
        anonymous_lines=70_000,
        offers_per_week=8,
    ),
    "medium": Scale(
        customers=20_000,
        core_products=120,
        listings=600,
        stores=10,
        days=730,
        anonymous_lines=300_000,
        offers_per_week=12,
    ),
    "large": Scale(
        customers=100_000,
        core_products=300,
        listings=1_500,
        stores=30,
        days=730,
        anonymous_lines=1_700_000,
        offers_per_week=20,
    ),
}
