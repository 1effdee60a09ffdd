"""Customer bases unlike the sample's, end to end with settings only: one cohort, one
product and no offers at 181-day horizons (trained as of past dates too, and where a
label window cannot mature), and a base whose customers return some of what they buy."""

from __future__ import annotations

import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest

from storecast.config import load_config
from storecast.settings import Settings
from storecast.training.data import FeatureReader
from storecast.training.spec import model_specs
from storecast.training.train import train_model
from tests.integration.shapes import AS_OF
from tests.integration.shell import Shell


@pytest.fixture(scope="module")
def cohort(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Shell, str]:
    """A one-cohort, one-product online retailer without offers, which knows no customer's
    region or segment nor any order's channel, modelled for 181 days ahead."""
    settings_file = tmp_path_factory.mktemp("cohort") / "storecast.yml"
    settings_file.write_text(
        "vars:\n  purchase_horizon_days: 181\n  churn_horizon_days: 181\n  clv_horizon_days: 181\n"
    )
    sh = Shell(pg_settings, "shapes_cohort", settings_file)
    sh.ok(
        "sample", "--scale", "tiny", "--shape", "one-cohort", "--shape", "one-product", "--shape", "no-offers"
    )
    # An online shop knows its customers by an id and a signup date only, and writes no
    # channel on their orders.
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        conn.execute("update raw.customers set region = null, segment = null")
        conn.execute("update raw.orders set channel = null")
    sh.ok("build", "--as-of", AS_OF)
    trained = sh.ok("train", "--as-of", AS_OF)
    return sh, trained + sh.ok("score", "--as-of", AS_OF)


def test_a_one_cohort_base_trains_and_scores_with_settings_only(cohort: tuple[Shell, str]) -> None:
    sh, output = cohort
    assert int(str(sh.one("select max(signup_date) - min(signup_date) from raw.customers"))) < 91
    # The horizon reached the labels and the registry.
    assert (
        sh.one("select spec ->> 'horizon_days' from ml.model_versions where model_name = 'purchase_30d'")
        == "181"
    )
    # One product, no offers: those features carry nothing and are left out, by name, and recorded.
    dropped = sh.one("select dropped_features from ml.model_versions where model_name = 'purchase_30d'")
    assert isinstance(dropped, list)
    assert {"offer_redemption_rate_to_date", "high_price_tier_share", "segment", "customer_region"} <= set(
        dropped
    )
    assert "warning: purchase_30d: left out" in output
    # No offers: the skip names the raw rows the offer model is built from.
    assert (
        "offer_redemption_7d: skipped: features.customer_offer_features has no rows: "
        "it is built from the offers shown to customers (raw.impressions)"
    ) in output
    # Every customer is older than those with a matured label: spend is BG/NBD + Gamma-Gamma, not
    # a level learned from the younger matured customers but the rate of their last 90 days' orders.
    ((chosen, note, spend_level),) = sh.rows(
        "select estimator, metrics ->> 'selection_note', metrics ->> 'calibration_note' "
        "from ml.model_versions where model_name = 'clv_365d'"
    )
    assert chosen == "bg_nbd_gamma_gamma"
    assert "with no level learned from the labels" in str(note)
    # One product at one price: many customers' orders are all worth the same, Gamma-Gamma's
    # likelihood has no maximum, and the order value is a credibility estimate, said so.
    assert "Gamma-Gamma's fit ran to its boundary" in str(note)
    assert "Gamma-Gamma's fit ran to its boundary" in output
    assert "times in the 90 days to" in str(spend_level)
    assert "times what BG/NBD fitted on them then expected" in str(spend_level)
    # The level is the one measured, held at 1 (MAX_RECENT_LEVEL) where that reads higher.
    held = re.search(r"level ([0-9.]+): .*?, ([0-9.]+) times what BG/NBD", str(spend_level))
    assert held is not None
    assert float(held.group(1)) == min(float(held.group(2)), 1.0)
    # Purchase keeps BG/NBD's own order of the customers (a monotone map of its probability),
    # its level held to the rate of their last 90 days' orders.
    ((chosen, note, level),) = sh.rows(
        "select estimator, metrics ->> 'selection_note', metrics ->> 'calibration_note' "
        "from ml.model_versions where model_name = 'purchase_30d'"
    )
    assert chosen == "bg_nbd_probability"
    assert "in BG/NBD's own order" in str(note)
    assert "times in the 90 days to" in str(level)
    assert "at that rate (log odds" in str(level)
    # One rate of orders holds both: the same customers, the same days.
    levels = [re.search(r"level ([0-9.]+): ", str(n)) for n in (level, spend_level)]
    assert all(levels)
    assert len({m.group(1) for m in levels if m}) == 1
    rate = re.search(r"([0-9.]+) at that rate", str(level))
    assert rate is not None
    served = sh.one(
        "select avg(purchase_probability) from scores.customer where as_of_date = %s",
        [date.fromisoformat(AS_OF)],
    )
    # What serves, through ONNX, is at that level.
    assert float(str(served)) == pytest.approx(float(rate.group(1)), abs=0.002)
    assert "offer_redemption: skipped: no champion for offer_redemption_7d" in output
    scored = sh.one(
        "select count(*) from scores.customer where as_of_date = %s and purchase_probability is not null "
        "and churn_probability is not null and expected_spend is not null",
        [date.fromisoformat(AS_OF)],
    )
    assert int(str(scored)) > 0


