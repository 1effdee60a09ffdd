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
With ``--daily`` the days held back come back one at a time, each followed by
``storecast run`` as a job run every day would (the first build is scored too), and each
run prints the rows it inserted into the feature tables, its time and the models it
trained: what a day costs once a horizon's worth of dates scored before is kept.

    python -m benchmarks.incremental_parity [--days N] [--shape S ...] [--panel] [--scored | --daily] [--var NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import time
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
#: The same rows, a day at a time: those of the held-back rows dated before ``%(day)s``
#: (lines, redemptions and stock counts once their order, impression or day is back), in the
#: order their foreign keys can be inserted in (reversed :data:`LATER`).
BEFORE: dict[str, str] = {
    "redemptions": "redeemed_at < %(day)s and impression_id in (select impression_id from raw.impressions)"
    " and (order_id is null or order_id in (select order_id from raw.orders))",
    "impressions": "shown_at < %(day)s",
    "order_items": "order_id in (select order_id from raw.orders)",
    "orders": "ordered_at < %(day)s",
    "inventory_snapshots": "snapshot_date < %(day)s",
}
#: Feature tables whose inserted rows a daily run prints.
COUNTED = ["demand_features", "demand_history", "customer_features", "customer_offer_candidates"]
#: Columns that say when a row was built, not what it holds.
BUILD_STAMPS = {"observed_until"}
NUMBERS = {"double precision", "numeric", "real"}


def _storecast(runner: CliRunner, env: dict[str, str], *args: str) -> None:
    result = runner.invoke(app, list(args), env=env)
    print(f"  storecast {' '.join(args)}: exit {result.exit_code}")
    if result.exit_code:
        raise SystemExit(result.output[-3000:])


def _inserted(conn: Conn) -> dict[str, int]:
    """Rows inserted into each of :data:`COUNTED` since the server started (its statistics)."""
    conn.execute("select pg_stat_force_next_flush()")
    rows = conn.execute(
        "select relname, n_tup_ins from pg_stat_user_tables where schemaname = 'features' and relname = any(%s)",
        [COUNTED],
    ).fetchall()
    return {str(table): int(str(count)) for table, count in rows}


def _daily(
    runner: CliRunner, env: dict[str, str], conninfo: str, cut: date, days: int, settings_args: list[str]
) -> None:
    """Put the held-back rows back a day at a time, each day followed by ``storecast run``,
    and print what each run inserted, how long it took and which models it trained."""
    totals = dict.fromkeys(COUNTED, 0)
    for offset in range(1, days + 1):
        day = cut + timedelta(days=offset)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for table in reversed(LATER):
                back = BEFORE[table]
                conn.execute(
                    f"insert into raw.{table} select * from public.later_{table} where {back}", {"day": day}
                )
                conn.execute(f"delete from public.later_{table} where {back}", {"day": day})
            before = _inserted(conn)
        started = time.perf_counter()
        _storecast(runner, env, "run", *settings_args)
        took = time.perf_counter() - started
        with psycopg.connect(conninfo, autocommit=True) as conn:
            time.sleep(1)  # the server's statistics of the run's own sessions
            inserted = {t: n - before.get(t, 0) for t, n in _inserted(conn).items()}
            trained, train_took = conn.execute(
                "select counters -> 'trained', extract(epoch from finished_at - started_at) "
                "from ml.pipeline_runs where step = 'train' order by run_id desc limit 1"
            ).fetchone() or ({}, 0.0)
        totals = {t: totals[t] + inserted.get(t, 0) for t in COUNTED}
        print(
            f"    run for {day}: {took:5.1f} s (train {float(train_took):5.1f} s: "
            f"{', '.join(sorted(trained or {})) or 'none'}); rows inserted: "
            + ", ".join(f"{t} {inserted.get(t, 0):,}" for t in COUNTED)
        )
        for model, why in sorted((trained or {}).items()):
            print(f"      {model}: {why}")
    print("  rows inserted over the runs: " + ", ".join(f"{t} {n:,}" for t, n in totals.items()))


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
    parser.add_argument(
        "--daily",
        action="store_true",
        help="add the held-back data a day at a time, storecast run after each (the first build scored too)",
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
        if args.scored or args.daily:
            _storecast(runner, env, "run", *settings_args)
        if args.daily:
            _daily(runner, env, settings.conninfo, cut, args.days, settings_args)
        else:
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
