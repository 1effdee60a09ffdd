"""Incremental builds against full ones: the feature tables after data arrives, compared row by row.

Loads the sample retailer (or the promotion panel) into a throwaway embedded server,
moves the last ``--days`` of orders, order lines, impressions, redemptions and stock
counts aside, builds from scratch, puts them back and builds again incrementally (as the
daily or weekly job would), keeps a copy of every feature table, then builds from
scratch once more and compares the two: keys found in one only, and for the keys in
both, every column (numbers to 1e-9 relative). A difference is a fault of an
incremental rule; the as-of dates of keys in one table only are printed to find it.
With ``--scored`` the first build is followed by ``storecast run`` (train and score), so
that its scoring date is a date scored before, which both builds keep in the tables its
backtests read (not in the offer candidates: scoring reads the scoring date's only).

    python -m benchmarks.incremental_parity [--days N] [--shape S ...] [--panel] [--scored] [--var NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, timedelta

import psycopg
from typer.testing import CliRunner

from benchmarks.throwaway import throwaway_server
from benchmarks.weekly_demand import _load_panel
from storecast.cli import app
from storecast.db import Conn, relation_columns

#: Feature table -> its key columns.
KEYS: dict[str, list[str]] = {
    "as_of_dates": ["as_of_date"],
    "customer_features": ["customer_id", "as_of_date"],
    "offer_features": ["offer_id", "as_of_date"],
    "customer_offer_features": ["impression_id", "as_of_date"],
    "customer_offer_candidates": ["customer_id", "offer_id", "as_of_date"],
    "item_features": ["product_id", "as_of_date"],
    "demand_stock_outs": ["product_id", "store_id", "period_start"],
    "demand_history": ["product_id", "store_id", "as_of_date"],
    "demand_features": ["product_id", "store_id", "as_of_date", "horizon"],
}
#: Raw rows that arrive after the cut, in an order their foreign keys can be deleted in.
LATER: dict[str, str] = {
    "redemptions": "redeemed_at >= %(cut)s or order_id in (select order_id from raw.orders where ordered_at >= %(cut)s)"
    " or impression_id in (select impression_id from raw.impressions where shown_at >= %(cut)s)",
    "impressions": "shown_at >= %(cut)s",
    "order_items": "order_id in (select order_id from raw.orders where ordered_at >= %(cut)s)",
    "orders": "ordered_at >= %(cut)s",
    "inventory_snapshots": "snapshot_date >= %(cut)s",
}
#: Columns that say when a row was built, not what it holds.
BUILD_STAMPS = {"observed_until"}
NUMBERS = {"double precision", "numeric", "real"}


def _storecast(runner: CliRunner, env: dict[str, str], *args: str) -> None:
    result = runner.invoke(app, list(args), env=env)
    print(f"  storecast {' '.join(args)}: exit {result.exit_code}")
    if result.exit_code:
        raise SystemExit(result.output[-3000:])


def _compare(conn: Conn, table: str, keys: list[str]) -> None:
    """Print the keys in one build only and the columns that differ on the keys in both."""
    full, incremental = f"features.{table}", f"public.incremental_{table}"
    on = " and ".join(f"f.{k} = i.{k}" for k in keys)
    only_full, only_incremental, both = conn.execute(
        f"select count(*) filter (where i.{keys[0]} is null), count(*) filter (where f.{keys[0]} is null), "
        f"count(*) filter (where f.{keys[0]} is not null and i.{keys[0]} is not null) "
        f"from {full} f full join {incremental} i on {on}"
    ).fetchone() or (0, 0, 0)
    print(
        f"{table:26} in both {both:>9,}  full only {only_full:>7,}  incremental only {only_incremental:>7,}"
    )
    if only_incremental and "as_of_date" in keys:
        dates = conn.execute(
            f"select i.as_of_date, count(*) from {full} f right join {incremental} i on {on} "
            f"where f.{keys[0]} is null group by 1 order by 1 limit 8"
        ).fetchall()
        print(f"    incremental only, by as-of date: {', '.join(f'{d} ({n:,})' for d, n in dates)}")
    compared = {
        column: (
            f"(f.{column} is null) <> (i.{column} is null) "
            f"or abs(f.{column} - i.{column}) > 1e-9 * greatest(1, abs(f.{column}))"
            if kind in NUMBERS
            else f"f.{column}::text is distinct from i.{column}::text"
        )
        for column, kind in relation_columns(conn, full).items()
        if column not in keys and column not in BUILD_STAMPS
    }
    if not compared:
        return
    # Every column's differences counted in one pass over the join.
    counts = (
        conn.execute(
            "select "
            + ", ".join(f"count(*) filter (where {differs})" for differs in compared.values())
            + f" from {full} f join {incremental} i on {on}"
        ).fetchone()
        or ()
    )
    for column, differing in zip(compared, counts, strict=True):
        if differing:
            print(f"    {column} differs on {differing:,} rows")


def main(argv: Sequence[str] | None = None) -> None:
    """Build, add the data held back, build incrementally and from scratch, and compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21, help="days of data held back from the first build")
    parser.add_argument(
        "--shape", action="append", default=[], help="a sample shape (storecast sample --shape)"
    )
    parser.add_argument("--panel", action="store_true", help="the promotion panel instead of the sample")
    parser.add_argument(
        "--scored",
        action="store_true",
        help="score the first build's date (storecast run) before adding the data",
    )
    parser.add_argument("--var", action="append", default=[], help="a setting, NAME=VALUE")
    args = parser.parse_args(argv)
    settings_args = [a for v in args.var for a in ("--var", v)]
    with throwaway_server() as (settings, env, folder):
        runner = CliRunner()
        if args.panel:
            _load_panel(runner, env, folder)
        else:
            _storecast(
                runner, env, "sample", "--scale", "tiny", *[a for s in args.shape for a in ("--shape", s)]
            )
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            row = conn.execute("select max(ordered_at)::date from raw.orders").fetchone()
            assert row is not None
            assert isinstance(row[0], date), "no orders loaded"
            cut = row[0] - timedelta(days=args.days)
            print(f"  data held back from {cut} (the last {args.days} days)")
            for table, later in LATER.items():
                conn.execute(
                    f"create table public.later_{table} as select * from raw.{table} where {later}",
                    {"cut": cut},
                )
                conn.execute(f"delete from raw.{table} where {later}", {"cut": cut})
        _storecast(runner, env, "build", "--full-refresh", *settings_args)
        if args.scored:
            _storecast(runner, env, "run", *settings_args)
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            for table in reversed(LATER):
                conn.execute(f"insert into raw.{table} select * from public.later_{table}")
        _storecast(runner, env, "build", *settings_args)
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            built = [t for t in KEYS if relation_columns(conn, f"features.{t}")]
            for table in built:
                conn.execute(f"create table public.incremental_{table} as select * from features.{table}")
        _storecast(runner, env, "build", "--full-refresh", *settings_args)
        print()
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            for table in built:
                _compare(conn, table, KEYS[table])


if __name__ == "__main__":
    main()
