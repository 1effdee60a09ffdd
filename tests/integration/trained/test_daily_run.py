"""End to end on tiny: the daily run for two consecutive dates, from raw data to marts."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from storecast.build import build
from storecast.cli import app
from storecast.config import WEEKDAYS, load_config
from storecast.db import Conn, scalar
from storecast.scoring.backtests import Backtest, backtest
from storecast.scoring.families import FAMILIES
from storecast.scoring.pipeline import RunSummary, run_daily
from storecast.scoring.runs import new_run_id, pipeline_lock, step
from storecast.scoring.score import score
from storecast.settings import Settings
from storecast.training.registry import champion_scores
from storecast.training.spec import model_specs
from storecast.training.train import TrainResult, train_many
from tests.integration.browser import chromium_path

#: The writes to the shared trained state (scores truncated, a day of features added,
#: models retrained) come after the modules that only read it.
pytestmark = pytest.mark.changes_trained_state

#: Models whose versions the first run finds deleted, so it must train them: cheap ones
#: (training every model again would repeat the slowest setup of the suite).
MISSING = ("sell_through", "offer_redemption_7d")


@dataclass(frozen=True)
class DailyRuns:
    first: RunSummary
    second: RunSummary
    #: The ids of the nodes the second run's last dbt build ran (its marts).
    last_build_nodes: list[str]


@pytest.fixture(scope="module")
def daily_runs(pg_settings: Settings, trained: dict[str, TrainResult]) -> DailyRuns:
    """The shared trained sample through the daily job on two consecutive dates, the first
    with no score rows and no version of the models in :data:`MISSING`."""
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        for table in ("ml.backtests", "ml.backtest_reliability", "ml.feature_drift", "ml.model_versions"):
            conn.execute(f"delete from {table} where model_name = any(%s)", [list(MISSING)])
        conn.execute("truncate " + ", ".join(family.table for family in FAMILIES.values()))
        first = run_daily(conn, pg_settings)
        second = run_daily(conn, pg_settings, as_of=first.as_of + timedelta(days=1))
    results = json.loads((pg_settings.dbt_dir / "target" / "run_results.json").read_text(encoding="utf-8"))
    return DailyRuns(first, second, [r["unique_id"] for r in results["results"]])


@pytest.fixture(scope="module")
def two_days(daily_runs: DailyRuns) -> tuple[RunSummary, RunSummary]:
    return daily_runs.first, daily_runs.second


def test_the_daily_build_leaves_dbt_unit_tests_to_ci(daily_runs: DailyRuns) -> None:
    # The marts have unit tests of their own (a plain build runs them: test_feature_build).
    kinds = {node.split(".")[0] for node in daily_runs.last_build_nodes}
    assert {"model", "test"} <= kinds
    assert "unit_test" not in kinds


def test_both_days_are_scored_once(conn: Conn, two_days: tuple[RunSummary, RunSummary]) -> None:
    first, second = two_days
    assert second.as_of == first.as_of + timedelta(days=1)
    for table, keys in {
        "scores.customer": "customer_id",
        "scores.offer_redemption": "customer_id, offer_id",
        "scores.demand_forecast": "product_id, store_id, horizon",
    }.items():
        days = {row[0] for row in conn.execute(f"select distinct as_of_date from {table}").fetchall()}
        assert days == {first.as_of, second.as_of}, table
        duplicates = conn.execute(
            f"select count(*) from (select as_of_date, {keys} from {table} group by 1, {keys} having count(*) > 1) d"
        ).fetchone()
        assert duplicates == (0,), table
    customers = conn.execute(
        "select count(*) from features.customer_features where as_of_date = %s", [second.as_of]
    ).fetchone()
    assert customers is not None
    scored = conn.execute(
        "select count(*) from scores.customer where as_of_date = %s", [second.as_of]
    ).fetchone()
    assert scored == customers


def test_the_offer_candidates_hold_the_latest_scoring_date_only(
    conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    # The first run's date is a week start, on the grid the other feature tables keep; its
    # candidates are no longer read once the next day is scored, and a build from scratch
    # would not build them.
    first, second = two_days
    assert first.as_of.isoweekday() == 1
    assert scalar(
        conn, "select count(*) from features.customer_features where as_of_date = %s", [first.as_of]
    )
    dates = conn.execute("select distinct as_of_date from features.customer_offer_candidates").fetchall()
    assert dates == [(second.as_of,)]


def test_models_are_trained_when_missing_and_not_again_the_next_day(
    two_days: tuple[RunSummary, RunSummary],
) -> None:
    first, second = two_days
    # The others have a champion trained on these data: due or not, none is trained again.
    assert set(first.trained) == set(MISSING)
    assert all("no champion yet" in why for why in first.trained.values())
    weekday = WEEKDAYS[second.as_of.weekday()]
    scheduled = {s.name for s in model_specs().values() if weekday in s.retrain.weekdays}
    assert set(second.trained) <= scheduled, second.trained
    assert all(f"scheduled on {weekday}s" in why for why in second.trained.values())


def test_a_rerun_on_the_same_data_trains_nothing_unless_asked(
    conn: Conn, pg_settings: Settings, two_days: tuple[RunSummary, RunSummary]
) -> None:
    first, _ = two_days
    specs = list(model_specs().values())
    before = conn.execute("select count(*) from ml.model_versions").fetchone()
    report = train_many(conn, specs, pg_settings.models_dir, first.as_of)
    assert report.results == []
    assert set(report.skipped) == {s.name for s in specs}
    assert all("unchanged since version" in why for why in report.skipped.values())
    assert conn.execute("select count(*) from ml.model_versions").fetchone() == before
    # Forced, it trains again (one cheap model is enough to show it), repeating the
    # training of the versions before it on this date: the same fingerprint.
    query = (
        "select count(distinct fingerprint), count(*) from ml.model_versions "
        "where model_name = 'purchase_30d' and trained_as_of = %s"
    )
    row = conn.execute(query, [first.as_of]).fetchone()
    assert row is not None
    earlier = int(str(row[1]))
    assert earlier >= 1
    forced = train_many(
        conn,
        [s for s in specs if s.name == "purchase_30d"],
        pg_settings.models_dir,
        first.as_of,
        retrain=True,
    )
    assert [r.spec.name for r in forced.results] == ["purchase_30d"]
    assert conn.execute(query, [first.as_of]).fetchone() == (1, earlier + 1)


def test_marts_hold_the_latest_date(conn: Conn, two_days: tuple[RunSummary, RunSummary]) -> None:
    _, second = two_days
    for mart in (
        "customer_scores",
        "offer_recommendations",
        "demand_forecast",
        "inventory_plan",
        "sell_through_projection",
    ):
        dates = conn.execute(f"select distinct as_of_date from marts.{mart}").fetchall()
        assert dates == [(second.as_of,)], mart
    ranks = conn.execute("select max(rank) from marts.offer_recommendations").fetchone()
    assert ranks is not None
    assert 1 <= int(str(ranks[0])) <= 3
    redeemed_again = conn.execute(
        """
        select count(*) from marts.offer_recommendations r
        join raw.impressions i on i.customer_id = r.customer_id and i.offer_id = r.offer_id
        join raw.redemptions d on d.impression_id = i.impression_id
        """
    ).fetchone()
    assert redeemed_again == (0,)
    bad_plan = conn.execute(
        "select count(*) from marts.inventory_plan where (warning is not null) <> (stock_status = 'reorder now') "
        "or (stock_status = 'reorder now' and not on_hand < reorder_point) "
        "or (on_hand is null) <> (stock_status = 'no stock count') "
        "or max_level < reorder_point or safety_stock < 0"
    ).fetchone()
    assert bad_plan == (0,)
    similar = conn.execute(
        "select min(jsonb_array_length(similar_past_items)) from marts.sell_through_projection"
    ).fetchone()
    assert similar is not None
    assert int(str(similar[0])) >= 1
    # Every mart row carries its reasons: "why is this customer at churn risk?"
    for mart, column in {
        "customer_scores": "churn_reasons",
        "offer_recommendations": "reasons",
        "demand_forecast": "reasons",
        "sell_through_projection": "reasons",
    }.items():
        row = conn.execute(
            f"select count(*), count({column} -> 0 ->> 'feature') from marts.{mart}"
        ).fetchone()
        assert row is not None
        rows, explained = (int(str(v)) for v in row)
        assert rows == explained > 0, mart


def test_every_step_is_logged_with_counters(conn: Conn, two_days: tuple[RunSummary, RunSummary]) -> None:
    _, second = two_days
    found = conn.execute(
        "select step, status from ml.pipeline_runs where run_id = %s", [second.run_id]
    ).fetchall()
    steps = {str(name): str(status) for name, status in found}
    assert steps == dict.fromkeys(
        [
            "build:features",
            "drift",
            "train",
            "score:customer",
            "score:offer_redemption",
            "score:sell_through",
            "score:demand",
            "monitor",
            "build:marts",
        ],
        "succeeded",
    )
    counters = conn.execute(
        "select counters from ml.pipeline_runs where run_id = %s and step = 'build:features'", [second.run_id]
    ).fetchone()
    assert counters is not None
    assert counters[0]["candidate_pairs"] > 0  # type: ignore[index]


@dataclass(frozen=True)
class Backtested:
    """A past date scored with today's champions and backtested on the labels realised since."""

    run_date: date
    past: date
    done: dict[tuple[str, date], Backtest]
    #: (purchase probability, purchased label) of every scored customer whose label matured
    purchases: list[tuple[float, int]]


