"""The daily run: build features, train what is due, score, build the marts; every step logged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from storecast.build import build
from storecast.config import WEEKDAYS, ProjectConfig, load_config
from storecast.db import Conn, scalar
from storecast.scoring.backtests import backtest
from storecast.scoring.runs import abandon_dead_steps, new_run_id, pipeline_lock, step
from storecast.scoring.score import score, scoring_date
from storecast.settings import Settings
from storecast.training.registry import champion_names
from storecast.training.spec import ModelSpec, model_specs
from storecast.training.train import TrainingError, train_many


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
    if spec.name not in champion_names(conn):
        return "no champion yet"
    if WEEKDAYS[as_of.weekday()] in spec.retrain.weekdays:
        return f"scheduled on {WEEKDAYS[as_of.weekday()]}s"
    return None


def _count(conn: Conn, query: str, as_of: date) -> int:
    count: int = scalar(conn, query, [as_of])
    return count


def run_daily(
    conn: Conn,
    settings: Settings,
    config: ProjectConfig | None = None,
    as_of: date | None = None,
    retrain: bool = False,
    full_refresh: bool = False,
    progress: Callable[[str], None] | None = None,
    wait: bool = True,
) -> RunSummary:
    """Run the daily pipeline for ``as_of`` (default: the settings' as_of_date, else the
    first day after the loaded data) with the settings of ``config``.

    The date is passed to every step: the build scores it, training reads only labels
    matured by it, scoring and the marts use it. Raises whatever stopped a step, after
    recording it as failed in ml.pipeline_runs.

    The whole run holds the database-wide pipeline lock: a second run waits for it
    (or, without ``wait``, raises :class:`storecast.scoring.runs.PipelineBusyError` naming the run).
    Steps of earlier runs whose process died are marked abandoned first.
    """
    say = progress or (lambda _: None)
    with pipeline_lock(conn, wait, say):
        abandoned = abandon_dead_steps(conn)
        if abandoned:
            say(f"marked {abandoned} step(s) of earlier runs abandoned: their process had died")
        return _run(conn, settings, config, as_of, retrain, full_refresh, say)


def _run(
    conn: Conn,
    settings: Settings,
    config: ProjectConfig | None,
    as_of: date | None,
    retrain: bool,
    full_refresh: bool,
    say: Callable[[str], None],
) -> RunSummary:
    config = (config or load_config()).with_as_of(as_of)
    as_of = config.as_of
    specs = model_specs(config.values)
    run_id = new_run_id(conn)
    with step(conn, run_id, as_of, "build:features") as counters:
        build(settings, config, select=["staging", "features"], full_refresh=full_refresh, say=say)
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
    training_error: TrainingError | None = None
    try:
        with step(conn, run_id, as_of, "train") as counters:
            due = {s.name: r for s in specs.values() if (r := due_for_training(conn, s, as_of, retrain))}
            report = train_many(
                conn, [specs[n] for n in due], settings.models_dir, as_of, progress=say, retrain=retrain
            )
            for result in report.results:
                name = result.spec.name
                trained[name] = f"v{result.version} {result.status} ({due[name]})"
            counters.update(
                trained=trained, failed=report.failures, skipped=report.skipped, rows=len(trained)
            )
            if report.failures:
                # Logged as a failed step; the existing champions still score, then the run fails.
                raise TrainingError("; ".join(report.failures.values()))
    except TrainingError as exc:
        training_error = exc
    say(f"run {run_id}: trained {', '.join(trained) or 'nothing (no model due)'}")

    outcome = score(conn, as_of=as_of, run_id=run_id, progress=say, specs=specs)
    scored = {r.family: r.rows for r in outcome.results}

    with step(conn, run_id, as_of, "backtest") as counters:
        backtests = backtest(conn, specs, as_of, run_id, progress=say)
        counters.update(
            backtested={f"{b.model_name} v{b.model_version}": str(b.as_of_date) for b in backtests},
            rows=sum(b.counts[0] for b in backtests),
        )

    with step(conn, run_id, as_of, "build:marts") as counters:
        build(settings, config.with_as_of(as_of, "the features build"), select=["marts"], say=say)
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
    if training_error is not None:
        raise training_error
    return RunSummary(run_id, as_of, trained, scored, summary_counters)
