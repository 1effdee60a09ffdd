"""The CSV loader on good and bad files: nothing is lost, every reject says why."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from pathlib import Path

import pytest

from storecast.database.csv_records import ENCODING_HINT
from storecast.database.load_catalogue import LoadError
from storecast.database.load_ledger import LoadResult, abandon_dead_loads
from storecast.database.loader import load_csv
from storecast.database.sample import SampleData
from storecast.db import Conn

_ids = itertools.count(50_000_000, 1_000)
HEADER = "customer_id,signup_date,region,segment\n"


@pytest.fixture
def base_id(tiny: SampleData) -> int:
    """A block of customer ids no other test uses."""
    return next(_ids)


def _file(tmp_path: Path, data: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _customers(conn: Conn, first: int) -> int:
    row = conn.execute(
        "select count(*) from raw.customers where customer_id between %s and %s", [first, first + 999]
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _rejects(conn: Conn, result: LoadResult) -> list[tuple[int, str, str]]:
    return [
        (int(str(line)), str(raw), str(reason))
        for line, raw, reason in conn.execute(
            "select line_no, raw_line, reason from raw.load_rejects where load_id = %s order by line_no",
            [result.load_id],
        ).fetchall()
    ]


def _assert_nothing_lost(conn: Conn, result: LoadResult) -> None:
    assert result.rows_in == result.rows_loaded + result.rows_rejected or result.status == "rejected"
    logged = conn.execute(
        "select rows_in, rows_loaded, rows_rejected, status from raw.loads where load_id = %s",
        [result.load_id],
    ).fetchone()
    assert logged == (result.rows_in, result.rows_loaded, result.rows_rejected, result.status)
    assert len(_rejects(conn, result)) == result.rows_rejected


def test_a_clean_file_loads_every_row(conn: Conn, tmp_path: Path, base_id: int) -> None:
    rows = "".join(f"{base_id + i},2024-01-0{1 + i % 9},north,household\n" for i in range(20))
    result = load_csv(conn, "customers", _file(tmp_path, HEADER + rows))
    assert (result.status, result.rows_in, result.rows_loaded, result.rows_rejected) == ("loaded", 20, 20, 0)
    assert _customers(conn, base_id) == 20
    _assert_nothing_lost(conn, result)


def test_quoted_newlines_bom_and_optional_columns(conn: Conn, tmp_path: Path, base_id: int) -> None:
    data = (
        b"\xef\xbb\xbf"
        + (
            "customer_id,signup_date,region,segment,age_band\n"
            f'{base_id},2024-01-01,"multi\nline region",business,\n'
            f"{base_id + 1},2024-01-02,south,household,25-34\n"
        ).encode()
    )
    result = load_csv(conn, "customers", _file(tmp_path, data))
    assert result.rows_loaded == 2
    row = conn.execute(
        "select region, age_band, is_loyalty_member from raw.customers where customer_id = %s", [base_id]
    ).fetchone()
    assert row == ("multi\nline region", None, False)  # empty field is NULL; default fills the rest


@pytest.mark.parametrize(
    ("header", "pattern"),
    [
        ("signup_date,region,segment\n", r"missing required columns: customer_id"),
        ("customer_id,signup_date,region,segment,shoe_size\n", r"unknown columns: 'shoe_size'"),
        ("Customer_ID,signup_date,region,segment\n", r"'Customer_ID' should be 'customer_id'"),
        ("customer_id;signup_date;region;segment\n", r"looks ';'-delimited"),
        ("", r"file is empty; expected a header line"),
    ],
    ids=["missing-column", "extra-column", "wrong-case", "wrong-delimiter", "empty-file"],
)
def test_file_level_problems_load_nothing_and_are_recorded(
    conn: Conn, tmp_path: Path, base_id: int, header: str, pattern: str
) -> None:
    body = (
        f"{base_id},2024-01-01,north,household\n".replace(",", ";" if ";" in header else ",")
        if header
        else ""
    )
    path = _file(tmp_path, header + body)
    with pytest.raises(LoadError, match=pattern):
        load_csv(conn, "customers", path)
    assert _customers(conn, base_id) == 0
    row = conn.execute(
        "select status, message from raw.loads where source_file = %s order by load_id desc limit 1",
        [str(path)],
    ).fetchone()
    assert row is not None
    assert row[0] == "failed"
    assert str(path) in str(row[1])


ROW_CASES = [
    ("bad-date", "{id},2024-13-45,north,household", r"signup_date: expected date, got '2024-13-45'"),
    (
        "relative-date",
        "{id},yesterday,north,household",
        r"signup_date: 'yesterday' is relative to the load time",
    ),
    ("bad-integer", "{id}x,2024-01-01,north,household", r"customer_id: expected bigint, got '\d+x'"),
    ("check-constraint", "{id},2024-01-01,north,alien", r"violates customers_segment_check .*segment=alien"),
    ("required-empty", ",2024-01-01,north,household", r"customer_id: a value is required"),
    ("too-few-fields", "{id},2024-01-01,north", r"expected 4 fields, found 3"),
    ("too-many-fields", "{id},2024-01-01,north,household,extra", r"expected 4 fields, found 5"),
]


@pytest.mark.parametrize(("case", "line", "pattern"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_bad_rows_are_rejected_with_their_reason_and_the_rest_load(
    conn: Conn, tmp_path: Path, base_id: int, case: str, line: str, pattern: str
) -> None:
    bad = line.format(id=base_id + 1)
    data = f"{HEADER}{base_id},2024-01-01,north,household\n{bad}\n{base_id + 2},2024-01-03,east,business\n"
    result = load_csv(conn, "customers", _file(tmp_path, data))
    assert (result.status, result.rows_in, result.rows_loaded, result.rows_rejected) == ("partial", 3, 2, 1)
    [(line_no, raw, reason)] = _rejects(conn, result)
    assert (line_no, raw) == (3, bad)
    assert re.search(pattern, reason), reason
    assert _customers(conn, base_id) == 2
    _assert_nothing_lost(conn, result)


def test_a_negative_price_and_an_unknown_product_are_rejected_a_return_loads(
    conn: Conn, tmp_path: Path, tiny: SampleData
) -> None:
    # A line of 0 units is an observed period without a sale, and a negative quantity a
    # return: both load.
    data = (
        "order_id,line_no,product_id,quantity,unit_price\n"
        "1,901,1,1,-2.50\n"
        "1,902,999999,1,2.50\n"
        "1,903,1,2,2.50\n"
        "1,904,1,0,2.50\n"
        "1,905,1,-3,2.50\n"
    )
    result = load_csv(conn, "order_items", _file(tmp_path, data))
    reasons = {line: reason for line, _, reason in _rejects(conn, result)}
    assert reasons == {
        2: "violates order_items_unit_price_check ((unit_price >= (0)::numeric)): unit_price=-2.50; "
        "a price is 0 or more: write a return as a negative quantity at the price it was sold at",
        3: "product_id=999999 not found in raw.products (product_id)",
    }
    assert result.rows_loaded == 3
    row = conn.execute(
        "select discount_amount, promo_flag from raw.order_items where order_id = 1 and line_no = 903"
    ).fetchone()
    assert row is not None
    assert (float(str(row[0])), row[1]) == (0.0, False)
    _assert_nothing_lost(conn, result)


def test_goods_sold_by_weight_load_as_amounts(conn: Conn, tmp_path: Path, tiny: SampleData) -> None:
    # A grocer sells apples by the kilogram: a line's quantity, and a stock count, is an
    # amount to three decimals, kept as written; a fourth decimal is not rounded away.
    # A float's last digits as a program wrote them (0.1 + 0.2) are no decimals of the data.
    data = (
        "order_id,line_no,product_id,quantity,unit_price\n"
        "1,911,1,2.350,2.50\n1,912,1,0.125,2.50\n1,913,1,1.2345,2.50\n1,914,1,0.30000000000000004,2.50\n"
    )
    result = load_csv(conn, "order_items", _file(tmp_path, data))
    reasons = {line: reason for line, _, reason in _rejects(conn, result)}
    assert reasons == {
        4: "quantity: expected at most 3 decimals (numeric(14,3)), got '1.2345'; round it in the file"
    }
    rows = conn.execute(
        "select line_no, quantity from raw.order_items where order_id = 1 and line_no between 911 and 914 order by 1"
    ).fetchall()
    assert rows == [(911, Decimal("2.350")), (912, Decimal("0.125")), (914, Decimal("0.300"))]
    _assert_nothing_lost(conn, result)
    # A count run below zero (a sale booked before its delivery) loads as the system wrote it.
    stock = "snapshot_date,product_id,store_id,on_hand\n2026-01-05,1,1,12.5\n2026-01-06,1,1,-3\n"
    counted = load_csv(conn, "inventory_snapshots", _file(tmp_path, stock), mode="upsert")
    assert counted.rows_loaded == 2
    assert conn.execute(
        "select array_agg(on_hand order by snapshot_date) from raw.inventory_snapshots "
        "where snapshot_date in ('2026-01-05', '2026-01-06') and product_id = 1 and store_id = 1"
    ).fetchone() == ([Decimal("12.500"), Decimal("-3.000")],)


def test_duplicate_keys_in_the_file_keep_the_first_and_reject_the_rest(
    conn: Conn, tmp_path: Path, base_id: int
) -> None:
    data = f"{HEADER}{base_id},2024-01-01,north,household\n{base_id},2024-02-02,south,business\n"
    result = load_csv(conn, "customers", _file(tmp_path, data))
    [(line, _, reason)] = _rejects(conn, result)
    assert (line, reason) == (
        3,
        f"duplicate (customer_id)=({base_id}) within the file (primary key): first seen on line 2",
    )
    region = conn.execute("select region from raw.customers where customer_id = %s", [base_id]).fetchone()
    assert region == ("north",)


def test_non_utf8_bytes_are_rejected_verbatim(conn: Conn, tmp_path: Path, base_id: int) -> None:
    data = HEADER.encode() + f"{base_id},2024-01-01,M\xfcnchen,household\n".encode("latin-1")
    result = load_csv(conn, "customers", _file(tmp_path, data))
    [(line, raw, reason)] = _rejects(conn, result)
    assert (line, raw) == (2, f"{base_id},2024-01-01,M\\xfcnchen,household")
    position = len(f"{base_id},2024-01-01,M") + 1
    assert reason == f"not valid UTF-8: byte 0xfc at position {position} of line 2; {ENCODING_HINT}"
    assert result.rows_loaded == 0
    # Named as what it is, the same bytes load, and the file's text is stored as UTF-8.
    named = load_csv(conn, "customers", _file(tmp_path, data), encoding="latin-1")
    assert (named.rows_loaded, named.rows_rejected) == (1, 0)
    assert conn.execute("select region from raw.customers where customer_id = %s", [base_id]).fetchone() == (
        "M\u00fcnchen",
    )


def test_a_huge_field_is_rejected_and_kept(conn: Conn, tmp_path: Path, base_id: int) -> None:
    huge = "x" * 2_000_000
    data = f"{HEADER}{base_id},2024-01-01,{huge},household\n{base_id + 1},2024-01-01,west,household\n"
    result = load_csv(conn, "customers", _file(tmp_path, data))
    [(line, raw, reason)] = _rejects(conn, result)
    assert line == 2
    assert len(raw) > 2_000_000
    assert reason == "field 3 is 2,000,000 characters; the limit is 1,000,000"
    assert result.rows_loaded == 1


def test_unknown_customer_on_an_order_is_rejected(
    conn: Conn, tmp_path: Path, tiny: SampleData, base_id: int
) -> None:
    data = f"order_id,customer_id,store_id,ordered_at,channel\n{base_id},{base_id},1,2026-01-01 10:00:00+00,store\n"
    result = load_csv(conn, "orders", _file(tmp_path, data))
    [(_, _, reason)] = _rejects(conn, result)
    assert reason == f"customer_id={base_id} not found in raw.customers (customer_id)"


def test_append_rejects_existing_keys_and_upsert_updates_them(
    conn: Conn, tmp_path: Path, base_id: int
) -> None:
    load_csv(conn, "customers", _file(tmp_path, f"{HEADER}{base_id},2024-01-01,north,household\n", "a.csv"))
    again = _file(tmp_path, f"{HEADER}{base_id},2024-01-01,south,household\n", "b.csv")
    appended = load_csv(conn, "customers", again)
    [(_, _, reason)] = _rejects(conn, appended)
    assert "already exists in raw.customers; use --mode upsert" in reason
    upserted = load_csv(conn, "customers", again, mode="upsert")
    assert (upserted.status, upserted.rows_loaded) == ("loaded", 1)
    assert conn.execute("select region from raw.customers where customer_id = %s", [base_id]).fetchone() == (
        "south",
    )


def test_upsert_of_a_table_that_is_all_key_counts_the_rows_already_there_as_loaded(
    conn: Conn, tmp_path: Path
) -> None:
    # A calendar reloaded whole each month: its rows are already there as written, and the
    # load says so rather than "0 of 2 loaded, 0 rejected".
    data = "event_date,event\n1990-04-15,loader test easter\n1990-12-25,loader test christmas\n"
    try:
        first = load_csv(conn, "calendar_events", _file(tmp_path, data, "a.csv"), mode="upsert")
        again = load_csv(
            conn,
            "calendar_events",
            _file(tmp_path, data + "1991-03-31,loader test easter\n", "b.csv"),
            mode="upsert",
        )
        assert (first.status, first.rows_loaded) == ("loaded", 2)
        assert (again.status, again.rows_loaded, again.rows_rejected) == ("loaded", 3, 0)
        held = conn.execute(
            "select count(*) from raw.calendar_events where event like 'loader test %'"
        ).fetchone()
        assert held == (3,)
    finally:
        conn.execute("delete from raw.calendar_events where event like 'loader test %'")


def test_all_or_nothing_loads_nothing_but_keeps_the_rejects(conn: Conn, tmp_path: Path, base_id: int) -> None:
    data = f"{HEADER}{base_id},2024-01-01,north,household\n{base_id + 1},not-a-date,north,household\n"
    result = load_csv(conn, "customers", _file(tmp_path, data), all_or_nothing=True)
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("rejected", 0, 1)
    assert _customers(conn, base_id) == 0
    assert [line for line, _, _ in _rejects(conn, result)] == [3]
    _assert_nothing_lost(conn, result)


def test_an_error_midway_rolls_the_whole_load_back(conn: Conn, tmp_path: Path, base_id: int) -> None:
    # A trigger the loader cannot foresee fails on the last row, after the others were inserted.
    conn.execute(
        """
        create function raw.refuse_atlantis() returns trigger language plpgsql as $$
        begin
            if new.region = 'atlantis' then raise exception 'no customers from atlantis'; end if;
            return new;
        end $$;
        create trigger refuse_atlantis before insert on raw.customers
            for each row execute function raw.refuse_atlantis();
        """
    )
    try:
        rows = "".join(f"{base_id + i},2024-01-01,north,household\n" for i in range(50))
        path = _file(tmp_path, f"{HEADER}{rows}{base_id + 50},2024-01-01,atlantis,household\n")
        with pytest.raises(LoadError, match=r"failed and was rolled back: .*no customers from atlantis"):
            load_csv(conn, "customers", path)
    finally:
        conn.execute("drop trigger refuse_atlantis on raw.customers; drop function raw.refuse_atlantis()")
    assert _customers(conn, base_id) == 0
    row = conn.execute(
        "select status, rows_in from raw.loads where source_file = %s order by load_id desc limit 1",
        [str(path)],
    ).fetchone()
    assert row == ("failed", 51)


def test_unknown_table_names_the_loadable_ones(conn: Conn, tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"unknown table 'orderz'; loadable raw tables are: .*orders"):
        load_csv(conn, "orderz", _file(tmp_path, HEADER))
    with pytest.raises(LoadError, match="unknown table 'loads'"):
        load_csv(conn, "loads", _file(tmp_path, HEADER))


def test_a_large_file_streams_through_copy(conn: Conn, tmp_path: Path) -> None:
    first = 60_000_000
    n = 100_000
    rows = "".join(f"{first + i},2024-01-01,north,household\n" for i in range(n))
    seen: list[int] = []
    result = load_csv(
        conn, "customers", _file(tmp_path, HEADER + rows), progress=lambda done, total: seen.append(done)
    )
    assert result.rows_loaded == n
    assert seen[-1] == (tmp_path / "in.csv").stat().st_size
    assert len(seen) > 2


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ("12", "bigint"),
        ("12x", "bigint"),
        ("2024-02-30", "date"),
        ("2024-02-29", "date"),
        ("1e20", "numeric(12,2)"),
        ("t", "boolean"),
    ],
)
def test_postgres_15_fallback_agrees_with_pg_input_error_info(conn: Conn, value: str, type_: str) -> None:
    # PostgreSQL 15 has no pg_input_error_info; the loader then tries the cast in
    # PL/pgSQL. Both must reach the same verdict on the same server.
    from psycopg import sql

    from storecast.database.load_checks import input_error_sql as _input_error_sql

    modern = _input_error_sql(conn, 180000)(sql.Literal(value), type_)
    fallback = _input_error_sql(conn, 150000)(sql.Literal(value), type_)
    row = conn.execute(sql.SQL("select {}, {}").format(modern, fallback)).fetchone()
    assert row is not None
    assert (row[0] is None) == (row[1] is None)
    if row[0] is not None:
        assert row[0] == row[1]


def test_exclusion_constraints_are_checked_over_the_file_and_the_table(conn: Conn, tmp_path: Path) -> None:
    # No raw table of storecast has one; the loader reads them from the catalog like the rest.
    conn.execute("drop table if exists raw.test_bookings")
    conn.execute(
        "create table raw.test_bookings (booking_id int primary key, room int not null, nights int4range not null,"
        " exclude using gist (nights with &&))"
    )
    try:
        conn.execute("insert into raw.test_bookings values (1, 1, '[1,5)')")
        data = 'booking_id,room,nights\n2,1,"[10,12)"\n3,1,"[11,14)"\n4,1,"[3,4)"\n5,1,"[20,21)"\n'
        result = load_csv(conn, "test_bookings", _file(tmp_path, data))
        rejects = {line: reason for line, _, reason in _rejects(conn, result)}
        assert rejects == {
            3: "conflicts with line 2 under exclusion constraint test_bookings_nights_excl",
            4: "conflicts with a row already in raw.test_bookings under exclusion constraint test_bookings_nights_excl",
        }
        assert result.rows_loaded == 2
    finally:
        conn.execute("drop table raw.test_bookings")


def test_upsert_rejects_a_unique_value_held_by_another_row_but_lets_a_row_keep_its_own(
    conn: Conn, tmp_path: Path, tiny: SampleData
) -> None:
    # Rows of the session's sample, written back as they are (nothing other tests read changes).
    (first, first_impression, at), (second, second_impression, _) = conn.execute(
        "select redemption_id, impression_id, redeemed_at from raw.redemptions order by redemption_id limit 2"
    ).fetchall()
    header = "redemption_id,impression_id,redeemed_at\n"
    own = load_csv(
        conn, "redemptions", _file(tmp_path, f"{header}{first},{first_impression},{at}\n"), mode="upsert"
    )
    assert (own.rows_loaded, own.rows_rejected) == (1, 0)
    result = load_csv(
        conn, "redemptions", _file(tmp_path, f"{header}{second},{first_impression},{at}\n"), mode="upsert"
    )
    [(line, _, reason)] = _rejects(conn, result)
    assert line == 2
    assert reason == (
        f"(impression_id)=({first_impression}) already exists in raw.redemptions "
        "(unique constraint redemptions_impression_id_key) on another row"
    )
    kept = conn.execute(
        "select impression_id from raw.redemptions where redemption_id = %s", [second]
    ).fetchone()
    assert kept == (second_impression,)


def test_a_load_row_is_committed_before_the_load_and_a_dead_one_is_marked_abandoned(
    conn: Conn, tmp_path: Path, base_id: int
) -> None:
    # A load whose process died: its row says running, its backend is gone.
    row = conn.execute(
        "insert into raw.loads (table_name, source_file, mode, status, backend_pid, backend_started_at)"
        " values ('raw.customers', 'killed.csv', 'append', 'running', 2147483647, now()) returning load_id"
    ).fetchone()
    assert row is not None
    load_csv(conn, "customers", _file(tmp_path, f"{HEADER}{base_id},2024-01-01,north,household\n"))
    status, message = conn.execute("select status, message from raw.loads where load_id = %s", row).fetchone()  # type: ignore[misc]
    assert status == "abandoned"
    assert "died before finishing" in str(message)
    # A load still running (this very session stands for it) is left alone.
    live = conn.execute(
        "insert into raw.loads (table_name, source_file, mode, status, backend_pid, backend_started_at)"
        " select 'raw.customers', 'live.csv', 'append', 'running', pid, backend_start from pg_stat_activity"
        " where pid = pg_backend_pid() returning load_id"
    ).fetchone()
    assert live is not None
    abandon_dead_loads(conn)
    assert conn.execute("select status from raw.loads where load_id = %s", live).fetchone() == ("running",)
    conn.execute("update raw.loads set status = 'failed' where load_id = %s", live)