@pytest.fixture(scope="module")
def backtested(pg_settings: Settings, two_days: tuple[RunSummary, RunSummary]) -> Backtested:
    """Scores of a date 15 weeks before the second run, when every label but a year's spend
    has matured, backtested once; the report's trend and coverage charts draw these."""
    _, second = two_days
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        past = scalar(
            conn,
            "select max(as_of_date) from features.customer_features where as_of_date <= %s",
            [second.as_of - timedelta(weeks=15)],
        )
        score(conn, as_of=past)
        try:
            done = {(b.model_name, b.as_of_date): b for b in backtest(conn, model_specs(), second.as_of)}
            purchases = conn.execute(
                """
                select s.purchase_probability, f.purchased_in_horizon::int
                from scores.customer s join features.customer_features f using (customer_id, as_of_date)
                where s.as_of_date = %s and f.purchased_in_horizon is not null
                """,
                [past],
            ).fetchall()
        finally:
            # Later tests expect the scored dates of the daily runs only; the backtests stay.
            for table in ("customer", "offer_redemption", "sell_through", "demand_forecast"):
                conn.execute(f"drop table if exists scores.{table}_{past:%Y%m%d}")
    return Backtested(second.as_of, past, done, purchases)


def test_scores_whose_labels_matured_are_backtested_once(
    pg_settings: Settings, conn: Conn, backtested: Backtested
) -> None:
    from sklearn.metrics import roc_auc_score

    from storecast.build import build

    specs = model_specs()
    past, done, pairs = backtested.past, backtested.done, backtested.purchases
    assert set(done) == {(name, past) for name in ("purchase_30d", "churn_90d", "sell_through", "demand")}
    # The metric is computed on the stored scores against the labels realised since.
    stored = conn.execute(
        "select value, n_rows from ml.backtests where model_name = 'purchase_30d' and as_of_date = %s "
        "and metric = 'roc_auc' and horizon = 0",
        [past],
    ).fetchone()
    assert stored is not None
    assert stored[1] == len(pairs) > 0
    assert stored[0] == pytest.approx(roc_auc_score([p[1] for p in pairs], [p[0] for p in pairs]))
    # Demand: every horizon, with interval coverage; a classifier's reliability table sums to its rows.
    demand = done[("demand", past)]
    assert set(demand.metrics) == {
        0,
        *range(1, int(specs["demand"].horizon_days / specs["demand"].period_days) + 1),
    }
    assert 0 <= demand.metrics[0]["coverage_80"] <= demand.metrics[0]["coverage_95"] <= 1
    assert sum(n for *_, n in done[("churn_90d", past)].reliability) == done[("churn_90d", past)].counts[0]
    # A year's spend has not matured; nothing is computed twice.
    assert backtest(conn, specs, backtested.run_date) == []
    build(pg_settings, select=["model_performance"])
    row = conn.execute(
        "select metric_value, test_value, is_champion from marts.model_performance "
        "where model_name = 'purchase_30d' and as_of_date = %s and metric = 'roc_auc' and horizon = 0",
        [past],
    ).fetchone()
    assert row is not None
    assert row[0] == pytest.approx(stored[0])
    assert row[1] is not None
    assert row[2] is True


