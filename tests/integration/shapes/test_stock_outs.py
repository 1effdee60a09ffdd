"""A retailer whose shelves run empty now and then: a day out of stock is no label and no
zero, counts loaded late or corrected change the labels, and a stock log written on
change reads as the daily counts do (demand features built, not trained)."""

from __future__ import annotations

import psycopg
import pytest

from storecast.settings import Settings
from tests.integration.shapes import AS_OF
from tests.integration.shell import Shell


@pytest.fixture(scope="module")
def out_of_stock(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """The sample retailer whose shelves run empty now and then, counted every day, its
    demand features built (training on them: ``benchmarks.weekly_demand --data stockouts``)."""
    settings_file = tmp_path_factory.mktemp("stockouts") / "storecast.yml"
    settings_file.write_text("vars: {}\n")
    sh = Shell(pg_settings, "shapes_stockouts", settings_file)
    sh.ok("sample", "--scale", "tiny", "--shape", "stockouts")
    sh.ok("build", "--as-of", AS_OF, "--select", "+demand_features")
    return sh


def test_a_day_out_of_stock_is_no_label_and_no_zero_in_the_history(out_of_stock: Shell) -> None:
    sh = out_of_stock
    days_out = sh.one("select count(*) from raw.inventory_snapshots where on_hand = 0")
    assert int(str(days_out)) > 100
    assert sh.one("select sum(days_out_of_stock) from features.demand_stock_outs") == days_out
    # A matured target day out of stock has no label; every other matured day has one.
    labels = sh.rows(
        "select s.product_id is not null, count(*), count(f.units) "
        "from features.demand_features f left join raw.inventory_snapshots s "
        "on s.product_id = f.product_id and s.store_id = f.store_id and s.snapshot_date = f.target_date "
        "and s.on_hand = 0 where f.target_date < f.observed_until group by 1 order by 1"
    )
    (_, in_stock, in_stock_labelled), (_, out, out_labelled) = labels
    assert int(str(out)) > 100
    assert out_labelled == 0
    assert in_stock_labelled == in_stock
    # The day before an as-of date out of stock is unknown in the history, not the 0 an
    # unsold day counts as.
    lags = sh.rows(
        "select count(*), count(h.units_lag_1) from features.demand_history h "
        "join raw.inventory_snapshots s on s.product_id = h.product_id and s.store_id = h.store_id "
        "and s.snapshot_date = h.as_of_date - 1 and s.on_hand = 0"
    )
    (days_before_out, lags_known) = lags[0]
    assert int(str(days_before_out)) > 100
    assert lags_known == 0


def test_a_count_of_an_empty_shelf_loaded_late_takes_its_label_away(out_of_stock: Shell) -> None:
    """Counts loaded after the build that closed their days' labels (a week at a time):
    the next build, incremental, takes those labels away as a full one would."""
    sh = out_of_stock
    out_of_stock_labels = (
        "from features.demand_features f join raw.inventory_snapshots s on s.product_id = f.product_id "
        "and s.store_id = f.store_id and s.snapshot_date = f.target_date and s.on_hand = 0 "
        "where f.target_date < f.observed_until and not f.label_overridden"
    )
    # As if the labels had been built before the counts were loaded: each day sold what it
    # sold, and no day was known to be out of stock.
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        conn.execute(
            "update features.demand_features as d set units = 1, target_days_out_of_stock = null "
            f"where (d.product_id, d.store_id, d.as_of_date, d.horizon) in (select f.product_id, f.store_id, "
            f"f.as_of_date, f.horizon {out_of_stock_labels})"
        )
    assert int(str(sh.one(f"select count(f.units) {out_of_stock_labels}"))) > 100
    sh.ok("build", "--as-of", AS_OF, "--select", "demand_features")
    assert sh.one(f"select count(f.units) {out_of_stock_labels}") == 0


def test_a_count_corrected_back_to_a_stocked_shelf_gives_its_label_back(out_of_stock: Shell) -> None:
    """A count of an empty shelf corrected after the label of its day was withheld (a
    miscount): the next build, incremental, labels that day as a full one would, and the
    count put back withholds the label again."""
    sh = out_of_stock
    product, store, day = sh.rows(
        "select s.product_id, s.store_id, s.snapshot_date from raw.inventory_snapshots s where s.on_hand = 0 "
        "and exists (select 1 from features.demand_features f where f.product_id = s.product_id "
        "and f.store_id = s.store_id and f.target_date = s.snapshot_date and f.target_date < f.observed_until "
        "and not f.label_overridden) order by s.snapshot_date desc, s.product_id, s.store_id limit 1"
    )[0]
    targets = (
        "select count(*), count(units), count(target_days_out_of_stock) from features.demand_features "
        "where product_id = %s and store_id = %s and target_date = %s"
    )
    count = "update raw.inventory_snapshots set on_hand = %s where (product_id, store_id, snapshot_date) = (%s, %s, %s)"
    rebuild = ("build", "--as-of", AS_OF, "--select", "demand_stock_outs demand_features")
    before = sh.rows(targets, [product, store, day])[0]
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        conn.execute(count, [4, product, store, day])
    try:
        sh.ok(*rebuild)
        corrected = sh.rows(targets, [product, store, day])[0]
    finally:
        with psycopg.connect(sh.conninfo, autocommit=True) as conn:
            conn.execute(count, [0, product, store, day])
        sh.ok(*rebuild)
    rows = int(str(before[0]))
    assert rows > 0
    assert before == (rows, 0, rows)
    assert corrected == (rows, rows, 0)
    assert sh.rows(targets, [product, store, day])[0] == before


#: Daily counts that say what the day before said: what a stock system's log leaves out.
UNCHANGED_COUNTS = """
    select counted.* from raw.inventory_snapshots as counted
    join raw.inventory_snapshots as before
        on before.product_id = counted.product_id and before.store_id = counted.store_id
        and before.snapshot_date = counted.snapshot_date - 1 and before.on_hand = counted.on_hand
"""
DAYS_OUT = "select product_id, store_id, period_start, days_out_of_stock from features.demand_stock_outs order by 1, 2, 3"


def test_a_stock_log_read_on_change_finds_the_days_the_daily_counts_find(out_of_stock: Shell) -> None:
    """The daily counts thinned to a stock system's log (a row only where the count
    changed), read with stock_counts = on_change, give the same days out of stock; read
    as daily counts, only each spell's first day."""
    sh = out_of_stock
    daily = sh.rows(DAYS_OUT)
    with psycopg.connect(sh.conninfo, autocommit=True) as conn:
        conn.execute(f"create table public.unchanged_counts as {UNCHANGED_COUNTS}")
        conn.execute(
            "delete from raw.inventory_snapshots as s using public.unchanged_counts as u "
            "where (s.snapshot_date, s.product_id, s.store_id) = (u.snapshot_date, u.product_id, u.store_id)"
        )
    try:
        spells = int(str(sh.one("select count(*) from raw.inventory_snapshots where on_hand <= 0")))
        assert 0 < spells < len(daily)
        sh.ok("build", "--as-of", AS_OF, "--select", "demand_stock_outs", "--var", "stock_counts=on_change")
        assert sh.rows(DAYS_OUT) == daily
        sh.ok("build", "--as-of", AS_OF, "--select", "demand_stock_outs")
        assert len(sh.rows(DAYS_OUT)) == spells
    finally:
        with psycopg.connect(sh.conninfo, autocommit=True) as conn:
            conn.execute("insert into raw.inventory_snapshots select * from public.unchanged_counts")
            conn.execute("drop table public.unchanged_counts")
        sh.ok("build", "--as-of", AS_OF, "--select", "demand_stock_outs")
