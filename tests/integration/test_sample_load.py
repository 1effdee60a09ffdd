"""Sample data lands in the raw tables completely, atomically and with its constraints intact."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from storecast.database.pgbinary import Column
from storecast.database.sample import SampleData
from storecast.database.sample.load import load_sample
from storecast.db import Conn


def _count(conn: Conn, table: str) -> int:
    row = conn.execute(f"select count(*) from raw.{table}").fetchone()  # names come from the generator
    assert row is not None
    return int(str(row[0]))


def _foreign_keys(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "select conrelid::regclass::text, conname, convalidated from pg_constraint "
        "where contype = 'f' and connamespace = 'raw'::regnamespace order by 1, 2"
    ).fetchall()


@pytest.fixture(autouse=True)
def fresh(conn: Conn, tiny: SampleData) -> None:
    """Other tests add rows to the shared database; start each test from the sample alone."""
    load_sample(conn, tiny, source="tests: fresh tiny")


def test_every_generated_row_is_in_the_database(conn: Conn, tiny: SampleData) -> None:
    for table, rows in tiny.row_counts().items():
        assert _count(conn, table) == rows, table


def test_values_round_trip_exactly(conn: Conn, tiny: SampleData) -> None:
    items = {c.name: c.values for c in tiny.tables["order_items"]}
    got = conn.execute(
        "select sum(quantity), sum(unit_price * quantity), sum(discount_amount), count(*) filter (where promo_flag) "
        "from raw.order_items"
    ).fetchone()
    assert got is not None
    assert got[0] == int(np.sum(items["quantity"]))  # a numeric of 3 decimals, whole here
    assert float(str(got[1])) == pytest.approx(
        float(np.sum(np.round(items["unit_price"], 2) * items["quantity"])), abs=0.01
    )
    assert float(str(got[2])) == pytest.approx(float(np.sum(items["discount_amount"])), abs=0.01)
    assert int(str(got[3])) == int(np.sum(items["promo_flag"]))
    dim = conn.execute("select vector_dims(embedding) from raw.product_embeddings limit 1").fetchone()
    assert dim == (768,)
    anonymous = conn.execute("select count(*) from raw.orders where customer_id is null").fetchone()
    assert anonymous is not None
    assert int(str(anonymous[0])) > 0


def test_foreign_keys_are_restored_and_validated_after_a_load(conn: Conn, tiny: SampleData) -> None:
    fks = _foreign_keys(conn)
    assert len(fks) >= 10
    assert all(valid for *_, valid in fks)


def test_reloading_replaces_rows_instead_of_adding_them(conn: Conn, tiny: SampleData) -> None:
    load_sample(conn, tiny, source="tests: reload")
    assert _count(conn, "orders") == tiny.row_counts()["orders"]
    logged = conn.execute("select count(*) from raw.loads where source_file = 'tests: reload'").fetchone()
    assert logged == (len(tiny.tables),)


def test_a_failed_load_leaves_the_previous_data_and_constraints(conn: Conn, tiny: SampleData) -> None:
    before = {t: _count(conn, t) for t in tiny.tables}
    fks = _foreign_keys(conn)
    broken = SampleData(tables=dict(tiny.tables))
    items = tiny.tables["order_items"]
    bad_product = Column("product_id", "int8", np.full(len(items[0].values), 999_999))
    broken.tables["order_items"] = [bad_product if c.name == "product_id" else c for c in items]
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        load_sample(conn, broken, source="tests: broken")
    assert {t: _count(conn, t) for t in tiny.tables} == before
    assert _foreign_keys(conn) == fks
