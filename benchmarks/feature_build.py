"""How long each feature model takes to build from scratch, against a plain scan of the orders.

The sample retailer is generated at ``--scale`` (default ``small``, the README's first
command) into a throwaway embedded server and built from scratch with
``storecast build --full-refresh`` as a user would. Every model's time is printed beside
its rows and as a multiple of a baseline measured in the same run on the same server:
``create table as`` of the order lines joined to their orders (one pass over the raw data
a feature model must read at least once). A model whose multiple jumps between two runs
has a new plan, not a slower machine: the demand build once went from 36 s to minutes on
``--scale small`` because the planner, short of statistics or of a materialised date
column, merge-joined on product and store and filtered every pair on the date, while the
tiny sample the tests use built in seconds either way.

    python -m benchmarks.feature_build [--scale small] [--seed 42] [--top 12]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from typer.testing import CliRunner

from benchmarks.throwaway import throwaway_server
from storecast.build import run_dbt
from storecast.cli import app

#: The baseline: every order line with its order's store and time, written once.
BASELINE_SQL = (
    "create temp table order_lines as "
    "select items.*, orders.store_id, orders.customer_id, orders.ordered_at "
    "from raw.order_items as items inner join raw.orders as orders using (order_id)"
)


def _models(result: Any) -> list[tuple[str, float, int | None]]:
    """(model, seconds, rows written) for every model dbt built, slowest first."""
    rows = []
    for node in getattr(result.result, "results", None) or []:
        if getattr(node.node, "resource_type", None) != "model":
            continue
        written = (node.adapter_response or {}).get("rows_affected")
        rows.append((str(node.node.name), float(node.execution_time), written))
    return sorted(rows, key=lambda r: -r[1])


def main(argv: Sequence[str] | None = None) -> None:
    """Generate, load, build from scratch and print the slowest models against the baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--top", type=int, default=12, help="models to print, slowest first")
    args = parser.parse_args(argv)
    with throwaway_server() as (settings, env, _):
        started = time.perf_counter()
        result = CliRunner().invoke(app, ["sample", "--scale", args.scale, "--seed", str(args.seed)], env=env)
        if result.exit_code != 0:
            raise SystemExit(f"storecast sample failed:\n{result.output}")
        loaded = time.perf_counter() - started
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            conn.execute("analyze")
            # The fastest of three: a single pass of a second or so varies by half.
            passes = []
            for _ in range(3):
                conn.execute("drop table if exists order_lines")
                started = time.perf_counter()
                conn.execute(BASELINE_SQL)
                passes.append(time.perf_counter() - started)
            baseline = min(passes)
            row = conn.execute("select count(*) from order_lines").fetchone()
            lines = int(row[0]) if row else 0
        started = time.perf_counter()
        built = run_dbt(settings, "build", ["--full-refresh"])
        build_seconds = time.perf_counter() - started

    models = _models(built)
    print(
        f"\n--scale {args.scale}: {lines:,} order lines, generated and loaded in {loaded:.0f} s; "
        f"baseline (order lines joined to orders, written once; fastest of 3) {baseline:.2f} s"
    )
    print(
        f"`dbt build --full-refresh`: {build_seconds:.0f} s in all ({build_seconds / baseline:,.0f}x the baseline)\n"
    )
    print(f"| {'model':<32} | {'rows':>11} | {'seconds':>8} | {'x baseline':>10} |")
    print(f"|{'-' * 34}|{'-' * 13}|{'-' * 10}|{'-' * 12}|")
    for name, seconds, written in models[: args.top]:
        shown = "" if written is None or written < 0 else f"{written:,}"
        print(f"| {name:<32} | {shown:>11} | {seconds:>8.1f} | {seconds / baseline:>10.1f} |")
    print(f"\n{len(models)} models in all, {sum(s for _, s, _ in models):.0f} s of model time")


if __name__ == "__main__":
    main()
