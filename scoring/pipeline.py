"""The daily run: build features, train what is due, score, build the marts; every step logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from scoring.runs import new_run_id, step
from scoring.score import score, scoring_date
from storecast.build import build
from storecast.settings import Settings
from training.data import Conn
from training.registry import champion
from training.spec import ModelSpec, model_specs
from training.train import train_model

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class RunSummary:
    """What a daily run did."""

    run_id: int
    as_of: date
    trained: dict[str, str]
    scored: dict[str, int]
    counters: dict[str, int]


def due_for_training(conn: Conn, spec: ModelSpec, as_of: date, retrain: bool) -> str | None:
    """Why ``spec`` should be (re)trained on ``as_of``, or None when it is not due."""
    if retrain:
        return "--retrain"
    if champion(conn, spec.name) is None:
        return "no champion yet"
    if WEEKDAYS[as_of.weekday()] in spec.retrain.weekdays:
        return f"scheduled on {WEEKDAYS[as_of.weekday()]}s"
    return None


def _count(conn: Conn, query: str, as_of: date) -> int:
    row = conn.execute(query, [as_of]).fetchone()
    return int(str(row[0])) if row else 0


def run_daily(
    conn: Conn,
    settings: Settings,
    as_of: date | None = None,
    retrain: bool = False,
    full_refresh: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run the daily pipeline for ``as_of`` (default: the day after the latest order).

    Raises whatever stopped a step, after recording it as failed in ml.pipeline_runs.
    """
    say = progress or (lambda _: None)
    run_id = new_run_id(conn)
    with step(conn, run_id, as_of, "build:features") as counters:
        build(settings, as_of=as_of, select=["staging", "features"], full_refresh=full_refresh)
        as_of = scoring_date(conn)
        counters["active_offers"] = _count(
            conn, "select count(*) from features.offer_features where as_of_date = %s", as_of
        )
        counters["candidate_pairs"] = _count(
            conn, "select count(*) from features.customer_offer_candidates where as_of_date = %s", as_of
        )
        counters["rows"] = _count(
            conn, "select count(*) from features.customer_features where as_of_date = %s", as_of
        )
    conn.execute("update ml.pipeline_runs set as_of_date = %s where run_id = %s", [as_of, run_id])
    say(f"run {run_id}: features built for {as_of}")

    trained: dict[str, str] = {}
    with step(conn, run_id, as_of, "train") as counters:
        for spec in model_specs().values():
            reason = due_for_training(conn, spec, as_of, retrain)
            if reason is None:
                continue
            result = train_model(conn, spec, settings, progress=say)
            trained[spec.name] = f"v{result.version} {result.status} ({reason})"
        counters.update(trained=trained, rows=len(trained))
    say(f"run {run_id}: trained {', '.join(trained) or 'nothing (no model due)'}")

    results = score(conn, as_of=as_of, run_id=run_id, progress=say)
    scored = {r.family: r.rows for r in results}

    with step(conn, run_id, as_of, "build:marts") as counters:
        build(settings, as_of=as_of, select=["marts"])
        counters["recommendations_written"] = _count(
            conn, "select count(*) from marts.offer_recommendations where as_of_date = %s", as_of
        )
        counters["forecasts_written"] = _count(
            conn, "select count(*) from marts.demand_forecast where as_of_date = %s", as_of
        )
        counters["reorder_warnings"] = _count(
            conn,
            "select count(*) from marts.inventory_plan where as_of_date = %s and warning is not null",
            as_of,
        )
        counters["rows"] = counters["recommendations_written"] + counters["forecasts_written"]
        summary_counters = dict(counters)
    say(f"run {run_id}: marts built: {summary_counters}")
    return RunSummary(run_id, as_of, trained, scored, summary_counters)
