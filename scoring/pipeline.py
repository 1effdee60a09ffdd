"""The daily run: build features, train what is due, score, build the marts; every step logged."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date

from storecast.build import build
from storecast.config import WEEKDAYS, ProjectConfig, load_config
from storecast.db import Conn, scalar
from storecast.scoring.backtests import backtest
from storecast.scoring.drift import drift
from storecast.scoring.runs import abandon_dead_steps, new_run_id, pipeline_lock, step
from storecast.scoring.score import score, scoring_date
from storecast.settings import Settings
from storecast.training.errors import TrainingError
from storecast.training.metrics import better
from storecast.training.registry import champion_names
from storecast.training.spec import ModelSpec, model_specs
from storecast.training.train import train_many

#: The daily run's steps, in order (scoring writes a step per score table of its own).
STEPS = ("build:features", "drift", "train", "score", "monitor", "build:marts")


@dataclass(frozen=True)
class RunSummary:
    """What a daily run did."""

    run_id: int
    as_of: date
    trained: dict[str, str]
    scored: dict[str, int]
    counters: dict[str, int]


@dataclass(frozen=True)
class Evidence:
    """What the run knows about a champion beyond its schedule: its features' drift on the
    run's date and its latest matured backtest, with the thresholds that make them count."""

    drift_psi: float
    backtest_margin: float


def _drift_reason(conn: Conn, spec: ModelSpec, as_of: date, limit: float) -> tuple[str | None, str]:
    """The feature that moved most since the champion's first measured date, or since a
    later version was trained (a date is never distributed like a training window of many,
    so drift counts from where the champion started; and once a version has been trained
    on a drift, a candidate that did not beat the champion, the same drift is no reason to
    train another every day); not a calendar feature, which moves with the date by design,
    nor a planned one, which each date sets anew (``Features.not_drift_evidence``)."""
    worst = conn.execute(
        """
        with latest_training as (
            select max(trained_as_of) as trained_as_of
            from ml.model_versions
            where model_name = %(model)s and trained_as_of <= %(as_of)s
        ),
        measured as (
            select d.feature, d.as_of_date, d.psi,
                   first_value(d.psi) over (partition by d.feature order by d.as_of_date) as first_psi,
                   min(d.as_of_date) over (partition by d.feature) as first_date
            from ml.feature_drift d
            join ml.model_versions v on v.model_name = d.model_name and v.version = d.model_version
            cross join latest_training
            where d.model_name = %(model)s and v.status = 'champion' and d.feature <> 'prediction'
                and d.as_of_date <= %(as_of)s and d.feature <> all(%(exempt)s)
                and d.as_of_date >= coalesce(latest_training.trained_as_of, '-infinity')
        )
        select feature, psi, first_psi, first_date from measured
        where as_of_date = %(as_of)s order by psi - first_psi desc limit 1
        """,
        {"model": spec.name, "as_of": as_of, "exempt": spec.features.not_drift_evidence},
    ).fetchone()
    if worst is None:
        return None, "no drift measured"
    feature, value, first = str(worst[0]), float(worst[1]), float(worst[2])  # type: ignore[arg-type]
    said = f"drift: {feature} PSI {value:.3f}, {value - first:+.3f} since {worst[3]}"
    return (f"{said} > {limit}" if value - first > limit else None), f"{said} <= {limit}"


def _backtest_reason(conn: Conn, spec: ModelSpec, margin: float) -> tuple[str | None, str]:
    latest = conn.execute(
        """
        select b.as_of_date, b.value, (v.metrics ->> b.metric)::float8
        from ml.backtests b
        join ml.model_versions v on v.model_name = b.model_name and v.version = b.model_version
        where b.model_name = %s and v.status = 'champion' and b.metric = %s and b.horizon = 0
          and b.value is not null and jsonb_typeof(v.metrics -> b.metric) = 'number'
        order by b.as_of_date desc limit 1
        """,
        [spec.name, spec.selection_metric],
    ).fetchone()
    if latest is None:
        return None, "no matured backtest"
    scored_on, value, test = latest[0], float(latest[1]), float(latest[2])  # type: ignore[arg-type]
    worse = better(spec.selection_metric, test, value) and abs(value - test) > margin
    said = f"backtest {spec.selection_metric} {value:.4f} on {scored_on} against its test {test:.4f}"
    return (f"{said}, worse by more than {margin}" if worse else None), f"{said}, within {margin}"