def test_training_as_of_a_past_date_reads_no_label_from_after_it(cohort: tuple[Shell, str]) -> None:
    sh, _ = cohort
    as_of = date(2026, 9, 7)
    config = load_config(environ=sh.env)
    spec = model_specs(config.values)["purchase_30d"]
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        # The data runs on to November: without the as-of date, labels past September are read.
        window = np.timedelta64(spec.horizon_days, "D")
        everything = FeatureReader(conn, spec).read()
        assert (everything.time + window > np.datetime64(as_of)).any()
        result = train_model(conn, spec, sh.settings.models_dir, as_of)
        for dates in (result.split.train, result.split.validation, result.split.test):
            assert max(dates) + timedelta(days=spec.horizon_days) <= as_of
        assert (result.test.time + window <= np.datetime64(as_of)).all()
        row = conn.execute(
            "select trained_as_of from ml.model_versions where model_name = 'purchase_30d' and version = %s",
            [result.version],
        ).fetchone()
    assert row == (as_of,)


@pytest.mark.parametrize(
    ("as_of", "said", "recorded"),
    [
        # As of June, a year after the cohort's first orders, a 181-day label has matured
        # for half a year of weeks, every one within 181 days of the held-out weeks: the
        # embargo is shortened rather than nothing trained.
        (
            "2026-06-01",
            "warning: purchase_30d: every matured time value is within the 181-day embargo",
            "held-out scores are somewhat optimistic",
        ),
        # As of January it has matured for fewer weeks than holdout_periods=8: half of
        # them are held out instead.
        ("2026-01-05", "held out instead of holdout_periods=8", "held-out scores rest on fewer dates"),
    ],
)
def test_a_short_matured_history_trains_and_says_what_it_gave_up(
    cohort: tuple[Shell, str], as_of: str, said: str, recorded: str
) -> None:
    sh, _ = cohort
    result = sh("train", "purchase_30d", "--as-of", as_of)
    assert result.exit_code == 0, result.output
    assert said in result.output
    note = sh.one(
        "select metrics ->> 'split_note' from ml.model_versions where model_name = 'purchase_30d' "
        "and trained_as_of = %s order by version desc limit 1",
        [as_of],
    )
    assert recorded in str(note)


def test_a_model_that_cannot_be_trained_is_named_and_the_others_still_train(
    cohort: tuple[Shell, str],
) -> None:
    sh, _ = cohort
    # As of December a 181-day label has matured for too few weeks to train and hold out.
    result = sh("train", "purchase_30d", "offer_redemption_7d", "demand", "--as-of", "2025-12-01")
    assert result.exit_code == 1
    assert "error: purchase_30d: " in result.output
    assert "time values have matured labels; need at least 3" in result.output
    assert "shorten the horizon (--var purchase_horizon_days, now 181)" in result.output
    # Asked for by name without offers: the error names the raw rows it needs, not a setting.
    assert (
        "error: offer_redemption_7d: features.customer_offer_features has no rows: "
        "it is built from the offers shown to customers (raw.impressions)"
    ) in result.output
    assert "demand: version" in result.output


