"""Every kind of bad CSV input in the README's table, loaded through `storecast load` as a
user would, in a database of its own: what gets in, what is rejected with which reason,
and the exit status (0 all loaded, 2 some rows rejected, 1 nothing loaded)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from storecast.database.csv_records import DEFAULT_MAX_FIELD_CHARS, DEFAULT_MAX_RECORD_BYTES
from storecast.settings import Settings
from tests import REPOSITORY
from tests.integration.shell import Shell

CUSTOMERS = "customer_id,signup_date,region,segment\n"
PRODUCTS = "product_id,title,brand,category,platform,list_price,unit_cost,launched_at,initial_stock\n"
REDEMPTIONS = "redemption_id,impression_id,redeemed_at\n"
PROMOTIONS = "promotion_id,product_id,store_id,start_date,end_date,discount_pct,feature_ad\n"


@dataclass(frozen=True)
class Case:
    """One kind of bad input: a file (``{id}`` is a key no other case uses), what storecast
    does with it (the README's words), the exit status and a pattern the output or the
    bad row's reject reason matches."""

    kind: str
    does: str
    table: str
    data: str | bytes
    exit_code: int
    pattern: str
    args: tuple[str, ...] = ()
    #: Rows of the file that must be in the table afterwards (by first column).
    loaded: int | None = None
    files: dict[str, str] = field(default_factory=dict)


def _customer(key: str, date: str = "2024-01-01", region: str = "north", segment: str = "household") -> str:
    return f"{key},{date},{region},{segment}\n"


def _product(
    key: str, list_price: str = "9.99", unit_cost: str = "5.00", launched: str = "2024-01-01"
) -> str:
    return f"{key},Mug,Acme,kitchen,store,{list_price},{unit_cost},{launched},10\n"


GOOD = _customer("{id}")
CASES = [
    # The file as a whole
    Case("file does not exist", "nothing loaded; names the file", "customers", "", 1, r"no such file"),
    Case(
        "unknown table",
        "nothing loaded; lists the loadable tables",
        "customer",
        CUSTOMERS + GOOD,
        1,
        r"unknown table 'customer'; loadable raw tables are: .*customers",
    ),
    Case(
        "empty file",
        "nothing loaded; says a header line is expected and lists the columns",
        "customers",
        "",
        1,
        r"file is empty; expected a header line with columns: customer_id",
    ),
    Case("header only", "loads nothing, exit 0", "customers", CUSTOMERS, 0, r"loaded: 0 of 0 rows"),
    Case(
        "wrong delimiter",
        "nothing loaded; names the delimiter the file seems to use",
        "customers",
        CUSTOMERS.replace(",", ";") + GOOD.replace(",", ";"),
        1,
        r"looks ';'-delimited",
    ),
    Case(
        "unknown column",
        "nothing loaded; names it and lists the expected columns",
        "customers",
        CUSTOMERS.replace("\n", ",colour\n") + GOOD.replace("\n", ",red\n"),
        1,
        r"unknown columns: 'colour'.*Expected columns",
    ),
    Case(
        "a pandas index written as the first column",
        "nothing loaded; says to write the file with index=False",
        "customers",
        "," + CUSTOMERS + "0," + GOOD,
        1,
        r"the first column is named '', as pandas names a frame's index: write the file with "
        r"to_csv\(\.\.\., index=False\)\. Expected columns",
    ),
    Case(
        "a column without a name (a delimiter ending every line)",
        "nothing loaded; names its position and says to remove it",
        "customers",
        CUSTOMERS.replace("\n", ",\n") + GOOD.replace("\n", ",\n"),
        1,
        r"column 5 of 5 has no name \(a delimiter at the end of the lines, or an empty column a "
        r"spreadsheet kept\): remove it from the file\. Expected columns",
    ),
    Case(
        "missing required column",
        "nothing loaded; names it",
        "products",
        "product_id,title,list_price\n{id},Mug,2.50\n",
        1,
        r"missing required columns: category",
    ),
    Case(
        "column named twice",
        "nothing loaded; names it",
        "customers",
        CUSTOMERS.replace("\n", ",region\n") + GOOD.replace("\n", ",south\n"),
        1,
        r"columns named more than once: region",
    ),
    Case(
        "column name in another case",
        "nothing loaded; says which name to use",
        "customers",
        CUSTOMERS.replace("customer_id", "Customer_ID") + GOOD,
        1,
        r"'Customer_ID' should be 'customer_id'",
    ),
    Case(
        "carriage-return-only line endings",
        "nothing loaded; says the header cannot be read and why",
        "customers",
        (CUSTOMERS + GOOD).replace("\n", "\r"),
        1,
        r"header \(line 1\) cannot be read.*carriage return only",
    ),
    Case(
        "unterminated quote in the header",
        "nothing loaded; says the header cannot be read",
        "customers",
        '"customer_id,signup_date,region,segment\n' + GOOD,
        1,
        r"header \(line 1\) cannot be read",
    ),
    Case(
        "unknown --mode",
        "nothing loaded; lists the modes",
        "customers",
        CUSTOMERS + GOOD,
        1,
        r"unknown mode 'merge'",
        args=("--mode", "merge"),
    ),
    Case(
        "unknown --encoding",
        "nothing loaded; names it",
        "customers",
        CUSTOMERS + GOOD,
        1,
        r"--encoding: unknown encoding 'klingon'",
        args=("--encoding", "klingon"),
    ),
    Case(
        "--encoding that does not write ASCII as ASCII (UTF-16)",
        "nothing loaded; says to save the file as UTF-8",
        "customers",
        (CUSTOMERS + GOOD).encode("utf-16"),
        1,
        r"--encoding: encoding 'utf-16' does not write ASCII as ASCII .*save the file as UTF-8",
        args=("--encoding", "utf-16"),
    ),
    # Rows: the good row loads, the bad one is kept in raw.load_rejects with its reason (exit 2)
    Case(
        "too few fields",
        "row rejected: expected and found field counts",
        "customers",
        CUSTOMERS + GOOD + "{id2},2024-01-01,north\n",
        2,
        r"expected 4 fields, found 3",
        loaded=1,
    ),
    Case(
        "too many fields",
        "row rejected: expected and found field counts",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}").replace("\n", ",extra\n"),
        2,
        r"expected 4 fields, found 5",
        loaded=1,
    ),
    Case(
        "malformed quoting in a row",
        "row rejected as malformed CSV; parsing goes on",
        "customers",
        CUSTOMERS + GOOD + '{id2},"2024-01-01"x,north,household\n',
        2,
        r"malformed CSV",
        loaded=1,
    ),
    Case(
        "invalid UTF-8",
        "row rejected with the byte and its position, --encoding named; kept with the byte escaped",
        "customers",
        CUSTOMERS.encode() + GOOD.encode() + b"{id2},2024-01-01,M\xfcnchen,household\n",
        2,
        r"not valid UTF-8: byte 0xfc at position \d+ of line 3; if the file is written in another "
        r"encoding, name it with --encoding",
        loaded=1,
    ),
    Case(
        "text in another encoding with --encoding cp1252",
        "accepted as that encoding",
        "customers",
        CUSTOMERS.encode() + GOOD.encode() + b"{id2},2024-01-01,M\xfcnchen,household\n",
        0,
        r"loaded: 2 of 2",
        args=("--encoding", "cp1252"),
        loaded=2,
    ),
    Case(
        "NUL byte",
        "row rejected",
        "customers",
        CUSTOMERS + GOOD + "{id2},2024-01-01,nor\x00th,household\n",
        2,
        r"contains a NUL byte",
        loaded=1,
    ),
    Case(
        "field over the limit",
        f"row rejected (limit {DEFAULT_MAX_FIELD_CHARS:,} characters)",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", region="x" * (DEFAULT_MAX_FIELD_CHARS + 1)),
        2,
        r"field 3 is 1,000,001 characters; the limit is 1,000,000",
        loaded=1,
    ),
    Case(
        "line over the limit",
        f"row rejected unread with its line number (limit {DEFAULT_MAX_RECORD_BYTES // 2**20} MiB); "
        "memory stays bounded; its first 1,000 characters are kept",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", region="y" * (DEFAULT_MAX_RECORD_BYTES + 10)),
        2,
        r"record is [\d,]+ bytes; the limit is 16,777,216",
        loaded=1,
    ),
    Case(
        "text in an integer column",
        "row rejected: column, type and value",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}x"),
        2,
        r"customer_id: expected bigint, got '\d+x'",
        loaded=1,
    ),
    Case(
        "decimal in an integer column",
        "row rejected: column, type and value",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}.5"),
        2,
        r"customer_id: expected a whole number \(bigint\), got '\d+\.5'$",
        loaded=1,
    ),
    Case(
        "NaN in a numeric column",
        "row rejected: expected a finite number",
        "products",
        PRODUCTS + _product("{id}") + _product("{id2}", list_price="NaN"),
        2,
        r"list_price: expected a finite number, got 'NaN'",
        loaded=1,
    ),
    Case(
        "Infinity in a numeric column",
        "row rejected: expected a finite number",
        "products",
        PRODUCTS + _product("{id}") + _product("{id2}", list_price="Infinity"),
        2,
        r"list_price: expected a finite number, got 'Infinity'",
        loaded=1,
    ),
    Case(
        "-Infinity in a numeric column",
        "row rejected: expected a finite number",
        "products",
        PRODUCTS + _product("{id}") + _product("{id2}", unit_cost="-inf"),
        2,
        r"unit_cost: expected a finite number, got '-inf'",
        loaded=1,
    ),
    Case(
        "number too large for the column",
        "row rejected: the type and Postgres's reason",
        "products",
        PRODUCTS + _product("{id}") + _product("{id2}", list_price="1e20"),
        2,
        r"list_price: expected numeric\(12,2\), got '1e20' \(numeric field overflow\)",
        loaded=1,
    ),
    Case(
        "more decimals than the column keeps",
        "row rejected, never rounded: the decimals the column keeps",
        "products",
        PRODUCTS + _product("{id}", list_price="1.50") + _product("{id2}", list_price="1.799"),
        2,
        r"list_price: expected at most 2 decimals \(numeric\(12,2\)\), got '1.799'; round it in the file",
        loaded=1,
    ),
    Case(
        "key written as a code",
        "row rejected: the setting coded_keys named",
        "products",
        PRODUCTS + _product("SKU-{id}"),
        1,
        r"product_id: expected bigint, got 'SKU-\d+' .*; for keys written as codes set coded_keys: \[product_id\]",
    ),
    Case(
        "code no row has, under coded_keys",
        "row rejected: the code and the table to load first",
        "orders",
        "order_id,customer_id,store_id,ordered_at,channel\n{id},1,S-404,2026-01-05T10:00:00Z,store\n",
        1,
        r"store_id: no code 'S-404' in raw.stores; load raw.stores with it first \(setting coded_keys\)",
        args=("--var", "coded_keys=[store_id]"),
    ),
    Case(
        "number with a decimal comma",
        "row rejected, never guessed: --decimal-comma and --thousands-comma named",
        "products",
        PRODUCTS + _product("{id}") + _product("{id2}", list_price='"2,50"'),
        2,
        r"list_price: expected numeric\(12,2\), got '2,50': .* load the file with --decimal-comma \(1\.234,56\) "
        r"or --thousands-comma \(1,234\.56\)",
        loaded=1,
    ),
    Case(
        "number with commas grouping thousands",
        "row rejected, never guessed: --decimal-comma and --thousands-comma named",
        "products",
        PRODUCTS + _product("{id}") + _product("{id2}", list_price='"1,234.50"'),
        2,
        r"list_price: expected numeric\(12,2\), got '1,234.50': .* or --thousands-comma \(1,234\.56\)",
        loaded=1,
    ),
    Case(
        "comma not grouping thousands with --thousands-comma",
        "row rejected: commas grouping thousands expected",
        "products",
        PRODUCTS + _product("{id}", list_price='"1,234.50"') + _product("{id2}", list_price='"2,50"'),
        2,
        r"list_price: expected a number with commas grouping thousands \(--thousands-comma\), e\.g\. 1,234\.56, "
        r"got '2,50'",
        args=("--thousands-comma",),
        loaded=1,
    ),
    Case(
        "--decimal-comma with --thousands-comma",
        "nothing loaded; says they exclude each other",
        "products",
        PRODUCTS + _product("{id}"),
        1,
        r"--decimal-comma \(1\.234,56\) and --thousands-comma \(1,234\.56\) exclude each other",
        args=("--decimal-comma", "--thousands-comma"),
    ),
    Case(
        "point in a number with --decimal-comma",
        "row rejected: a decimal comma expected",
        "products",
        PRODUCTS
        + _product("{id}", list_price='"2,50"', unit_cost='"1,00"')
        + _product("{id2}", list_price="1.5", unit_cost='"1,00"'),
        2,
        r"list_price: expected a number with a decimal comma \(--decimal-comma\), e\.g\. 1\.234,56, got '1\.5'",
        args=("--decimal-comma",),
        loaded=1,
    ),
    Case(
        "value outside a CHECK constraint",
        "row rejected: the constraint and the values",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", segment="alien"),
        2,
        r"violates customers_segment_check .*segment=alien",
        loaded=1,
    ),
    Case(
        "a refund written as a negative price",
        "row rejected: says a return is a negative quantity",
        "order_items",
        "order_id,line_no,product_id,quantity,unit_price\n1,{id},1,2,-2.50\n",
        1,
        r"unit_price=-2.50; a price is 0 or more: write a return as a negative quantity at the price it was sold at",
    ),
    Case(
        "a discount written as a percentage",
        "row rejected: says a discount is a fraction",
        "promotions",
        "promotion_id,product_id,store_id,start_date,end_date,discount_pct\n{id},1,,2026-01-01,2026-01-07,20\n",
        1,
        r"discount_pct: expected numeric\(5,4\), got '20' \(numeric field overflow\); "
        r"a discount is a fraction of the price: 20 % is 0.2",
    ),
    Case(
        "a shelf price of 0 (a week without a price)",
        "row rejected: says to leave such a period out",
        "shelf_prices",
        "price_id,product_id,store_id,start_date,end_date,shelf_price\n"
        "{id},1,,2026-01-05,2026-01-11,0\n{id2},1,1,2026-01-05,2026-01-11,2.49\n",
        2,
        r"shelf_price.*a shelf price is above 0: leave out a period without a price",
        loaded=1,
    ),
    Case(
        "a calendar day whose event is blank",
        "row rejected: says to name the event or leave the day out",
        "calendar_events",
        "event_date,event\n2026-04-05,   \n2026-04-06,event {id}\n",
        2,
        r"violates .*btrim\(event\).*: event=   ; an event is named, the same every year it recurs "
        r"\(e\.g\. easter\): leave out a day without one",
    ),
    Case(
        "empty required field",
        "row rejected: a value is required",
        "products",
        PRODUCTS + _product("{id}") + "{id2},Mug,Acme,,store,9.99,5.00,2024-01-01,10\n",
        2,
        r"category: a value is required",
        loaded=1,
    ),
    Case(
        "impossible date",
        "row rejected: the type and Postgres's reason",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", date="2024-13-45"),
        2,
        r"signup_date: expected date, got '2024-13-45'",
        loaded=1,
    ),
    Case(
        "day/month or month/day date",
        "row rejected, never guessed: ISO 8601 expected, --date-format named",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", date="01/02/2026"),
        2,
        r"signup_date: expected an ISO 8601 date .* got '01/02/2026'; name another order with --date-format",
        loaded=1,
    ),
    Case(
        "date relative to the load time",
        "row rejected: write the date itself",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", date="yesterday"),
        2,
        r"signup_date: 'yesterday' is relative to the load time",
        loaded=1,
    ),
    Case(
        "infinite date",
        "row rejected: not a calendar date",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", date="infinity"),
        2,
        r"signup_date: 'infinity' is not a calendar date",
        loaded=1,
    ),
    Case(
        "date not in the --date-format",
        "row rejected: the format and the value",
        "customers",
        CUSTOMERS + _customer("{id}", date="31/01/2026") + _customer("{id2}", date="2026-01-31"),
        2,
        r"signup_date: expected a date in the format DD/MM/YYYY \(--date-format\), got '2026-01-31'",
        args=("--date-format", "DD/MM/YYYY"),
        loaded=1,
    ),
    Case(
        "not a boolean",
        "row rejected: column, type and value",
        "products",
        PRODUCTS.replace("\n", ",is_own_brand\n")
        + _product("{id}").replace("\n", ",true\n")
        + _product("{id2}").replace("\n", ",maybe\n"),
        2,
        r"is_own_brand: expected boolean, got 'maybe'",
        loaded=1,
    ),
    Case(
        "duplicate key within the file",
        "the first occurrence loads; the others are rejected naming its line",
        "customers",
        CUSTOMERS + GOOD + GOOD.replace("north", "south"),
        2,
        r"duplicate \(customer_id\)=\(\d+\) within the file \(primary key\): first seen on line 2",
        loaded=1,
    ),
    Case(
        "key already in the table",
        "row rejected in append mode (--mode upsert updates it)",
        "customers",
        CUSTOMERS + GOOD + _customer("1"),
        2,
        r"key \(customer_id\)=\(1\) already exists in raw.customers; use --mode upsert",
        loaded=1,
    ),
    Case(
        "duplicate UNIQUE value within the file",
        "the first occurrence loads; the others are rejected",
        "redemptions",
        REDEMPTIONS + "{id},2,2026-01-02T10:00:00Z\n{id2},2,2026-01-03T10:00:00Z\n",
        2,
        r"duplicate \(impression_id\)=\(2\) within the file \(unique constraint redemptions_impression_id_key\)"
        r": first seen on line 2",
        loaded=1,
    ),
    Case(
        "UNIQUE value already in the table",
        "row rejected, naming the constraint",
        "redemptions",
        REDEMPTIONS + "{id},3,2026-01-02T10:00:00Z\n{id2},1,2026-01-03T10:00:00Z\n",
        2,
        r"\(impression_id\)=\(1\) already exists in raw.redemptions \(unique constraint "
        r"redemptions_impression_id_key\)",
        loaded=1,
    ),
    Case(
        "unknown foreign key",
        "row rejected: the value and the table it is missing from",
        "orders",
        "order_id,customer_id,store_id,ordered_at,channel\n{id},1,1,2026-01-05T10:00:00+01:00,store\n"
        "{id2},999999,1,2026-01-05T11:00:00+01:00,store\n",
        2,
        r"customer_id=999999 not found in raw.customers \(customer_id\)",
        loaded=1,
    ),
    Case(
        "every row rejected",
        "nothing loaded, exit 1; every row kept with its reason",
        "customers",
        CUSTOMERS + _customer("{id}", segment="alien") + _customer("{id2}", date="tomorrow"),
        1,
        r"rejected: 0 of 2 rows",
        loaded=0,
    ),
    Case(
        "--all-or-nothing with a bad row",
        "nothing loaded, exit 1; the bad row kept with its reason",
        "customers",
        CUSTOMERS + GOOD + _customer("{id2}", segment="alien"),
        1,
        r"rejected: 0 of 2 rows",
        args=("--all-or-nothing",),
        loaded=0,
    ),
    # Accepted as they are
    Case(
        "UTF-8 byte-order mark",
        "accepted",
        "customers",
        "\ufeff" + CUSTOMERS + GOOD,
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "CRLF line endings",
        "accepted",
        "customers",
        (CUSTOMERS + GOOD).replace("\n", "\r\n"),
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "blank lines",
        "skipped",
        "customers",
        CUSTOMERS + "\n" + GOOD + "\n\n",
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "quoted field over several lines",
        "accepted; line numbers stay those of the file",
        "customers",
        CUSTOMERS + '{id},2024-01-01,"north\nwest",household\n',
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "timestamp with a UTC offset",
        "accepted and stored as that instant",
        "orders",
        "order_id,customer_id,store_id,ordered_at,channel\n{id},1,1,2026-01-05T10:00:00+01:00,store\n",
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "decimal commas with --decimal-comma",
        "accepted as those numbers",
        "products",
        PRODUCTS + _product("{id}", list_price='"1.234,50"', unit_cost='"0,95"'),
        0,
        r"loaded: 1 of 1",
        args=("--decimal-comma",),
        loaded=1,
    ),
    Case(
        "a product with only its key, title and category",
        "accepted; what it leaves out is NULL (not known) or its default",
        "products",
        "product_id,title,category\n{id},Mug,kitchen\n",
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "a promotion without a price cut (no discount_pct, or 0)",
        "accepted; a feature ad or display at the regular price",
        "promotions",
        PROMOTIONS + "{id},1,,2026-01-01,2026-01-07,0,true\n{id2},1,1,2026-01-08,2026-01-14,,false\n",
        0,
        r"loaded: 2 of 2",
        loaded=2,
    ),
    Case(
        "empty field in a column with a default",
        "accepted; the column's default, as when the file leaves the column out",
        "order_items",
        "order_id,line_no,product_id,quantity,unit_price,discount_amount,promo_flag\n1,{id},1,2,3.50,,\n",
        0,
        r"loaded: 1 of 1",
    ),
    Case(
        "a customer with only its key",
        "accepted; what it leaves out is NULL (not known) or its default",
        "customers",
        "customer_id\n{id}\n",
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "a return (negative quantity) among the sales",
        "accepted; netted from its customer's spend, never demand",
        "order_items",
        "order_id,line_no,product_id,quantity,unit_price\n1,{id},1,-2,2.50\n",
        0,
        r"loaded: 1 of 1",
    ),
    Case(
        "an order with only its key, customer and time",
        "accepted; it counts for its customer, not for a store's demand",
        "orders",
        "order_id,customer_id,ordered_at\n{id},1,2026-01-05T10:00:00Z\n",
        0,
        r"loaded: 1 of 1",
        loaded=1,
    ),
    Case(
        "a store with only its key and name",
        "accepted; what it leaves out is NULL (not known)",
        "stores",
        "store_id,store_name\n{id},Corner shop\n",
        0,
        r"loaded: 1 of 1",
    ),
    Case(
        "whole number with zero decimals in an integer column (1.0, as pandas writes)",
        "accepted as that whole number; 1.000 rejected (it may group thousands)",
        "customers",
        CUSTOMERS + _customer("{id}.0") + _customer("{id2}.00"),
        0,
        r"loaded: 2 of 2",
        loaded=2,
    ),
    Case(
        "thousands commas with --thousands-comma",
        "accepted as those numbers",
        "products",
        PRODUCTS + _product("{id}", list_price='"1,234.50"', unit_cost='"1,000"'),
        0,
        r"loaded: 1 of 1",
        args=("--thousands-comma",),
        loaded=1,
    ),
    Case(
        "keys written as codes under coded_keys",
        "accepted; each new code numbered in raw.key_codes",
        "products",
        PRODUCTS + _product("SKU-{id}"),
        0,
        r"loaded: 1 of 1",
        args=("--var", "coded_keys=[product_id]"),
    ),
    Case(
        "day/month dates with --date-format DD/MM/YYYY",
        "accepted in that order",
        "customers",
        CUSTOMERS + _customer("{id}", date="01/02/2026"),
        0,
        r"loaded: 1 of 1",
        args=("--date-format", "DD/MM/YYYY"),
        loaded=1,
    ),
]