def test_offers_scored_as_candidates_are_backtested_on_their_later_impressions(
    conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    _, second = two_days
    spec = model_specs()["offer_redemption_7d"]
    version = scalar(
        conn,
        "select version from ml.model_versions where model_name = %s and status = 'champion'",
        [spec.name],
    )
    # A date 60 days back: the impressions of the week after it have matured labels.
    past = scalar(conn, "select max(as_of_date) - 60 from features.customer_offer_features")
    shown = conn.execute(
        "select customer_id, offer_id from features.customer_offer_features "
        "where as_of_date >= %s and as_of_date < %s + %s and redeemed_within_7d is not null group by 1, 2",
        [past, past, spec.horizon_days],
    ).fetchall()
    assert shown
    never = conn.execute(
        "select c.customer_id, o.offer_id from raw.customers c cross join raw.offers o "
        "where not exists (select 1 from raw.impressions i where i.customer_id = c.customer_id "
        "and i.offer_id = o.offer_id) limit 20"
    ).fetchall()
    pairs = [*shown, *never]
    probability = np.linspace(0.05, 0.95, len(pairs))
    partition = f"offer_redemption_{past:%Y%m%d}"
    conn.execute(
        f"create table scores.{partition} partition of scores.offer_redemption for values in ('{past}')"
    )
    try:
        with conn.cursor() as cursor:
            cursor.executemany(
                "insert into scores.offer_redemption (as_of_date, customer_id, offer_id, probability, model_name, "
                "model_version, run_id) values (%s, %s, %s, %s, %s, %s, 0)",
                [
                    (past, c, o, float(p), spec.name, version)
                    for (c, o), p in zip(pairs, probability, strict=True)
                ],
            )
        done = [b for b in backtest(conn, model_specs(), second.as_of) if b.model_name == spec.name]
        assert [b.as_of_date for b in done] == [past]
        result = done[0]
        # Only the pairs shown within the horizon after the date have a label.
        assert result.counts[0] == len(shown)
        margins: dict[object, float] = {}
        for offer, margin in conn.execute("select offer_id, margin_impact::float8 from raw.offers"):
            margins[offer] = float(str(margin))
        expected: dict[object, list[float]] = {}
        for (customer, offer), p in sorted(
            zip(shown, probability[: len(shown)], strict=True), key=lambda item: -item[1]
        ):
            expected.setdefault(customer, []).append(float(p) * margins[offer])
        k = spec.top_k
        assert result.metrics[0][f"expected_margin_at_{k}"] == pytest.approx(
            np.mean([sum(values[:k]) for values in expected.values()])
        )
        assert f"realised_margin_at_{k}" in result.metrics[0]
    finally:
        conn.execute(f"drop table scores.{partition}")
        conn.execute("delete from ml.backtests where model_name = %s and as_of_date = %s", [spec.name, past])


#: Chart kinds the report draws with the data of this module (two daily runs and the
#: backtests of a past date): every one of them must draw.
REPORT_CHARTS = {"trend", "features", "reliability", "gains", "lift", "forecast", "coverage", "drift"}


def test_the_report_draws_every_chart_in_a_real_browser(
    backtested: Backtested, cli_env: dict[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    written = CliRunner().invoke(app, ["report", "--out", str(tmp_path)], env=cli_env)
    assert written.exit_code == 0, written.output
    page_file = tmp_path / "report.html"
    html = page_file.read_text()
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    chromium = chromium_path()
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(page_file.as_uri())
        charts = page.evaluate(
            """() => [...document.querySelectorAll('figure.chart')].map(figure => {
                const svg = figure.querySelector('svg');
                const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
                const marks = [...figure.querySelectorAll('.mark')].filter(mark => {
                    const b = mark.getBoundingClientRect();
                    return b.width > 0 || b.height > 0;
                }).length;
                return {kind: figure.dataset.kind, empty: figure.classList.contains('empty'),
                        width: box.width, height: box.height, marks: marks};
            })"""
        )
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    drawn = [c for c in charts if not c["empty"]]
    for chart in drawn:
        assert chart["width"] > 0, chart
        assert chart["height"] > 0, chart
        assert chart["marks"] > 0, chart
    assert {c["kind"] for c in drawn} >= REPORT_CHARTS, charts
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_drift_past_the_setting_retrains_and_none_keeps_the_champion(
    conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    from storecast.scoring.drift import drift
    from storecast.scoring.pipeline import Evidence, due_for_training
    from storecast.training.spec import Schedule

    first, second = two_days
    # The second run (a day without a schedule) logged a decision for every model, with its reason.
    decisions = scalar(
        conn,
        "select counters -> 'decisions' from ml.pipeline_runs where run_id = %s and step = 'train'",
        [second.run_id],
    )
    assert set(decisions) == set(model_specs())
    assert all(d.startswith(("keep: not scheduled", "train: drift: ")) for d in decisions.values()), decisions
    # On the champions' first scored date nothing has moved: kept (off its schedule), saying so.
    specs = model_specs()
    unscheduled = specs["purchase_30d"].model_copy(update={"retrain": Schedule(weekdays=[])})
    evidence = Evidence(drift_psi=0.25, backtest_margin=0.05)
    due, reason = due_for_training(conn, unscheduled, first.as_of, False, evidence)
    assert due is False
    assert "PSI" in reason
    assert "+0.000 since" in reason
    # The next day with the customers' recency shifted by three years: retrained, for that reason.
    with conn.transaction(force_rollback=True):
        conn.execute(
            "update features.customer_features set recency_days = recency_days + 1095 where as_of_date = %s",
            [second.as_of],
        )
        said: list[str] = []
        drift(conn, specs, second.as_of, progress=said.append)
        due, reason = due_for_training(conn, unscheduled, second.as_of, False, evidence)
    # The run's line names the feature that moved beyond what the test dates showed.
    line = next(s for s in said if s.startswith("drift purchase_30d"))
    assert f"on {second.as_of}: recency_days PSI" in line, said
    assert "(its test dates up to " in line
    assert due is True
    assert reason.startswith("drift: recency_days PSI")
    assert reason.endswith("> 0.25")
    # Once a version has been trained on that drift (a candidate that did not beat the
    # champion), drift counts from there: the same drift trains no other, day after day.
    with conn.transaction(force_rollback=True):
        conn.execute(
            "update features.customer_features set recency_days = recency_days + 1095 where as_of_date = %s",
            [second.as_of],
        )
        drift(conn, specs, second.as_of)
        conn.execute(
            "insert into ml.model_versions select (jsonb_populate_record(null::ml.model_versions, to_jsonb(v) "
            "|| jsonb_build_object('version', v.version + 1000, 'status', 'candidate', 'trained_as_of', %s))).* "
            "from ml.model_versions as v where v.model_name = 'purchase_30d' and v.status = 'champion'",
            [second.as_of],
        )
        again, reason_again = due_for_training(conn, unscheduled, second.as_of, False, evidence)
    assert again is False
    assert f"+0.000 since {second.as_of} <= 0.25" in reason_again
    # Demand's target time of year moved far (every row's first sine at 0.9), and every
    # category's target period on promotion: their drift is recorded, but a calendar feature
    # moves with the date by design and a planned one is set anew each date: neither retrains.
    unscheduled_demand = specs["demand"].model_copy(update={"retrain": Schedule(weekdays=[])})
    moved_far = ["target_year_sin_1", "category_promo_share"]
    with conn.transaction(force_rollback=True):
        conn.execute(
            "update features.demand_features set target_year_sin_1 = 0.9, category_promo_share = 0.9 "
            "where as_of_date = %s",
            [second.as_of],
        )
        drift(conn, specs, second.as_of)
        moved = {
            feature: scalar(
                conn,
                "select psi from ml.feature_drift where model_name = 'demand' and as_of_date = %s "
                "and feature = %s",
                [second.as_of, feature],
            )
            for feature in moved_far
        }
        _, demand_reason = due_for_training(conn, unscheduled_demand, second.as_of, False, evidence)
    assert "target_year_sin_1" in unscheduled_demand.features.calendar
    assert "category_promo_share" in unscheduled_demand.features.planned
    assert all(moved[f] > 1 for f in moved_far), moved
    assert not any(f in demand_reason for f in moved_far), demand_reason
    assert "drift: " in demand_reason


def test_a_failed_step_stops_the_run_visibly(
    pg_settings: Settings, cli_env: dict[str, str], conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    runner = CliRunner()
    original = conn.execute(
        "select onnx_sha256 from ml.model_versions where model_name = 'demand' and status = 'champion'"
    ).fetchone()
    assert original is not None
    conn.execute(
        "update ml.model_versions set onnx_sha256 = 'tampered' where model_name = 'demand' and status = 'champion'"
    )
    try:
        # On the second run's date (a Tuesday) no model is due for retraining, so the
        # run reaches the scoring step, where the tampered model must stop it.
        _, second = two_days
        result = runner.invoke(app, ["run", "--as-of", second.as_of.isoformat()], env=cli_env)
    finally:
        conn.execute(
            "update ml.model_versions set onnx_sha256 = %s where model_name = 'demand' and status = 'champion'",
            [original[0]],
        )
    assert result.exit_code == 1
    assert "error: scoring demand failed: demand v1" in result.output
    assert "does not match its sha256" in result.output
    last = conn.execute(
        "select step, status from ml.pipeline_runs where run_id = (select max(run_id) from ml.pipeline_runs) "
        "order by started_at"
    ).fetchall()
    assert ("score:demand", "failed") in last
    assert all(step != "build:marts" for step, _ in last)  # the run stopped at the failure
    runs = runner.invoke(app, ["runs", "--last", "1"], env={**cli_env, "COLUMNS": "250"})
    assert "failed" in runs.output


def test_a_second_run_is_refused_naming_the_first_or_waits_for_it(
    pg_settings: Settings, cli_env: dict[str, str], conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    _, second = two_days
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as holder:
        # Stands for a run at its train step: its step row and the pipeline lock.
        run_id = new_run_id(holder)
        with step(holder, run_id, second.as_of, "train"), pipeline_lock(holder):
            refused = CliRunner().invoke(app, ["run", "--no-wait"], env={**cli_env, "COLUMNS": "250"})
            assert refused.exit_code == 1
            assert f"run {run_id} (step train, since" in refused.output
            assert "is running on this database" in refused.output
            outcome: list[object] = []

            def score_customers() -> None:
                with psycopg.connect(pg_settings.conninfo, autocommit=True) as other:
                    outcome.append(score(other, ["customer"], second.as_of))

            waiting = threading.Thread(target=score_customers)
            waiting.start()
            time.sleep(2)
            assert waiting.is_alive()
            assert not outcome
        waiting.join(120)
        assert not waiting.is_alive()
        assert len(outcome) == 1
        assert outcome[0].results[0].rows > 0  # type: ignore[attr-defined]


def test_a_step_whose_process_died_is_marked_abandoned(
    pg_settings: Settings, cli_env: dict[str, str], conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    _, second = two_days
    dying = psycopg.connect(pg_settings.conninfo, autocommit=True)
    run_id = new_run_id(dying)
    started = step(dying, run_id, second.as_of, "score:demand")
    started.__enter__()
    pid = dying.info.backend_pid
    conn.execute("select pg_terminate_backend(%s)", [pid])
    dying.close()
    still = conn.execute("select status from ml.pipeline_runs where run_id = %s", [run_id]).fetchone()
    assert still == ("running",)  # nothing has looked yet
    shown = CliRunner().invoke(app, ["runs", "--last", "3"], env={**cli_env, "COLUMNS": "250"})
    assert shown.exit_code == 0
    status, message = conn.execute(  # type: ignore[misc]
        "select status, message from ml.pipeline_runs where run_id = %s", [run_id]
    ).fetchone()
    assert status == "abandoned"
    assert "its process died" in str(message)
    assert "abandoned" in shown.output


def test_a_first_version_worse_than_its_baseline_says_so(
    conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    scores = champion_scores(conn)
    assert {s.model_name for s in scores} >= {"purchase_30d", "demand"}
    for s in scores:
        row = conn.execute(
            "select status_reason from ml.model_versions where model_name = %s and version = %s",
            [s.model_name, s.version],
        ).fetchone()
        assert row is not None
        reason = str(row[0])
        if reason.startswith("first version"):
            assert ("does NOT beat" in reason) == (not s.beats_baseline), (s, reason)


def test_a_date_scored_off_the_grid_stays_in_each_table_until_its_backtests_read_it(
    pg_settings: Settings, conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    # The second run scored a Tuesday. Once the next day is scored, the Tuesday is a date
    # scored before, off the weekly grid: kept (not trained on) for its backtests, and let
    # go once each model scored on it has one, table by table: with every model but
    # demand backtested it leaves the customers' and the offer candidates' tables and
    # stays in demand's, so a job run every day keeps a day's demand rows for demand's
    # horizon, not for the customer value's year.
    _, second = two_days
    assert second.as_of.isoweekday() != 1
    scored = [
        (model, int(version))
        for (versions,) in conn.execute(
            "select counters -> 'model_versions' from ml.pipeline_runs "
            "where run_id = %s and step like 'score:%%' and status = 'succeeded'",
            [second.run_id],
        ).fetchall()
        if isinstance(versions, dict)
        for model, version in versions.items()
    ]
    spine = (
        "select is_scoring_date, is_training_date, kept_for_tables from features.as_of_dates "
        "where as_of_date = %s"
    )
    tables = ("customer_features", "customer_offer_candidates", "demand_history", "demand_features")
    next_day = second.as_of + timedelta(days=1)
    rows_on = "select count(*) from features.{} where as_of_date = %s"

    def backtested(models: list[tuple[str, int]]) -> None:
        for model, version in models:
            conn.execute(
                "insert into ml.backtests (model_name, model_version, as_of_date, metric, value, n_rows) "
                "values (%s, %s, %s, 'test', 0, 1) on conflict do nothing",
                [model, version, second.as_of],
            )

    next_config = load_config().with_as_of(next_day)
    try:
        backtested([s for s in scored if s[0] != "demand"])
        build(pg_settings, next_config, select=["as_of_dates", *tables])
        partly = conn.execute(spine, [second.as_of]).fetchall()
        rows = {table: scalar(conn, rows_on.format(table), [second.as_of]) for table in tables}
        backtested(scored)
        build(pg_settings, next_config, select=["as_of_dates"])
        fully = conn.execute(spine, [second.as_of]).fetchall()
    finally:
        conn.execute("delete from ml.backtests where metric = 'test' and as_of_date = %s", [second.as_of])
        for table in tables:
            conn.execute(f"delete from features.{table} where as_of_date = %s", [next_day])
        build(pg_settings, load_config().with_as_of(second.as_of), select=["as_of_dates", *tables])
    assert {"demand", "purchase_30d", "churn_90d", "clv_365d"} <= {model for model, _ in scored}
    assert partly == [(False, False, ["demand_features"])]
    assert fully == []
    assert rows["demand_history"] > 0
    assert rows["demand_features"] > 0
    assert rows["customer_features"] == rows["customer_offer_candidates"] == 0
    assert conn.execute(spine, [second.as_of]).fetchall() == [(True, False, None)]
    for table in ("customer_features", "customer_offer_candidates"):
        assert scalar(conn, rows_on.format(table), [second.as_of]) > 0


def test_a_date_scored_before_is_built_again_only_when_its_labels_have_all_matured(
    pg_settings: Settings, conn: Conn, two_days: tuple[RunSummary, RunSummary]
) -> None:
    # Two Wednesdays scored with demand before and not backtested yet: one whose 28-day
    # horizon the data has observed, one whose first days only. The open one is not rebuilt
    # on every run while its horizon is (its forecasts are written; a daily job keeps a
    # horizon's worth of such dates) and has no label until its backtest can read them
    # all, so that a build from scratch, which builds it whole, agrees.
    first, second = two_days
    observed = first.as_of
    # The Wednesday of the week ten days before the data ends: 8-14 days before it.
    ten_back = observed - timedelta(days=10)
    open_date = ten_back - timedelta(days=ten_back.isoweekday() - 3)
    matured = open_date - timedelta(weeks=6)
    version = scalar(conn, "select max(version) from ml.model_versions where model_name = 'demand'")
    config = load_config().with_as_of(second.as_of)
    # Rows of a date whose target period has been observed: labelled, or not though in stock.
    observed_targets = (
        "select count(*) from features.demand_features where as_of_date = %s and target_date < %s and "
    )
    labelled, unlabelled = "units is not null", "units is null and target_days_out_of_stock is null"
    built_in = "select array_agg(distinct xmin::text) from features.demand_features where as_of_date = %s"
    runs = []
    try:
        for scored_on in (matured, open_date):
            runs.append(new_run_id(conn))
            with step(conn, runs[-1], scored_on, "score:demand") as counters:
                counters["model_versions"] = {"demand": str(version)}
        build(pg_settings, config, select=["as_of_dates", "demand_history", "demand_features"])
        first_labels = {
            d: [scalar(conn, observed_targets + rows, [d, observed]) for rows in (labelled, unlabelled)]
            for d in (matured, open_date)
        }
        first_build = {d: scalar(conn, built_in, [d]) for d in (open_date, second.as_of)}
        build(pg_settings, config, select=["as_of_dates", "demand_history", "demand_features"])
        second_build = {d: scalar(conn, built_in, [d]) for d in (open_date, second.as_of)}
    finally:
        conn.execute("delete from ml.pipeline_runs where run_id = any(%s)", [runs])
        build(pg_settings, config, select=["as_of_dates", "demand_history", "demand_features"])
    assert open_date.isoweekday() == matured.isoweekday() == 3
    assert matured + timedelta(days=28) <= observed < open_date + timedelta(days=28)
    # Every observed target of the matured date is labelled; none of the open date's.
    assert first_labels[matured][0] > 0
    assert first_labels[matured][1] == 0
    assert first_labels[open_date][0] == 0
    assert first_labels[open_date][1] > 0
    # The scoring date, whose horizon is open too, is built again; the open date is not.
    assert second_build[second.as_of] != first_build[second.as_of]
    assert second_build[open_date] == first_build[open_date]
    assert not scalar(
        conn, "select exists (select from features.demand_features where as_of_date = %s)", [open_date]
    )