def due_for_training(
    conn: Conn, spec: ModelSpec, as_of: date, retrain: bool, evidence: Evidence | None = None
) -> tuple[bool, str]:
    """Whether ``spec`` is (re)trained on ``as_of``, and why (or why not): forced, no
    champion, its schedule, its features' drift past ``evidence.drift_psi``, or a matured
    backtest worse than its own test figure by more than ``evidence.backtest_margin``."""
    if retrain:
        return True, "retraining asked for"
    if spec.name not in champion_names(conn):
        return True, "no champion yet"
    if WEEKDAYS[as_of.weekday()] in spec.retrain.weekdays:
        return True, f"scheduled on {WEEKDAYS[as_of.weekday()]}s"
    said = [f"not scheduled on {WEEKDAYS[as_of.weekday()]}s"]
    if evidence is not None:
        for reason, otherwise in (
            _drift_reason(conn, spec, as_of, evidence.drift_psi),
            _backtest_reason(conn, spec, evidence.backtest_margin),
        ):
            if reason:
                return True, reason
            said.append(otherwise)
    return False, "; ".join(said)


def _count(conn: Conn, query: str, as_of: date) -> int:
    count: int = scalar(conn, query, [as_of])
    return count


def check_models(specs: dict[str, ModelSpec], names: Collection[str]) -> None:
    """Raise ``ValueError`` naming every one of ``names`` that is not a model of ``specs``."""
    unknown = sorted(set(names) - set(specs))
    if unknown:
        raise ValueError(f"no model called {', '.join(unknown)}; the models are {', '.join(specs)}")


def run_daily(
    conn: Conn,
    settings: Settings,
    config: ProjectConfig | None = None,
    as_of: date | None = None,
    retrain: bool | Collection[str] = False,
    full_refresh: bool = False,
    progress: Callable[[str], None] | None = None,
    wait: bool = True,
    run_id: int | None = None,
    on_step: Callable[[str], None] | None = None,
) -> RunSummary:
    """Run the daily pipeline for ``as_of`` (default: the settings' as_of_date, else the
    first day after the loaded data) with the settings of ``config``.

    ``retrain`` trains every model (``True``), or the models named, whether due or not
    (the others as scheduled). ``run_id`` is the run's id when the caller took one
    beforehand (:func:`storecast.scoring.runs.new_run_id`); ``on_step`` is called with
    each name of :data:`STEPS` as that step starts.

    The date is passed to every step: the build scores it, training reads only labels
    matured by it, scoring and the marts use it. Raises whatever stopped a step, after
    recording it as failed in ml.pipeline_runs.

    The whole run holds the database-wide pipeline lock: a second run waits for it
    (or, without ``wait``, raises :class:`storecast.scoring.runs.PipelineBusyError` naming the run).
    Steps of earlier runs whose process died are marked abandoned first.
    """
    say = progress or (lambda _: None)
    config = (config or load_config()).with_as_of(as_of)
    specs = model_specs(config.values)
    if not isinstance(retrain, bool):
        check_models(specs, retrain)
    with pipeline_lock(conn, wait, say):
        abandoned = abandon_dead_steps(conn)
        if abandoned:
            say(f"marked {abandoned} step(s) of earlier runs abandoned: their process had died")
        return _run(
            conn,
            settings,
            config,
            specs,
            retrain,
            full_refresh,
            say,
            run_id if run_id is not None else new_run_id(conn),
            on_step or (lambda _: None),
        )


