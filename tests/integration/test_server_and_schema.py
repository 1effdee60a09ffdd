"""The embedded server, its settings, and an idempotent, fully commented raw schema."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from storecast.database import server
from storecast.database.schema import apply_schema, latest_version, server_info
from storecast.db import Conn
from storecast.settings import Settings, embedded_status, get_settings, process_state


def test_server_offers_postgres_15_plus_with_pgvector(conn: Conn) -> None:
    info = server_info(conn)
    assert info.server_version_num >= 150000
    assert info.pgvector_version is not None
    major, minor = (int(p) for p in info.pgvector_version.split(".")[:2])
    assert (major, minor) >= (0, 6)
    assert info.schema_version == latest_version()


def test_analytics_settings_are_applied(conn: Conn) -> None:
    def setting(name: str) -> str:
        row = conn.execute("select current_setting(%s)", [name]).fetchone()
        assert row is not None
        return str(row[0])

    assert setting("maintenance_work_mem") == server.ANALYTICS_SETTINGS["maintenance_work_mem"]
    assert setting("max_wal_size") == server.ANALYTICS_SETTINGS["max_wal_size"]
    assert setting("shared_buffers") == server.ANALYTICS_SETTINGS["shared_buffers"]  # needed the restart
    assert setting("wal_level") == server.ANALYTICS_SETTINGS["wal_level"]  # so did this


def test_server_listens_only_on_a_socket_in_its_data_directory(pg_settings: Settings, conn: Conn) -> None:
    status = embedded_status(pg_settings)
    assert status.socket_dir == pg_settings.pgdata
    row = conn.execute("select current_setting('listen_addresses')").fetchone()
    assert row == ("",)


def test_init_is_idempotent(conn: Conn) -> None:
    def shape() -> list[tuple[object, ...]]:
        return conn.execute(
            "select table_schema, table_name, count(*) from information_schema.columns "
            "where table_schema in ('raw', 'ml', 'scores') group by 1, 2 order by 1, 2"
        ).fetchall()

    before = shape()
    assert apply_schema(conn) == latest_version()
    assert apply_schema(conn) == latest_version()
    assert shape() == before
    assert conn.execute("select count(*) from raw.schema_versions").fetchone() == (latest_version(),)


def test_every_raw_table_and_column_has_a_comment(conn: Conn) -> None:
    missing = conn.execute(
        """
        select c.relname || coalesce('.' || a.attname, '')
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'raw'
        left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where c.relkind = 'r'
          and (obj_description(c.oid, 'pg_class') is null
               or (a.attname is not null and col_description(c.oid, a.attnum) is null))
        """
    ).fetchall()
    assert missing == []
    tables = conn.execute("select count(*) from pg_tables where schemaname = 'raw'").fetchone()
    assert tables is not None
    assert int(str(tables[0])) >= 13


def test_stop_then_start_again_keeps_the_data(server_home: Callable[[str], Path]) -> None:
    settings = get_settings({"STORECAST_HOME": str(server_home("stop_start"))})
    server.start(settings)
    try:
        with psycopg.connect(settings.conninfo, autocommit=True) as c:
            c.execute("create table keep_me (x int)")
            c.execute("insert into keep_me values (42)")
        assert server.stop(settings)
        assert not embedded_status(settings).running
        assert server.stop(settings) is False
        server.start(settings)
        with psycopg.connect(settings.conninfo, autocommit=True) as c:
            assert c.execute("select x from keep_me").fetchone() == (42,)
    finally:
        server.stop(settings)


def test_starting_an_external_configuration_is_refused() -> None:
    with pytest.raises(server.ServerError, match="external server"):
        server.start(get_settings({"STORECAST_DATABASE_URL": "postgresql://u@h/db"}))


#: Creates a system user at an agreed moment, so that two processes do it at once.
CREATE_USER_AT = """
import sys, time
from storecast.database import server
time.sleep(max(float(sys.argv[2]) - time.time(), 0))
print(server.ensure_system_user(sys.argv[1]), flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does the embedded server run as its own user")
def test_two_first_starts_at_once_create_one_system_user() -> None:
    # Unguarded, both processes' useradd succeeded with different uids (4 of 4 tries), and
    # a server's folder went to the uid that did not last.
    name = f"storecast_probe_{os.getpid()}"
    at = str(time.time() + 3)
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", CREATE_USER_AT, name, at], stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        uids = [int(run.communicate(timeout=60)[0]) for run in runs]
        assert uids == [pwd.getpwnam(name).pw_uid] * 2
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def test_version_3_score_tables_are_moved_into_partitions(conn: Conn) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute("drop table scores.sell_through cascade")
        conn.execute(
            "create table scores.sell_through (as_of_date date not null, product_id integer not null, "
            "probability double precision not null, model_name text not null, model_version integer not null, "
            "run_id bigint not null, scored_at timestamptz not null default now(), "
            "primary key (as_of_date, product_id))"
        )
        conn.execute(
            "insert into scores.sell_through values ('2026-01-05', 1, 0.5, 'sell_through', 1, 7, now()), "
            "('2026-01-05', 2, 0.25, 'sell_through', 1, 7, now()), ('2026-01-06', 1, 0.75, 'sell_through', 2, 8, now())"
        )
        assert apply_schema(conn) == latest_version()
        kind = conn.execute(
            "select relkind from pg_class where oid = 'scores.sell_through'::regclass"
        ).fetchone()
        assert kind == ("p",)
        partitions = conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'scores.sell_through'::regclass order by 1"
        ).fetchall()
        assert partitions == [("sell_through_20260105",), ("sell_through_20260106",)]
        rows = conn.execute(
            "select as_of_date::text, product_id, probability, run_id from scores.sell_through order by 1, 2"
        ).fetchall()
        assert rows == [("2026-01-05", 1, 0.5, 7), ("2026-01-05", 2, 0.25, 7), ("2026-01-06", 1, 0.75, 8)]
        assert conn.execute("select to_regclass('scores.sell_through_v3')").fetchone() == (None,)


