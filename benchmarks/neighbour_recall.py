"""Recall@K of the HNSW neighbour search behind item_features, against an exact scan.

Runs the same filtered query as ``item_features`` (K nearest items whose outcome
was known before the item launched) twice per item: once through the HNSW index
with the model's settings, once as an exact sequential scan, and once the way
storecast searches on pgvector < 0.8 (no iterative scan, a large ef_search),
and reports mean recall@K, the share of items that got as many neighbours as
the exact search, and each query plan.

    python -m benchmarks.neighbour_recall [--k 10]

Needs a built feature layer (``storecast build``).
"""

from __future__ import annotations

import argparse
import re
import time

import psycopg

from storecast.db import connect
from storecast.settings import get_settings

QUERY = """
select o.product_id
from features.item_outcomes o
where o.sold_through is not null and o.outcome_known_date < %(launched)s
order by o.embedding <=> %(embedding)s::vector
limit %(k)s
"""


MODES = ("hnsw", "hnsw_without_iterative_scan", "exact")


def _settings_sql(k: int, mode: str) -> list[str]:
    """The settings of each search; the HNSW ones mirror macro hnsw_filtered_search_settings."""
    if mode == "exact":
        return ["set local enable_indexscan = off", "set local enable_bitmapscan = off"]
    if mode == "hnsw":  # pgvector >= 0.8
        return [
            "set local enable_seqscan = off",
            "set local hnsw.iterative_scan = strict_order",
            f"set local hnsw.ef_search = {max(4 * k, 40)}",
        ]
    # What storecast does on pgvector < 0.8, which has no iterative scans.
    return ["set local enable_seqscan = off", f"set local hnsw.ef_search = {max(40 * k, 400)}"]


def _neighbours(
    conn: psycopg.Connection[tuple[object, ...]], items: list[tuple[object, ...]], k: int, mode: str
) -> tuple[list[list[int]], float, str]:
    results = []
    started = time.perf_counter()
    with conn.transaction():
        for statement in _settings_sql(k, mode):
            conn.execute(statement)
        params = {"launched": items[0][1], "embedding": items[0][2], "k": k}
        plan = "\n".join(
            str(r[0]) for r in conn.execute("explain " + QUERY, params, prepare=False).fetchall()
        )
        for _, launched, embedding in items:
            # prepare=False: a prepared statement's cached plan would outlive these
            # transaction-local settings and silently run one search as another.
            params = {"launched": launched, "embedding": embedding, "k": k}
            rows = conn.execute(QUERY, params, prepare=False).fetchall()
            results.append([int(str(r[0])) for r in rows])
    return results, time.perf_counter() - started, re.sub(r"'\[[^']*\]'", "'[…]'", plan)


def main() -> None:
    """Print recall@K of the HNSW search against the exact search."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    with connect(get_settings()) as conn:
        items = conn.execute(
            "select product_id, launched_date, embedding::text from features.item_outcomes order by product_id"
        ).fetchall()
        runs = {mode: _neighbours(conn, items, args.k, mode) for mode in MODES}
    exact, exact_seconds, _ = runs["exact"]
    eligible = [i for i, e in enumerate(exact) if e]
    print(f"items searched: {len(items)} ({len(eligible)} with at least one eligible neighbour)")
    print(f"{'search':<30} {'recall@' + str(args.k):>10} {'full k':>8} {'seconds':>8} {'vs exact':>9}")
    for mode, (found, seconds, _) in runs.items():
        recall = sum(len(set(found[i]) & set(exact[i])) / len(exact[i]) for i in eligible) / len(eligible)
        full = sum(len(found[i]) == len(exact[i]) for i in eligible) / len(eligible)
        print(f"{mode:<30} {recall:>10.4f} {full:>8.4f} {seconds:>8.2f} {seconds / exact_seconds:>9.2f}")
    for mode, (_, _, plan) in runs.items():
        print(f"\n{mode} plan:\n{plan}")


if __name__ == "__main__":
    main()
