"""Load on the HTTP service: ``POST /forecast`` requests per second and latency, idle and
while a retrain runs, against the same query called in-process.

In one run, on a throwaway embedded Postgres with the tiny (or small) sample retailer
after a full daily run:

(a) baseline: ``storecast.service.forecast.forecast`` called directly by ``--clients``
    threads, each with its own connection: what the database and the query allow;
(b) the service, idle: the same filters as ``POST /forecast`` over loopback HTTP (uvicorn,
    keep-alive clients), ``--clients`` at a time;
(c) the service while ``POST /retrain`` (every model) runs beside it.

Every phase lasts ``--seconds`` (bounded; loopback only) and cycles through the same
filters: a category, a store, a product, a category with a horizon. Figures are printed
with their ratio to (a), since machines here are noisy.

    python -m benchmarks.service_load [--clients 8] [--seconds 20] [--scale tiny]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import psycopg

from benchmarks.throwaway import throwaway_server
from storecast.database.sample import SCALES, generate
from storecast.database.sample.load import load_sample
from storecast.database.schema import apply_schema
from storecast.scoring.pipeline import run_daily
from storecast.service.app import create_app, serving
from storecast.service.forecast import ForecastQuery, forecast

#: The longest a phase may be asked to run, and the most clients.
MAX_SECONDS = 120
MAX_CLIENTS = 32


@dataclass(frozen=True)
class Phase:
    """Latencies (seconds) of the requests a phase completed, and its length."""

    name: str
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` in milliseconds."""
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


def _filters(conn: psycopg.Connection[tuple[object, ...]]) -> list[dict[str, Any]]:
    category, store, product = conn.execute(
        "select (select category from marts.demand_forecast group by 1 order by count(*) desc limit 1), "
        "(select min(store_id) from marts.demand_forecast), (select min(product_id) from marts.demand_forecast)"
    ).fetchone()  # type: ignore[misc]
    return [
        {"category": category},
        {"store": store},
        {"product": product},
        {"category": category, "horizon": 7},
    ]


def _phase(name: str, clients: int, seconds: float, request: Callable[[int, int], object]) -> Phase:
    """Run ``request(client, n)`` from ``clients`` threads for ``seconds``; time each call."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = time.perf_counter() + seconds

    def work(client: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                request(client, n)
            except Exception:  # counted, not hidden: printed beside the figures
                errors[client] += 1
            else:
                latencies[client].append(time.perf_counter() - started)
            n += 1

    began = time.perf_counter()
    threads = [threading.Thread(target=work, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Phase(name, [x for per in latencies for x in per], time.perf_counter() - began, sum(errors))


def main() -> None:
    """Parse the arguments, run the three phases and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--scale", choices=["tiny", "small"], default="tiny")
    args = parser.parse_args()
    clients = max(1, min(args.clients, MAX_CLIENTS))
    seconds = max(1.0, min(args.seconds, MAX_SECONDS))

    with throwaway_server() as (settings, _, _):
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            apply_schema(conn)
            started = time.perf_counter()
            load_sample(conn, generate(SCALES[args.scale], seed=42), source="benchmarks.service_load")
            summary = run_daily(conn, settings, full_refresh=True)
            print(
                f"{args.scale} sample loaded and run {summary.run_id} done in {time.perf_counter() - started:.0f}s"
            )
            filters = _filters(conn)
            series = sum(
                len(json.loads(forecast(conn, ForecastQuery(**f)))["series"]) for f in filters
            ) / len(filters)
        print(f"{clients} clients, {seconds:.0f} s per phase, {series:.0f} series per answer on average\n")

        connections = [psycopg.connect(settings.conninfo, autocommit=True) for _ in range(clients)]
        queries = [ForecastQuery(**f) for f in filters]
        baseline = _phase(
            "in-process forecast()",
            clients,
            seconds,
            lambda c, n: forecast(connections[c], queries[n % len(queries)]),
        )
        for conn in connections:
            conn.close()

        with serving(create_app(settings)) as url:
            http = [httpx.Client(base_url=url, timeout=60) for _ in range(clients)]
            bodies = [json.dumps(f) for f in filters]

            def post(client: int, n: int) -> None:
                http[client].post("/forecast", content=bodies[n % len(bodies)]).raise_for_status()

            idle = _phase("POST /forecast, idle", clients, seconds, post)
            retrain_events: list[str] = []

            def retrain() -> None:
                with (
                    httpx.Client(base_url=url, timeout=None) as client,
                    client.stream("POST", "/retrain") as stream,
                ):
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            retrain_events.append(line[7:])

            runner = threading.Thread(target=retrain)
            runner.start()
            time.sleep(1.0)
            busy = _phase("POST /forecast, retrain running", clients, seconds, post)
            running_at_end = runner.is_alive()
            runner.join()
            for client in http:
                client.close()

    print(
        f"{'phase':34} {'req/s':>9} {'ratio':>7} {'p50 ms':>9} {'ratio':>7} {'p99 ms':>9} {'ratio':>7} {'errors':>7}"
    )
    for phase in (baseline, idle, busy):
        print(
            f"{phase.name:34} {phase.rate:9.1f} {phase.rate / baseline.rate:7.2f} "
            f"{phase.percentile(50):9.1f} {phase.percentile(50) / baseline.percentile(50):7.2f} "
            f"{phase.percentile(99):9.1f} {phase.percentile(99) / baseline.percentile(99):7.2f} {phase.errors:7d}"
        )
    outcome = retrain_events[-1] if retrain_events else "no event"
    print(
        f"\nthe retrain ended with a {outcome!r} event"
        + (" after the loaded phase (it ran throughout)" if running_at_end else " within the loaded phase")
    )


if __name__ == "__main__":
    main()