@pytest.fixture(scope="module")
def sh(pg_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    """A database with a store, three customers, a product, an order, an offer, three
    impressions and a redemption of the first, all loaded through the CLI."""
    folder = tmp_path_factory.mktemp("bad_input")
    (folder / "storecast.yml").write_text("vars: {}\n")
    shell = Shell(pg_settings, "bad_input", folder / "storecast.yml")
    base = {
        "stores": "store_id,store_name,region,format,opened_at\n1,Main,north,supermarket,2020-01-01\n",
        "customers": CUSTOMERS + "".join(_customer(str(i)) for i in (1, 2, 3)),
        "products": PRODUCTS + _product("1"),
        "orders": "order_id,customer_id,store_id,ordered_at,channel\n1,1,1,2026-01-02T09:00:00Z,store\n",
        "offers": "offer_id,product_id,discount_depth,margin_impact,start_date,end_date\n"
        "1,1,0.2,-1.5,2026-01-01,2026-01-31\n",
        "impressions": "impression_id,customer_id,offer_id,shown_at\n"
        + "".join(f"{i},{i},1,2026-01-01T08:00:00Z\n" for i in (1, 2, 3)),
        "redemptions": REDEMPTIONS + "1,1,2026-01-02T09:00:00Z\n",
    }
    for table, text in base.items():
        path = folder / f"{table}.csv"
        path.write_text(text)
        shell.ok("load", table, str(path))
    return shell


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_bad_input(sh: Shell, case: Case, tmp_path: Path) -> None:
    key = 1_000 + 10 * CASES.index(case)
    path = tmp_path / "in.csv"
    if case.kind != "file does not exist":
        data = case.data.encode() if isinstance(case.data, str) else case.data
        path.write_bytes(data.replace(b"{id2}", str(key + 1).encode()).replace(b"{id}", str(key).encode()))
    result = sh("load", case.table, str(path), *case.args)
    output = " ".join(result.output.split())
    assert result.exit_code == case.exit_code, result.output
    load_id = re.search(r"load (\d+)\)", result.output)
    reasons = ""
    if load_id:
        reasons = " | ".join(
            str(r[0])
            for r in sh.rows(
                "select reason from raw.load_rejects where load_id = %s order by line_no", [int(load_id[1])]
            )
        )
    assert re.search(case.pattern, output) or re.search(case.pattern, reasons), (output, reasons)
    if case.loaded is not None:
        table = case.table
        first = {
            "customers": "customer_id",
            "products": "product_id",
            "orders": "order_id",
            "promotions": "promotion_id",
            "shelf_prices": "price_id",
        }.get(table, "redemption_id")
        found = sh.one(f"select count(*) from raw.{table} where {first} in (%s, %s)", [key, key + 1])
        assert found == case.loaded
    if load_id:
        # Nothing lost: every data row is loaded or kept with its reason.
        rows_in, loaded, rejected, kept = (
            int(str(v))
            for v in sh.rows(
                "select rows_in, rows_loaded, rows_rejected, "
                "(select count(*) from raw.load_rejects r where r.load_id = l.load_id) "
                "from raw.loads l where load_id = %s",
                [int(load_id[1])],
            )[0]
        )
        assert kept == rejected
        assert loaded + rejected == rows_in or "--all-or-nothing" in case.args


def test_an_empty_field_takes_the_columns_default(sh: Shell, tmp_path: Path) -> None:
    # It used to fail the whole load with Postgres's not-null violation: one empty
    # promo_flag in a file of a million lines, and nothing loaded.
    key = 999_004  # beyond the cases' keys: this test loads its own rows
    path = tmp_path / "empty_defaults.csv"
    path.write_text(
        PROMOTIONS + f"{key},1,1,2026-02-01,2026-02-07,,\n{key + 1},1,1,2026-02-08,2026-02-14,0.25,true\n"
    )
    result = sh("load", "promotions", str(path))
    assert result.exit_code == 0, result.output
    rows = sh.rows(
        "select discount_pct::text, feature_ad from raw.promotions where promotion_id in (%s, %s) "
        "order by promotion_id",
        [key, key + 1],
    )
    assert rows == [("0.0000", False), ("0.2500", True)]


def test_day_month_dates_load_as_the_named_order(sh: Shell, tmp_path: Path) -> None:
    key = 999_001  # beyond the cases' keys: this test loads its own row
    path = tmp_path / "day_month.csv"
    path.write_text(CUSTOMERS + _customer(str(key), date="01/02/2026"))
    result = sh("load", "customers", str(path), "--date-format", "DD/MM/YYYY")
    assert result.exit_code == 0, result.output
    assert str(sh.one("select signup_date from raw.customers where customer_id = %s", [key])) == "2026-02-01"


def test_decimal_commas_load_as_the_numbers_they_write(sh: Shell, tmp_path: Path) -> None:
    key = 999_002  # beyond the cases' keys: this test loads its own row
    path = tmp_path / "decimal_comma.csv"
    path.write_text(
        PRODUCTS.replace(",", ";") + f"{key};Mug;Acme;kitchen;store;1.234,50;0,95;2024-01-01;10\n"
    )
    result = sh("load", "products", str(path), "--delimiter", ";", "--decimal-comma")
    assert result.exit_code == 0, result.output
    row = sh.rows(
        "select list_price::text, unit_cost::text, initial_stock from raw.products where product_id = %s",
        [key],
    )
    assert row == [("1234.50", "0.95", 10)]


def test_thousands_commas_load_as_the_numbers_they_write(sh: Shell, tmp_path: Path) -> None:
    key = 999_003  # beyond the cases' keys: this test loads its own row
    path = tmp_path / "thousands_comma.csv"
    path.write_text(PRODUCTS + f'{key},Mug,Acme,kitchen,store,"1,234.50",0.95,2024-01-01,"12,000"\n')
    result = sh("load", "products", str(path), "--thousands-comma")
    assert result.exit_code == 0, result.output
    row = sh.rows(
        "select list_price::text, unit_cost::text, initial_stock from raw.products where product_id = %s",
        [key],
    )
    assert row == [("1234.50", "0.95", 12000)]


def test_whole_numbers_written_with_zero_decimals_load_as_integers(sh: Shell, tmp_path: Path) -> None:
    # pandas writes an integer column with a blank in it as floats: a promotion's store
    # 1.0 beside one for every store. 1.000 may group thousands, and stays rejected.
    key = 999_010  # beyond the cases' keys: this test loads its own rows
    path = tmp_path / "whole_floats.csv"
    path.write_text(
        PROMOTIONS + f"{key}.0,1.0,1.0,2026-03-01,2026-03-07,0.1,false\n"
        f"{key + 1}.00,1.0,,2026-03-08,2026-03-14,0.2,false\n"
        f"{key + 2}, 1.0 ,1.000,2026-03-15,2026-03-21,0.3,false\n"
        f"{key + 3},1,1.5,2026-03-22,2026-03-28,0.3,false\n"
    )
    result = sh("load", "promotions", str(path))
    assert result.exit_code == 2, result.output
    assert "partial: 2 of 4 rows" in result.output
    rows = sh.rows(
        "select promotion_id, product_id, store_id from raw.promotions where promotion_id between %s and %s "
        "order by promotion_id",
        [key, key + 3],
    )
    assert rows == [(key, 1, 1), (key + 1, 1, None)]
    reasons = sh.rows(
        "select reason from raw.load_rejects where load_id = (select max(load_id) from raw.loads) order by line_no"
    )
    assert [r[0] for r in reasons] == [
        "store_id: expected a whole number (bigint), got '1.000'",
        "store_id: expected a whole number (bigint), got '1.5'",
    ]


def test_the_readme_table_lists_every_kind_with_what_storecast_does() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    rows = dict(re.findall(r"^\| (.+?) \| (.+?) \|$", readme, flags=re.M))
    missing = [c.kind for c in CASES if rows.get(c.kind) != c.does]
    assert not missing, f"README bad-input table lacks or words differently: {missing}"
    assert len(CASES) >= 34