def _check(conn: Conn, table: str, name: str) -> object:
    """The definition of a CHECK constraint of a raw table, None when it is not there."""
    row = conn.execute(
        "select pg_get_constraintdef(oid) from pg_constraint where conrelid = %s::regclass and conname = %s",
        [f"raw.{table}", name],
    ).fetchone()
    return None if row is None else row[0]


def test_version_18_stock_counts_below_zero_load_after_init(conn: Conn) -> None:
    # Up to version 17 a stock count was at least 0; a count run below zero now loads.
    with conn.transaction(force_rollback=True):
        conn.execute(
            # Not validated: other tests on this database may have loaded counts below zero.
            "alter table raw.inventory_snapshots add constraint inventory_snapshots_on_hand_check "
            "check (on_hand >= 0.0) not valid"
        )
        assert _check(conn, "inventory_snapshots", "inventory_snapshots_on_hand_check") == (
            "CHECK ((on_hand >= 0.0)) NOT VALID"
        )
        assert apply_schema(conn) == latest_version()
        assert _check(conn, "inventory_snapshots", "inventory_snapshots_on_hand_check") is None


def test_version_9_order_lines_take_zero_units_and_returns_after_init(conn: Conn) -> None:
    # Up to version 9 a line had to hold at least one unit; a line of 0 units now records
    # a period on sale without a sale (a scanner panel's observed zero), and since version
    # 17 a negative quantity a return: no check on the quantity is left.
    with conn.transaction(force_rollback=True):
        conn.execute("alter table raw.order_items drop constraint if exists order_items_quantity_check")
        conn.execute(
            # Not validated: other tests on this database may have loaded lines of 0 units.
            "alter table raw.order_items add constraint order_items_quantity_check check (quantity > 0) not valid"
        )
        assert (
            _check(conn, "order_items", "order_items_quantity_check")
            == "CHECK ((quantity > (0)::numeric)) NOT VALID"
        )
        assert apply_schema(conn) == latest_version()
        assert _check(conn, "order_items", "order_items_quantity_check") is None
        # Applied again, nothing comes back.
        assert apply_schema(conn) == latest_version()
        assert _check(conn, "order_items", "order_items_quantity_check") is None


