"""The sample retailer is deterministic, consistent, and carries the effects docs/sample-data.md promises."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from storecast.database.sample import SCALES, SampleData, generate

Arr = npt.NDArray[Any]


def table(data: SampleData, name: str) -> dict[str, Arr]:
    """Columns of a generated table by name; NULLs are reported under '<name>_null'."""
    out: dict[str, Arr] = {}
    for col in data.tables[name]:
        out[col.name] = np.asarray(col.values)
        out[f"{col.name}_null"] = (
            np.zeros(len(col.values), bool) if col.null is None else np.asarray(col.null)
        )
    return out


def spearman(a: Arr, b: Arr) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.fixture(scope="module")
def small() -> SampleData:
    return generate(SCALES["small"], seed=42)


@pytest.fixture(scope="module")
def lines(small: SampleData) -> dict[str, Arr]:
    """Order lines joined to their order: customer, store, day index, units, spend."""
    orders, items = table(small, "orders"), table(small, "order_items")
    pos = np.searchsorted(orders["order_id"], items["order_id"])
    first = orders["ordered_at"].min().astype("datetime64[D]")
    day = (orders["ordered_at"][pos].astype("datetime64[D]") - first).astype(int)
    return {
        "customer": np.where(orders["customer_id_null"][pos], 0, orders["customer_id"][pos]),
        "store": orders["store_id"][pos],
        "day": day,
        "weekday": ((orders["ordered_at"][pos].astype("datetime64[D]").astype(int) - 4) % 7),
        "month": orders["ordered_at"][pos].astype("datetime64[M]").astype(int) % 12 + 1,
        "product": items["product_id"],
        "units": items["quantity"],
        "spend": items["quantity"] * items["unit_price"] - items["discount_amount"],
        "promo": items["promo_flag"],
        "first_day": np.array([first]),
    }


def day_index(lines: dict[str, Arr], dates: Arr) -> Arr:
    """Days since the first order day, for an array of dates."""
    return np.asarray((dates.astype("datetime64[D]") - lines["first_day"][0]).astype(int))


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = (generate(SCALES["tiny"], seed=s) for s in (42, 42, 43))
    for name in a.tables:
        for ca, cb in zip(a.tables[name], b.tables[name], strict=True):
            assert np.array_equal(np.asarray(ca.values), np.asarray(cb.values)), f"{name}.{ca.name}"
    assert a.row_counts() != c.row_counts()


def test_keys_are_unique_and_references_resolve(small: SampleData) -> None:
    orders, items = table(small, "orders"), table(small, "order_items")
    customers, products = table(small, "customers"), table(small, "products")
    impressions, redemptions = table(small, "impressions"), table(small, "redemptions")
    assert len(np.unique(orders["order_id"])) == len(orders["order_id"])
    keys = items["order_id"] * 1000 + items["line_no"]
    assert len(np.unique(keys)) == len(keys)
    assert np.isin(items["order_id"], orders["order_id"]).all()
    assert np.isin(items["product_id"], products["product_id"]).all()
    known = orders["customer_id"][~orders["customer_id_null"]]
    assert np.isin(known, customers["customer_id"]).all()
    assert np.isin(impressions["customer_id"], customers["customer_id"]).all()
    assert np.isin(redemptions["impression_id"], impressions["impression_id"]).all()
    assert np.isin(redemptions["order_id"], orders["order_id"]).all()
    shown = impressions["shown_at"][redemptions["impression_id"] - 1]
    assert (redemptions["redeemed_at"] > shown).all()
    # Line numbers run 1..n within each order.
    first_line = np.concatenate([[True], items["order_id"][1:] != items["order_id"][:-1]])
    assert (items["line_no"][first_line] == 1).all()


def test_values_satisfy_the_raw_check_constraints(small: SampleData) -> None:
    items, promos, offers = table(small, "order_items"), table(small, "promotions"), table(small, "offers")
    assert (items["quantity"] > 0).all()
    assert (items["discount_amount"] >= 0).all()
    assert (items["discount_amount"] <= items["unit_price"] * items["quantity"] + 1e-9).all()
    assert (promos["end_date"] >= promos["start_date"]).all()
    assert ((promos["discount_pct"] > 0) & (promos["discount_pct"] < 1)).all()
    assert ((offers["discount_depth"] > 0) & (offers["discount_depth"] < 1)).all()


def test_customers_with_a_higher_true_rate_buy_more_later(small: SampleData, lines: dict[str, Arr]) -> None:
    rate, death = small.truth["customer_rate"], small.truth["customer_death_day"]
    window_start = lines["day"].max() - 180
    late = lines["day"] >= window_start
    orders_late = np.bincount(lines["customer"][late], minlength=len(rate) + 1)[1:]
    signup = table(small, "customers")["signup_date"]
    alive = (death > lines["day"].max()) & (signup < signup.max() - 365)
    assert alive.sum() > 300
    assert spearman(rate[alive], orders_late[alive]) > 0.5


def test_recent_buyers_are_far_more_likely_to_buy_next_month(lines: dict[str, Arr]) -> None:
    known = lines["customer"] > 0
    cust, day = lines["customer"][known], lines["day"][known]
    cutoff = day.max() - 90
    n = cust.max() + 1
    last_before = np.full(n, -10_000)
    np.maximum.at(last_before, cust[day < cutoff], day[day < cutoff])
    bought_next = np.zeros(n, bool)
    bought_next[cust[(day >= cutoff) & (day < cutoff + 30)]] = True
    recent = last_before >= cutoff - 30
    lapsed = (last_before < cutoff - 180) & (last_before > -10_000)
    assert bought_next[recent].mean() > 3 * bought_next[lapsed].mean()


def test_spend_level_persists_from_one_year_to_the_next(small: SampleData, lines: dict[str, Arr]) -> None:
    known = lines["customer"] > 0
    n = lines["customer"].max() + 1
    half = lines["day"].max() // 2
    in_first, in_second = known & (lines["day"] < half), known & (lines["day"] >= half)
    first = np.bincount(lines["customer"][in_first], lines["spend"][in_first], n)
    second = np.bincount(lines["customer"][in_second], lines["spend"][in_second], n)
    survived = np.concatenate([[False], small.truth["customer_death_day"] > lines["day"].max()])
    active = (first > 0) & survived
    assert active.sum() > 300
    assert spearman(first[active], second[active]) > 0.6


def test_weekly_and_yearly_seasonality_show_in_units(lines: dict[str, Arr]) -> None:
    by_weekday = np.bincount(lines["weekday"], lines["units"], 7)
    assert by_weekday[5] > 1.2 * by_weekday[1]  # Saturday vs Tuesday
    days_in = np.bincount(np.unique(np.stack([lines["day"], lines["month"]]), axis=1)[1], minlength=13)
    per_day = np.bincount(lines["month"], lines["units"], 13) / np.maximum(days_in, 1)
    assert per_day[12] > 1.1 * per_day[6]  # December vs June


def test_promotions_lift_units_of_the_same_product(small: SampleData, lines: dict[str, Arr]) -> None:
    promos = table(small, "promotions")
    n_stores, n_days = lines["store"].max(), lines["day"].max() + 1
    n_products = len(small.truth["product_is_listing"])
    end_day = day_index(lines, promos["end_date"])
    on_promo = np.zeros((n_stores, n_days, n_products), bool)
    for i in range(len(promos["promotion_id"])):
        length = (promos["end_date"][i] - promos["start_date"][i]).astype(int) + 1
        day0 = end_day[i] - length + 1
        stores = slice(None) if promos["store_id_null"][i] else promos["store_id"][i] - 1
        on_promo[stores, day0 : day0 + length, promos["product_id"][i] - 1] = True
    units = np.zeros((n_stores, n_days, n_products))
    np.add.at(units, (lines["store"] - 1, lines["day"], lines["product"] - 1), lines["units"])
    promoted = on_promo.any(axis=(0, 1))
    lifts = [
        units[:, :, p][on_promo[:, :, p]].mean() / units[:, :, p][~on_promo[:, :, p]].mean()
        for p in np.flatnonzero(promoted)
    ]
    assert np.median(lifts) > 1.2


def test_some_series_are_intermittent(lines: dict[str, Arr], small: SampleData) -> None:
    core = ~small.truth["product_is_listing"]
    physical = lines["store"] > 1
    cells = np.unique(np.stack([lines["product"], lines["store"], lines["day"]])[:, physical], axis=1)
    series, days_sold = np.unique(cells[0] * 1000 + cells[1], return_counts=True)
    zero_share = 1 - days_sold / (lines["day"].max() + 1)
    is_core = core[series // 1000 - 1]
    assert (zero_share[is_core] > 0.5).mean() > 0.1


def test_design_appeal_drives_sales_and_is_visible_in_embeddings(
    small: SampleData, lines: dict[str, Arr]
) -> None:
    products, emb = table(small, "products"), table(small, "product_embeddings")
    listing = small.truth["product_is_listing"]
    # Day index (from the first order day) on which each product launched.
    launch_day = day_index(lines, products["launched_at"])
    age = lines["day"] - launch_day[lines["product"] - 1]
    early = (age >= 0) & (age < 60)
    units = np.bincount(lines["product"][early] - 1, lines["units"][early], len(listing))
    mature = listing & (launch_day <= lines["day"].max() - 60)
    log_units = np.log1p(units)
    assert spearman(small.truth["product_appeal"][mature], log_units[mature]) > 0.5
    # Neighbours by cosine similarity among earlier listings predict an item's sales.
    vectors = emb["embedding"][mature]
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    neighbours = np.argsort(-sims, axis=1)[:, :5]
    assert spearman(log_units[mature][neighbours].mean(axis=1), log_units[mature]) > 0.3


def test_offer_redemption_is_rare_and_depends_on_depth_and_history(small: SampleData) -> None:
    imp, red, offers = table(small, "impressions"), table(small, "redemptions"), table(small, "offers")
    redeemed = np.isin(imp["impression_id"], red["impression_id"])
    assert 0.01 < redeemed.mean() < 0.08
    depth = offers["discount_depth"][imp["offer_id"] - 1]
    assert redeemed[depth >= 0.4].mean() > 1.5 * redeemed[depth <= 0.15].mean()
    half = np.sort(imp["shown_at"])[len(imp["shown_at"]) // 2]
    early, late = imp["shown_at"] < half, imp["shown_at"] >= half
    redeemed_early = np.unique(imp["customer_id"][early & redeemed])
    late_by_redeemer = np.isin(imp["customer_id"][late], redeemed_early)
    assert redeemed[late][late_by_redeemer].mean() > 1.5 * redeemed[late][~late_by_redeemer].mean()


def test_medium_scale_has_about_a_million_order_lines_over_two_years() -> None:
    data = generate(SCALES["medium"], seed=42)
    counts = data.row_counts()
    assert counts["customers"] == 20_000
    assert 900_000 <= counts["order_items"] <= 1_200_000
    orders = table(data, "orders")
    span = (orders["ordered_at"].max() - orders["ordered_at"].min()).astype("timedelta64[D]").astype(int)
    assert span >= 700


def test_every_scale_is_sized_as_docs_sample_data_says() -> None:
    # The documented table is what users size their machine by; it must follow the code.
    from tests import REPOSITORY

    doc = (REPOSITORY / "docs" / "sample-data.md").read_text()
    documented = {}
    for row in doc.splitlines():
        cells = [c.strip().replace(" ", "") for c in row.strip("|").split("|")]
        if cells and cells[0] in SCALES:
            core, listings = cells[2].split("+")
            documented[cells[0]] = (int(cells[1]), int(core), int(listings), int(cells[3]), int(cells[4]))
    assert set(documented) == set(SCALES)
    for name, scale in SCALES.items():
        assert documented[name] == (
            scale.customers,
            scale.core_products,
            scale.listings,
            scale.stores,
            scale.days,
        ), name
    # The generated row counts of the smallest scale are documented too.
    tiny = generate(SCALES["tiny"], seed=42).row_counts()
    row = next(r for r in doc.splitlines() if r.startswith("| tiny"))
    cells = [c.strip().replace(" ", "") for c in row.strip("|").split("|")]
    assert (int(cells[5]), int(cells[6]), int(cells[7])) == (
        tiny["orders"],
        tiny["order_items"],
        tiny["impressions"],
    )


def test_fading_customers_thin_out_with_age_and_keep_every_first_order(small: SampleData) -> None:
    from storecast.database.sample.shapes import reshape

    def orders_by_age(data: SampleData) -> tuple[Arr, Arr]:
        orders = table(data, "orders")
        mine = ~orders["customer_id_null"]
        customer = orders["customer_id"][mine]
        day = orders["ordered_at"][mine].astype("datetime64[D]").astype(np.int64)
        first = np.full(int(customer.max()) + 1, np.iinfo(np.int64).max)
        np.minimum.at(first, customer, day)
        return day - first[customer], np.unique(customer)

    before_age, before_customers = orders_by_age(small)
    faded = reshape(small, ["fading"])
    after_age, after_customers = orders_by_age(faded)
    # Every customer keeps their first order (so their age), and the anonymous orders stay.
    np.testing.assert_array_equal(after_customers, before_customers)
    anonymous = table(small, "orders")["customer_id_null"].sum()
    assert table(faded, "orders")["customer_id_null"].sum() == anonymous
    # Orders thin out with age: most kept in a customer's first quarter, under half after a year.
    young = (after_age < 90).sum() / (before_age < 90).sum()
    old = (after_age >= 365).sum() / (before_age >= 365).sum()
    assert young > 0.8
    assert old < 0.55
    # Lines follow their orders.
    assert np.isin(table(faded, "order_items")["order_id"], table(faded, "orders")["order_id"]).all()


def test_drifting_customers_keep_their_first_order_and_buy_in_spells(small: SampleData) -> None:
    from storecast.database.sample.shapes import reshape

    orders = table(small, "orders")
    drifted = reshape(small, ["drifting"])
    after = table(drifted, "orders")
    mine = ~after["customer_id_null"]
    # Every customer keeps their first order, and the anonymous orders stay.
    np.testing.assert_array_equal(
        np.unique(after["customer_id"][mine]), np.unique(orders["customer_id"][~orders["customer_id_null"]])
    )
    assert after["customer_id_null"].sum() == orders["customer_id_null"].sum()
    # About half of the later orders go (the activity is uniform on 0-1) ...
    kept = mine.sum() / (~orders["customer_id_null"]).sum()
    assert 0.4 < kept < 0.8
    # ... and not independently: a customer's share kept in one 60-day stretch follows the
    # share kept in the stretch before (the same spell), where independent thinning would not.
    day = orders["ordered_at"].astype("datetime64[D]").astype(np.int64)
    kept_order = np.isin(orders["order_id"], after["order_id"])
    stretch = (day - day.min()) // 60
    mine_before = ~orders["customer_id_null"]
    frame = pd.DataFrame(
        {
            "customer": orders["customer_id"][mine_before],
            "stretch": stretch[mine_before],
            "kept": kept_order[mine_before],
        }
    )
    share = frame.groupby(["customer", "stretch"])["kept"].mean().unstack()
    pairs = np.column_stack([share.iloc[:, :-1].to_numpy().ravel(), share.iloc[:, 1:].to_numpy().ravel()])
    pairs = pairs[~np.isnan(pairs).any(axis=1)]
    assert np.corrcoef(pairs.T)[0, 1] > 0.2
    assert np.isin(table(drifted, "order_items")["order_id"], after["order_id"]).all()


def test_returns_send_back_lines_of_customers_orders_later_at_their_prices(small: SampleData) -> None:
    from storecast.database.sample.shapes import reshape

    returned = reshape(small, ["returns"])
    before_orders, after_orders = table(small, "orders"), table(returned, "orders")
    before_lines, after_lines = table(small, "order_items"), table(returned, "order_items")
    # Nothing that was sold changes: the returns are new orders and new lines.
    old = len(before_orders["order_id"])
    np.testing.assert_array_equal(after_orders["order_id"][:old], before_orders["order_id"])
    np.testing.assert_array_equal(
        after_lines["quantity"][: len(before_lines["quantity"])], before_lines["quantity"]
    )
    parcels = {k: v[old:] for k, v in after_orders.items()}
    lines = {k: v[len(before_lines["quantity"]) :] for k, v in after_lines.items()}
    assert len(np.unique(after_orders["order_id"])) == len(after_orders["order_id"])
    assert (lines["quantity"] < 0).all()
    assert np.isin(lines["order_id"], parcels["order_id"]).all()
    # A sixth of the identified customers' lines on average (Beta(1, 5)), less those not yet due.
    identified_lines = np.isin(
        before_lines["order_id"], before_orders["order_id"][~before_orders["customer_id_null"]]
    ).sum()
    assert 0.08 < len(lines["quantity"]) / identified_lines < 0.2
    # Each returned line matches a line its customer bought earlier: product, price, discount.
    assert not parcels["customer_id_null"].any()
    bought = pd.DataFrame(
        {
            "order_id": before_lines["order_id"],
            "line_no": before_lines["line_no"],
            "product_id": before_lines["product_id"],
            "quantity": before_lines["quantity"],
            "unit_price": before_lines["unit_price"],
            "discount_amount": before_lines["discount_amount"],
        }
    ).merge(
        pd.DataFrame(
            {
                "order_id": before_orders["order_id"],
                "customer_id": before_orders["customer_id"],
                "ordered_at": before_orders["ordered_at"],
            }
        )
    )
    sent = pd.DataFrame(
        {
            "parcel": lines["order_id"],
            "line_no": lines["line_no"],
            "product_id": lines["product_id"],
            "quantity": -lines["quantity"],
            "unit_price": lines["unit_price"],
            "discount_amount": lines["discount_amount"],
        }
    ).merge(
        pd.DataFrame(
            {
                "parcel": parcels["order_id"],
                "customer_id": parcels["customer_id"],
                "returned_at": parcels["ordered_at"],
            }
        )
    )
    matched = sent.merge(
        bought, on=["customer_id", "line_no", "product_id", "quantity", "unit_price", "discount_amount"]
    )
    matched = matched[(matched["returned_at"] - matched["ordered_at"]) >= np.timedelta64(1, "D")]
    assert sent["parcel"].isin(matched["parcel"]).all()
    # Customers differ in how much they return: among those with 20 lines or more, some
    # return none of them, some a third or more.
    mine = ~before_orders["customer_id_null"]
    customer_of = pd.Series(before_orders["customer_id"][mine], index=before_orders["order_id"][mine])
    count = (
        pd.Series(customer_of.reindex(before_lines["order_id"]).to_numpy())
        .dropna()
        .astype(np.int64)
        .value_counts()
    )
    sent_by = sent["customer_id"].value_counts().reindex(count.index, fill_value=0)
    share = (sent_by / count)[count >= 20]
    assert (share == 0).mean() > 0.05
    assert (share >= 1 / 3).mean() > 0.05
    assert parcels["ordered_at"].max() <= before_orders["ordered_at"].max()


def test_stockouts_lose_a_store_s_lines_on_the_days_its_count_is_zero(small: SampleData) -> None:
    from storecast.database.sample.shapes import reshape

    out = reshape(small, ["stockouts"])
    counts = pd.DataFrame(table(out, "inventory_snapshots"))
    assert not counts.duplicated(["snapshot_date", "product_id", "store_id"]).any()
    empty = counts["on_hand"] == 0
    # About one day in 15 out of stock (Beta(1, 60) chances, 4-day spells), some pairs far more.
    assert 0.03 < empty.mean() < 0.12
    share = empty.groupby([counts["product_id"], counts["store_id"]]).mean()
    assert (share == 0).mean() > 0.05
    assert (share > 0.2).mean() > 0.01

    def store_lines(data: SampleData) -> pd.DataFrame:
        """The store lines (not online ones), with the count at the end of their day."""
        orders, items = table(data, "orders"), table(data, "order_items")
        lines = pd.DataFrame({"order_id": items["order_id"], "product_id": items["product_id"]}).merge(
            pd.DataFrame(
                {
                    "order_id": orders["order_id"],
                    "store_id": orders["store_id"],
                    "online": orders["store_id_null"],
                    "snapshot_date": orders["ordered_at"].astype("datetime64[D]"),
                }
            )
        )
        return (
            lines[~lines["online"]]
            .astype({"store_id": np.int64})
            .merge(counts, on=["snapshot_date", "product_id", "store_id"], how="left")
        )

    before, after = store_lines(small), store_lines(out)
    # No store line is left on a day out; the lines lost were all on such days.
    assert not (after["on_hand"] == 0).any()
    lost = before["on_hand"] == 0
    assert lost.sum() == len(before) - len(after)
    assert 0.02 < lost.mean() < 0.15
    # Online lines are untouched, and every order left has a line.
    online = table(small, "orders")["store_id_null"].sum()
    assert table(out, "orders")["store_id_null"].sum() == online
    assert (
        len(table(small, "order_items")["order_id"]) - len(table(out, "order_items")["order_id"])
        == lost.sum()
    )
    assert np.isin(table(out, "orders")["order_id"], table(out, "order_items")["order_id"]).all()


def test_barcodes_move_every_key_past_integer_whatever_their_place_among_the_shapes(
    small: SampleData,
) -> None:
    from storecast.database.sample.shapes import reshape

    # Named first, it still applies last: one-product finds the best seller by indexing on keys.
    coded = reshape(small, ["barcodes", "one-product"])
    plain = reshape(small, ["one-product"])
    for name in ("products", "order_items", "promotions", "inventory_snapshots"):
        assert (table(coded, name)["product_id"] > 2**31).all()
        np.testing.assert_array_equal(
            table(coded, name)["product_id"] - table(plain, name)["product_id"], 4_006_381_000_000
        )
    stores = table(coded, "stores")["store_id"]
    assert (stores > 2**31).all()
    assert np.isin(table(coded, "orders")["store_id"], stores).all()
    promotions = table(coded, "promotions")
    assert np.isin(promotions["store_id"][~promotions["store_id_null"]], stores).all()
    # Only keys move: every other column is as it was.
    np.testing.assert_array_equal(
        table(coded, "order_items")["quantity"], table(plain, "order_items")["quantity"]
    )


def test_a_panel_of_a_base_with_returns_counts_what_sold(small: SampleData) -> None:
    from storecast.database.sample.shapes import reshape

    # A weekly panel's till totals are sales: the returns' lines are a customer's, and the
    # panel has none (they netted a week to nothing sold at a negative price once).
    lines = table(reshape(small, ["returns", "weekly"]), "order_items")
    assert (lines["quantity"] >= 0).all()
    assert (lines["unit_price"] >= 0).all()
    # Every unit sold, less the tenth of the store x product x weeks left unreported.
    sold = table(small, "order_items")["quantity"].sum()
    assert 0.8 * sold < lines["quantity"].sum() <= sold