def _run(
    conn: Conn,
    settings: Settings,
    config: ProjectConfig,
    specs: dict[str, ModelSpec],
    retrain: bool | Collection[str],
    full_refresh: bool,
    say: Callable[[str], None],
    run_id: int,
    started: Callable[[str], None],
) -> RunSummary:
    as_of = config.as_of
    started("build:features")
    with step(conn, run_id, as_of, "build:features") as counters:
        # dbt's unit tests check the SQL on fixed inputs: CI and `storecast build` run them;
        # a daily run, on the same code every day, would only pay for them again.
        build(
            settings,
            config,
            select=["staging", "features"],
            full_refresh=full_refresh,
            say=say,
            unit_tests=False,
        )
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

    started("drift")
    with step(conn, run_id, as_of, "drift") as counters:
        # The champions' features on this date against their training windows: evidence for
        # the training decision below.
        drifts = drift(conn, specs, as_of, run_id, progress=say)
        counters.update(
            largest_psi={m: round(max(d.psi for d in ds), 4) for m, ds in drifts.items()},
            rows=sum(len(ds) for ds in drifts.values()),
        )

    trained: dict[str, str] = {}
    promoted: set[str] = set()
    training_error: TrainingError | None = None
    started("train")
    try:
        with step(conn, run_id, as_of, "train") as counters:
            evidence = Evidence(
                float(config.values["retrain_drift_psi"]), float(config.values["retrain_backtest_margin"])
            )
            forced = set(specs) if retrain is True else set() if retrain is False else set(retrain)
            decisions = {
                s.name: due_for_training(conn, s, as_of, s.name in forced, evidence) for s in specs.values()
            }
            # Every decision is logged with its reason, trained or not.
            counters["decisions"] = {n: ("train: " if d else "keep: ") + r for n, (d, r) in decisions.items()}
            due = {n: r for n, (d, r) in decisions.items() if d}
            report = train_many(
                conn,
                [specs[n] for n in due],
                settings.models_dir,
                as_of,
                progress=say,
                retrain=retrain is True,
            )
            for result in report.results:
                name = result.spec.name
                trained[name] = f"v{result.version} {result.status} ({due[name]})"
                if result.status == "champion":
                    promoted.add(name)
            counters.update(
                trained=trained, failed=report.failures, skipped=report.skipped, rows=len(trained)
            )
            if report.failures:
                # Logged as a failed step; the existing champions still score, then the run fails.
                raise TrainingError("; ".join(report.failures.values()))
    except TrainingError as exc:
        training_error = exc
    say(f"run {run_id}: trained {', '.join(trained) or 'nothing (no model due)'}")

    started("score")
    outcome = score(
        conn,
        as_of=as_of,
        run_id=run_id,
        progress=say,
        specs=specs,
        reasons=int(config.values["explanation_reasons"]),
    )
    scored = {r.family: r.rows for r in outcome.results}

    started("monitor")
    with step(conn, run_id, as_of, "monitor") as counters:
        backtests = backtest(conn, specs, as_of, run_id, progress=say)
        # A champion new today has had its features measured by no step yet.
        drift(conn, {n: specs[n] for n in promoted}, as_of, run_id, progress=say)
        predictions = drift(conn, specs, as_of, run_id, predictions=True, progress=say)
        counters.update(
            backtested={f"{b.model_name} v{b.model_version}": str(b.as_of_date) for b in backtests},
            prediction_psi={m: round(ds[0].psi, 4) for m, ds in predictions.items()},
            rows=sum(b.counts[0] for b in backtests) + len(predictions),
        )

    started("build:marts")
    with step(conn, run_id, as_of, "build:marts") as counters:
        build(
            settings,
            config.with_as_of(as_of, "the features build"),
            select=["marts"],
            say=say,
            unit_tests=False,
        )
        counters["recommendations_written"] = _count(
            conn, "select count(*) from marts.offer_recommendations where as_of_date = %s", as_of
        )
        counters["forecasts_written"] = _count(
            conn, "select count(*) from marts.demand_forecast where as_of_date = %s", as_of
        )
        # One read of the plan for both of its counters.
        plan = conn.execute(
            "select count(*) filter (where stock_status = 'reorder now'), "
            "count(*) filter (where stock_status = 'not forecast') "
            "from marts.inventory_plan where as_of_date = %s",
            [as_of],
        ).fetchone()
        assert plan is not None
        counters["reorder_warnings"], counters["stock_not_forecast"] = int(str(plan[0])), int(str(plan[1]))
        counters["rows"] = counters["recommendations_written"] + counters["forecasts_written"]
        summary_counters = dict(counters)
    say(f"run {run_id}: marts built: {summary_counters}")
    if training_error is not None:
        raise training_error
    return RunSummary(run_id, as_of, trained, scored, summary_counters)