@pytest.fixture(scope="module")
def returning(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Shell, str]:
    """The sample retailer whose customers send back a sixth of their lines on average."""
    settings_file = tmp_path_factory.mktemp("returns") / "storecast.yml"
    settings_file.write_text("vars: {}\n")
    sh = Shell(pg_settings, "shapes_returns", settings_file)
    sh.ok("sample", "--scale", "tiny", "--shape", "returns")
    sh.ok("build", "--as-of", AS_OF)
    trained = sh.ok("train", "purchase_30d", "clv_365d", "--as-of", AS_OF)
    return sh, trained + sh.ok("score", "--as-of", AS_OF)


def test_returns_come_off_spend_and_out_of_orders_and_demand(returning: tuple[Shell, str]) -> None:
    sh, _ = returning
    lines = pd.DataFrame(
        sh.rows(
            "select o.customer_id, o.store_id, d.order_date, i.order_id, i.product_id, "
            "i.quantity::float8, i.unit_price::float8, i.discount_amount::float8 "
            "from raw.order_items i join raw.orders o using (order_id) "
            "join staging.stg_raw__orders d using (order_id)"
        ),
        columns=["customer", "store", "day", "order_id", "product", "quantity", "price", "discount"],
    )
    returned = lines["quantity"] < 0
    assert returned.mean() > 0.03
    # What a line paid, or (a return) refunded: the units at their price less their discount.
    lines["net"] = lines["quantity"] * lines["price"] - np.sign(lines["quantity"]) * lines["discount"]
    mine = lines[lines["customer"].notna()]
    purchase = mine[mine["quantity"] >= 0].groupby("order_id")["day"].first()
    # A matured as-of date: a year's label window closed before the history ends.
    as_of = date.fromisoformat(AS_OF) - timedelta(days=400)
    as_of = as_of - timedelta(days=as_of.weekday())
    features = pd.DataFrame(
        sh.rows(
            "select customer_id, frequency_90d, monetary_90d, spend_in_horizon, avg_basket_value "
            "from features.customer_features where as_of_date = %s order by customer_id",
            [as_of],
        ),
        columns=["customer", "frequency_90d", "monetary_90d", "spend", "avg_basket_value"],
    ).set_index("customer")
    assert features["spend"].notna().all()
    window = mine[(mine["day"] >= as_of) & (mine["day"] < as_of + timedelta(days=365))]
    spend = window.groupby("customer")["net"].sum().clip(lower=0)
    np.testing.assert_allclose(
        features["spend"], spend.reindex(features.index, fill_value=0.0).to_numpy(dtype=float), atol=1e-6
    )
    recent = mine[(mine["day"] >= as_of - timedelta(days=90)) & (mine["day"] < as_of)]
    np.testing.assert_allclose(
        features["monetary_90d"],
        recent.groupby("customer")["net"].sum().reindex(features.index, fill_value=0.0).to_numpy(dtype=float),
        atol=1e-6,
    )
    # An order of returns only is no purchase.
    bought = purchase[(purchase >= as_of - timedelta(days=90)) & (purchase < as_of)]
    orders = mine.drop_duplicates("order_id").set_index("order_id").loc[bought.index, "customer"]
    np.testing.assert_array_equal(
        features["frequency_90d"], orders.value_counts().reindex(features.index, fill_value=0).to_numpy()
    )
    # Some customers' returns made a difference to what they spent.
    gross = window[window["quantity"] >= 0].groupby("customer")["net"].sum()
    assert (gross.reindex(features.index, fill_value=0.0) > features["spend"] + 1).mean() > 0.05
    # Demand counts only what sold.
    sold = lines[(lines["quantity"] >= 0) & lines["store"].notna()]["quantity"].sum()
    assert float(str(sh.one("select sum(units) from features.demand_sales"))) == pytest.approx(sold)
    # The spend model trains on net labels and serves no negative spend.
    assert sh.one("select count(*) from ml.model_versions where model_name = 'clv_365d'") == 1
    assert float(str(sh.one("select min(expected_spend) from scores.customer"))) >= 0
