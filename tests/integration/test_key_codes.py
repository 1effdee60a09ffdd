"""Keys written as codes (the setting coded_keys): numbered once, read everywhere, never guessed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from storecast.config import load_config
from storecast.database.loader import load_csv
from storecast.database.overrides import OverrideError, key_of
from storecast.database.sample import SampleData
from storecast.database.sample.load import load_sample
from storecast.database.schema import apply_schema
from storecast.db import Conn
from storecast.service.app import create_app, serving
from storecast.settings import Settings, get_settings
from tests.integration.shell import fresh_database

PRODUCTS = "product_id,title,brand,category,platform,list_price,unit_cost,launched_at,initial_stock\n"
CODED = ("product_id", "store_id")


@pytest.fixture
def db(pg_settings: Settings) -> Iterator[Conn]:
    """An empty database of its own: codes are numbered from the keys already loaded."""
    with psycopg.connect(fresh_database(pg_settings, "key_codes"), autocommit=True) as conn:
        apply_schema(conn)
        yield conn


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _product(code: str, price: str = "2.50") -> str:
    return f"{code},Mug {code},acme,home,store,{price},1.00,2024-01-01,10\n"


def _codes(conn: Conn, key: str) -> dict[str, int]:
    return {
        str(code): int(str(number))
        for code, number in conn.execute(
            "select code, key_value from raw.key_codes where key_column = %s", [key]
        ).fetchall()
    }


def test_codes_are_numbered_in_file_order_after_the_keys_already_loaded(db: Conn, tmp_path: Path) -> None:
    numbers = load_csv(db, "products", _file(tmp_path, "a.csv", PRODUCTS + _product("41") + _product("7")))
    assert numbers.rows_loaded == 2
    coded = load_csv(
        db,
        "products",
        _file(tmp_path, "b.csv", PRODUCTS + _product("85123A") + _product("00123") + _product("123")),
        coded_keys=CODED,
    )
    assert coded.status == "loaded"
    # Text as written: 00123 and 123 are two codes, numbered past the highest key (41).
    assert _codes(db, "product_id") == {"85123A": 42, "00123": 43, "123": 44}
    titles = {
        int(str(k)): str(t) for k, t in db.execute("select product_id, title from raw.products").fetchall()
    }
    assert titles == {7: "Mug 7", 41: "Mug 41", 42: "Mug 85123A", 43: "Mug 00123", 44: "Mug 123"}


def test_a_code_keeps_its_number_when_its_row_is_loaded_again(db: Conn, tmp_path: Path) -> None:
    load_csv(db, "products", _file(tmp_path, "a.csv", PRODUCTS + _product("SKU-1")), coded_keys=CODED)
    again = PRODUCTS + _product("SKU-1", price="3.00") + _product("SKU-2")
    result = load_csv(db, "products", _file(tmp_path, "b.csv", again), mode="upsert", coded_keys=CODED)
    assert (result.status, result.rows_loaded) == ("loaded", 2)
    assert _codes(db, "product_id") == {"SKU-1": 1, "SKU-2": 2}
    prices = db.execute("select product_id, list_price::text from raw.products order by 1").fetchall()
    assert prices == [(1, "3.00"), (2, "2.50")]


def test_a_rejected_row_leaves_no_number_behind(db: Conn, tmp_path: Path) -> None:
    data = PRODUCTS + _product("SKU-1") + _product("SKU-BAD", price="abc")
    result = load_csv(db, "products", _file(tmp_path, "a.csv", data), coded_keys=CODED)
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("partial", 1, 1)
    assert _codes(db, "product_id") == {"SKU-1": 1}
    # So a line of the rejected product is told its code is unknown, not that a number is.
    load_csv(
        db,
        "stores",
        _file(
            tmp_path,
            "s.csv",
            "store_id,store_name,region,format,opened_at\nS01,North,north,supermarket,2020-01-01\n",
        ),
        coded_keys=CODED,
    )
    orders = "order_id,store_id,ordered_at,channel\n1,S01,2024-02-01,store\n2,S99,2024-02-01,store\n"
    placed = load_csv(db, "orders", _file(tmp_path, "o.csv", orders), coded_keys=CODED)
    assert placed.first_rejects == [
        (3, "store_id: no code 'S99' in raw.stores; load raw.stores with it first (setting coded_keys)")
    ]
    items = "order_id,line_no,product_id,quantity,unit_price\n1,1,SKU-1,2,2.50\n1,2,SKU-BAD,1,2.50\n1,3,1,1,2.50\n"
    sold = load_csv(db, "order_items", _file(tmp_path, "i.csv", items), coded_keys=CODED)
    assert (sold.rows_loaded, sold.rows_rejected) == (1, 2)
    # "1" is no code even though 1 is SKU-1's number: a code is never read as a number.
    assert [reason for _, reason in sold.first_rejects] == [
        "product_id: no code 'SKU-BAD' in raw.products; load raw.products with it first (setting coded_keys)",
        "product_id: no code '1' in raw.products; load raw.products with it first (setting coded_keys)",
    ]
    assert db.execute(
        "select product_id, store_id from raw.order_items join raw.orders using (order_id)"
    ).fetchall() == [(1, 1)]


def test_all_or_nothing_numbers_nothing(db: Conn, tmp_path: Path) -> None:
    data = PRODUCTS + _product("SKU-1") + _product("SKU-2", price="-1")
    result = load_csv(db, "products", _file(tmp_path, "a.csv", data), all_or_nothing=True, coded_keys=CODED)
    assert (result.status, result.rows_loaded) == ("rejected", 0)
    assert _codes(db, "product_id") == {}


def test_a_code_without_the_setting_is_rejected_naming_it(db: Conn, tmp_path: Path) -> None:
    result = load_csv(db, "products", _file(tmp_path, "a.csv", PRODUCTS + _product("85123A")))
    assert result.first_rejects == [
        (
            2,
            "product_id: expected bigint, got '85123A' (invalid input syntax for type bigint: \"85123A\"); "
            "for keys written as codes set coded_keys: [product_id]",
        )
    ]
    assert _codes(db, "product_id") == {}


def test_the_sample_replaces_the_codes_with_the_rows(db: Conn, tmp_path: Path, tiny: SampleData) -> None:
    load_csv(db, "products", _file(tmp_path, "a.csv", PRODUCTS + _product("SKU-1")), coded_keys=CODED)
    load_sample(db, tiny, source="tests: sample over codes")
    # The sample's product 1 is not SKU-1: no mart may show it under that code.
    assert _codes(db, "product_id") == {}


def test_a_key_written_twice_is_named_by_its_code(db: Conn, tmp_path: Path) -> None:
    data = PRODUCTS + _product("SKU-1") + _product("SKU-1", price="3.00")
    twice = load_csv(db, "products", _file(tmp_path, "a.csv", data), coded_keys=CODED)
    assert twice.first_rejects == [
        (3, "duplicate (product_id)=(SKU-1) within the file (primary key): first seen on line 2")
    ]
    again = load_csv(db, "products", _file(tmp_path, "b.csv", PRODUCTS + _product("SKU-1")), coded_keys=CODED)
    assert again.first_rejects == [
        (2, "key (product_id)=(SKU-1) already exists in raw.products; use --mode upsert to update it")
    ]


def test_an_override_names_a_product_by_its_code(db: Conn, tmp_path: Path) -> None:
    load_csv(
        db,
        "products",
        _file(tmp_path, "a.csv", PRODUCTS + _product("7") + _product("SKU-1")),
        coded_keys=CODED,
    )
    assert key_of(db, "product_id", "SKU-1") == 2
    # With codes, "1" is a code no product has, not the number 1; a key no file wrote as
    # codes is named by its number.
    with pytest.raises(OverrideError, match=r"product_code: no code '1' in raw\.key_codes"):
        key_of(db, "product_id", "1")
    assert key_of(db, "store_id", "5") == 5


def test_an_upload_to_the_service_reads_the_coded_keys_setting(
    db: Conn, pg_settings: Settings, tmp_path: Path
) -> None:
    settings = get_settings({"STORECAST_HOME": str(pg_settings.home), "STORECAST_DATABASE_URL": db.info.dsn})
    app = create_app(
        settings, config=lambda: load_config(["coded_keys=[product_id]"]), upload_folder=tmp_path
    )
    with serving(app) as url:
        response = httpx.post(
            f"{url}/uploads/products",
            content=PRODUCTS + _product("85123A"),
            headers={"Content-Type": "text/csv"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["rows_loaded"] == 1
    assert _codes(db, "product_id") == {"85123A": 1}


def test_a_price_list_keyed_by_codes_loads_against_coded_products(db: Conn, tmp_path: Path) -> None:
    load_csv(db, "products", _file(tmp_path, "p.csv", PRODUCTS + _product("SKU-A")), coded_keys=CODED)
    prices = (
        "price_id,product_id,store_id,start_date,end_date,shelf_price\n"
        "PR-1,SKU-A,,2026-01-05,2026-01-11,2.49\nPR-2,SKU-Z,,2026-01-05,2026-01-11,1.99\n"
    )
    # A price list's own keys may be codes too: the setting accepts price_id.
    coded = load_config(["coded_keys=[product_id, price_id]"], environ={}).values["coded_keys"]
    result = load_csv(db, "shelf_prices", _file(tmp_path, "s.csv", prices), coded_keys=coded)
    assert (result.rows_loaded, result.rows_rejected) == (1, 1)
    assert _codes(db, "price_id") == {"PR-1": 1}
    assert db.execute("select price_id, product_id, shelf_price::text from raw.shelf_prices").fetchall() == [
        (1, _codes(db, "product_id")["SKU-A"], "2.49")
    ]
