"""Memory of `storecast load` on a file with one huge line, against the same file without it.

    python -m benchmarks.load_limits [--line-gb 1.1]

Writes a customers file of 20,000 good rows with one line of ``--line-gb`` GB in the
middle, loads it into a throwaway embedded server through the loader a user's
``storecast load`` runs, and prints the peak resident memory of this process (which
does the parsing) and the time, beside the same file without the huge line loaded in
the same run. The huge line is rejected unread with its line number; before the
record limit it was read whole (peak 6.7 GB for 1.1 GB) and then aborted the load in
Postgres (``ProgramLimitExceeded``).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import psycopg

from benchmarks.throwaway import throwaway_server
from storecast.database.loader import load_csv
from storecast.database.schema import apply_schema

ROWS = 20_000
HEADER = "customer_id,signup_date,region,segment\n"


def _write(path: Path, first_id: int, line_bytes: int) -> None:
    with path.open("w") as out:
        out.write(HEADER)
        for i in range(ROWS // 2):
            out.write(f"{first_id + i},2024-01-01,north,household\n")
        if line_bytes:
            out.write(f"{first_id + ROWS},2024-01-01,")
            chunk = "x" * 2**20
            for _ in range(line_bytes // len(chunk)):
                out.write(chunk)
            out.write(",household\n")
        for i in range(ROWS // 2, ROWS):
            out.write(f"{first_id + i},2024-01-01,north,household\n")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-gb", type=float, default=1.1, help="size of the huge line in GB")
    args = parser.parse_args()
    line_bytes = int(args.line_gb * 1e9)
    with throwaway_server() as (settings, _, _), tempfile.TemporaryDirectory() as tmp:
        plain, huge = Path(tmp) / "plain.csv", Path(tmp) / "huge.csv"
        _write(plain, 1, 0)
        _write(huge, 1_000_000, line_bytes)
        sizes = plain.stat().st_size, huge.stat().st_size
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            apply_schema(conn)
            before = _peak_mib()
            started = time.perf_counter()
            baseline = load_csv(conn, "customers", plain)
            plain_seconds, plain_peak = time.perf_counter() - started, _peak_mib()
            started = time.perf_counter()
            result = load_csv(conn, "customers", huge)
            huge_seconds, huge_peak = time.perf_counter() - started, _peak_mib()
            reason = conn.execute(
                "select line_no, reason from raw.load_rejects where load_id = %s", [result.load_id]
            ).fetchall()
    print("| file | bytes | loaded | rejected | seconds | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {ROWS:,} rows | {sizes[0]:,} | {baseline.rows_loaded:,} | "
        f"{baseline.rows_rejected} | {plain_seconds:.1f} | {plain_peak:,.0f} |"
    )
    print(
        f"| same + one {args.line_gb} GB line | {sizes[1]:,} | {result.rows_loaded:,} | {result.rows_rejected} | "
        f"{huge_seconds:.1f} | {huge_peak:,.0f} |"
    )
    print(
        f"peak RSS before loading: {before:,.0f} MiB; with the huge line / without: {huge_peak / plain_peak:.2f}x"
    )
    print(f"reject: {reason}")


if __name__ == "__main__":
    main()