def test_verbs_run_schema_ddl_only_when_the_database_is_behind(pg_settings: Settings) -> None:
    from storecast.database.schema import ensure_schema, latest_version
    from tests.integration.shell import fresh_database

    with psycopg.connect(fresh_database(pg_settings, "schema_ensure"), autocommit=True) as conn:
        assert ensure_schema(conn) == latest_version()  # a new database is migrated
        conn.execute("comment on table raw.loads is 'touched'")

        def comment() -> object:
            row = conn.execute("select obj_description('raw.loads'::regclass)").fetchone()
            assert row is not None
            return row[0]

        assert ensure_schema(conn) == latest_version()
        assert comment() == "touched"  # up to date: init.sql did not run
        conn.execute("delete from raw.schema_versions where version = %s", [latest_version()])
        assert ensure_schema(conn) == latest_version()
        assert comment() != "touched"  # behind: init.sql ran again


#: Starts the embedded server as the child of a process that never reaps it (a Linux
#: "subreaper"), as a container's init may not for minutes, then waits to be killed.
UNREAPING_PARENT = """
import ctypes, sys, time
from storecast.database import server
from storecast.settings import get_settings
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
print(server.start(get_settings({"STORECAST_HOME": sys.argv[1]})).pid, flush=True)
time.sleep(600)
"""


def test_a_server_killed_outright_and_left_a_zombie_starts_again(server_home: Callable[[str], Path]) -> None:
    home = server_home("zombie")
    settings = get_settings({"STORECAST_HOME": str(home)})
    parent = subprocess.Popen(
        [sys.executable, "-c", UNREAPING_PARENT, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        postmaster = int(parent.stdout.readline())
        with psycopg.connect(settings.conninfo, autocommit=True) as c:
            c.execute("create table keep_me (x int)")
            c.execute("insert into keep_me values (42)")
        os.kill(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while process_state(postmaster) != "Z":
            assert time.monotonic() < deadline, process_state(postmaster)
            time.sleep(0.05)
        # A zombie answers a signal but serves nothing: not running, and the server starts
        # although both lock files still name it.
        assert not embedded_status(settings).running
        server.start(settings)
        with psycopg.connect(settings.conninfo, autocommit=True) as c:
            assert c.execute("select x from keep_me").fetchone() == (42,)
    finally:
        parent.kill()
        parent.wait()
        server.stop(settings)


def test_version_10_integer_keys_become_bigint_after_init(conn: Conn) -> None:
    # Up to version 10 product, store, promotion and offer keys were integer: a barcode
    # (EAN-13) did not fit. dbt's staging views read the keys, so init drops them for the
    # next build to create again.
    def key_types() -> set[object]:
        rows = conn.execute(
            "select data_type from information_schema.columns where (table_schema, table_name, column_name) in "
            "(('raw', 'promotions', 'store_id'), ('raw', 'products', 'product_id'), "
            "('raw', 'order_items', 'product_id'), ('scores', 'demand_forecast', 'product_id'), "
            "('features', 'keys_before_v11', 'store_id'))"
        ).fetchall()
        return {r[0] for r in rows}

    with conn.transaction(force_rollback=True):
        # The keys as they were: views on them must go first, as init's own migration does.
        views = conn.execute("select table_name from information_schema.views where table_schema = 'staging'")
        for (view,) in views.fetchall():
            conn.execute(sql.SQL("drop view if exists staging.{} cascade").format(sql.Identifier(str(view))))
        for table, column in [
            ("order_items", "product_id"),
            ("products", "product_id"),
            ("promotions", "store_id"),
        ]:
            conn.execute(
                sql.SQL("alter table raw.{} alter column {} type integer").format(
                    sql.Identifier(table), sql.Identifier(column)
                )
            )
        conn.execute("alter table scores.demand_forecast alter column product_id type integer")
        # A feature table built before (an incremental build would only append to it).
        conn.execute("create schema if not exists features")
        conn.execute("create table features.keys_before_v11 (product_id integer, store_id integer)")
        conn.execute("create schema if not exists staging")
        conn.execute("create view staging.keys_before_v11 as select product_id from raw.products")
        assert key_types() == {"integer"}
        assert apply_schema(conn) == latest_version()
        assert key_types() == {"bigint"}
        assert conn.execute("select to_regclass('staging.keys_before_v11')").fetchone() == (None,)


def test_version_12_required_descriptions_may_be_null_after_init(pg_settings: Settings) -> None:
    # Up to version 12 a product's brand, platform, cost, launch date and initial stock,
    # a store's region, format and opening date, a customer's signup date, region and
    # segment, and an order's store and channel were required: a retailer without them had
    # to make them up.
    from tests.integration.shell import fresh_database

    described = (
        ("products", "brand"),
        ("products", "platform"),
        ("products", "unit_cost"),
        ("products", "launched_at"),
        ("products", "initial_stock"),
        ("stores", "region"),
        ("stores", "format"),
        ("stores", "opened_at"),
        ("customers", "signup_date"),
        ("customers", "region"),
        ("customers", "segment"),
        ("orders", "store_id"),
        ("orders", "channel"),
    )
    with psycopg.connect(fresh_database(pg_settings, "schema_v12"), autocommit=True) as conn:

        def nullable() -> set[object]:
            rows = conn.execute(
                "select is_nullable from information_schema.columns where table_schema = 'raw' "
                "and (table_name, column_name) in (select * from unnest(%s::text[], %s::text[]))",
                [[t for t, _ in described], [c for _, c in described]],
            ).fetchall()
            assert len(rows) == len(described)
            return {r[0] for r in rows}

        apply_schema(conn)
        for table, column in described:
            conn.execute(
                sql.SQL("alter table raw.{} alter column {} set not null").format(
                    sql.Identifier(table), sql.Identifier(column)
                )
            )
        assert nullable() == {"NO"}
        assert apply_schema(conn) == latest_version()
        assert nullable() == {"YES"}


def test_version_13_counts_become_amounts_after_init(pg_settings: Settings) -> None:
    # Up to version 13 a line's quantity and a stock count were whole numbers: fruit sold
    # by the kilogram could not be loaded. The rows already loaded keep their values, and
    # dbt's staging views, which read the columns, go for the next build to create again.
    from tests.integration.shell import fresh_database

    with psycopg.connect(fresh_database(pg_settings, "schema_v13"), autocommit=True) as conn:

        def types() -> set[object]:
            rows = conn.execute(
                "select data_type from information_schema.columns where table_schema = 'raw' "
                "and (table_name, column_name) in (('order_items', 'quantity'), ('inventory_snapshots', 'on_hand'))"
            ).fetchall()
            return {r[0] for r in rows}

        apply_schema(conn)
        conn.execute("alter table raw.order_items alter column quantity type integer")
        conn.execute("alter table raw.inventory_snapshots alter column on_hand type integer")
        conn.execute(
            "insert into raw.products (product_id, title, category, list_price) values (1, 'Apples', 'fruit', 2)"
        )
        conn.execute("insert into raw.stores (store_id, store_name) values (1, 'Store 1')")
        conn.execute("insert into raw.orders (order_id, store_id, ordered_at) values (1, 1, '2026-01-05')")
        conn.execute(
            "insert into raw.order_items (order_id, line_no, product_id, quantity, unit_price) values (1, 1, 1, 3, 2)"
        )
        conn.execute("insert into raw.inventory_snapshots values ('2026-01-05', 1, 1, 12)")
        conn.execute("create schema if not exists staging")
        conn.execute("create view staging.quantities_before_v14 as select quantity from raw.order_items")
        assert types() == {"integer"}
        assert apply_schema(conn) == latest_version()
        assert types() == {"numeric"}
        assert conn.execute(
            "select quantity, on_hand from raw.order_items, raw.inventory_snapshots"
        ).fetchone() == (
            Decimal("3.000"),
            Decimal("12.000"),
        )
        assert conn.execute("select to_regclass('staging.quantities_before_v14')").fetchone() == (None,)
        # An amount loads now, to three decimals, and a return of one.
        conn.execute(
            "insert into raw.order_items (order_id, line_no, product_id, quantity, unit_price) "
            "values (1, 2, 1, 2.35, 2), (1, 3, 1, -1.2, 2)"
        )


def test_version_14_promotions_without_a_price_cut_and_products_without_a_list_price_after_init(
    pg_settings: Settings,
) -> None:
    # Up to version 14 a promotion needed a discount above 0 (a feature ad or a display
    # alone had to be given a made-up one) and a product a list price (a scanner panel has
    # none). Rows already loaded keep their values.
    from tests.integration.shell import fresh_database

    with psycopg.connect(fresh_database(pg_settings, "schema_v14"), autocommit=True) as conn:

        def state() -> tuple[object, ...]:
            row = conn.execute(
                "select pg_get_constraintdef(c.oid), "
                "(select column_default from information_schema.columns where table_schema = 'raw' "
                "and table_name = 'promotions' and column_name = 'discount_pct'), "
                "(select is_nullable from information_schema.columns where table_schema = 'raw' "
                "and table_name = 'products' and column_name = 'list_price') "
                "from pg_constraint c where c.conrelid = 'raw.promotions'::regclass "
                "and c.conname = 'promotions_discount_pct_check'"
            ).fetchone()
            assert row is not None
            return tuple(row)

        apply_schema(conn)
        conn.execute("alter table raw.promotions drop constraint promotions_discount_pct_check")
        conn.execute(
            "alter table raw.promotions add constraint promotions_discount_pct_check "
            "check (discount_pct > 0 and discount_pct < 1)"
        )
        conn.execute("alter table raw.promotions alter column discount_pct drop default")
        conn.execute("alter table raw.products alter column list_price set not null")
        conn.execute(
            "insert into raw.products (product_id, title, category, list_price) values (1, 'Tea', 'drinks', 2)"
        )
        conn.execute(
            "insert into raw.promotions (promotion_id, product_id, start_date, end_date, discount_pct) "
            "values (1, 1, '2026-01-05', '2026-01-11', 0.2)"
        )
        assert state()[1:] == (None, "NO")
        assert apply_schema(conn) == latest_version()
        after = state()
        assert after[0] == "CHECK (((discount_pct >= (0)::numeric) AND (discount_pct < (1)::numeric)))"
        assert after[1:] == ("0", "YES")
        # Applied again, it stands as it is; the promotion loaded before keeps its discount.
        assert apply_schema(conn) == latest_version()
        assert state() == after
        assert conn.execute("select discount_pct from raw.promotions").fetchone() == (Decimal("0.2000"),)
        conn.execute("insert into raw.products (product_id, title, category) values (2, 'Coffee', 'drinks')")
        conn.execute(
            "insert into raw.promotions (promotion_id, product_id, start_date, end_date, feature_ad) "
            "values (2, 2, '2026-01-05', '2026-01-11', true)"
        )
        assert conn.execute("select discount_pct from raw.promotions where promotion_id = 2").fetchone() == (
            Decimal("0.0000"),
        )
