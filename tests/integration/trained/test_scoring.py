"""The scoring job on the tiny sample: complete, idempotent, atomic, and strict about its inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import psycopg
import pytest

import storecast.training.data
from storecast.database.pgbinary import copy_columns
from storecast.db import Conn
from storecast.scoring import partitions
from storecast.scoring import score as scoring
from storecast.scoring.families import FAMILIES, ScoringError
from storecast.scoring.inference import predict
from storecast.scoring.score import score, score_family, scoring_date
from storecast.settings import Settings
from storecast.training.data import FeatureReader
from storecast.training.errors import FeatureError
from storecast.training.explain import TOP_REASONS, Explainer
from storecast.training.registry import champion
from storecast.training.spec import model_specs
from storecast.training.train import TrainResult

SCORE_TABLES = {
    "customer": "scores.customer",
    "offer_redemption": "scores.offer_redemption",
    "sell_through": "scores.sell_through",
    "demand": "scores.demand_forecast",
}


def _count(conn: Conn, table: str, as_of: date) -> int:
    row = conn.execute(f"select count(*) from {table} where as_of_date = %s", [as_of]).fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.fixture(scope="module")
def scored(pg_settings: Settings, trained: dict[str, TrainResult]) -> date:
    """The shared trained tiny sample, everything scored once."""
    with psycopg.connect(pg_settings.conninfo, autocommit=True) as conn:
        score(conn)
        return scoring_date(conn)


def test_every_scoring_row_gets_a_prediction(conn: Conn, scored: date) -> None:
    expected = {
        "customer": "select count(*) from features.customer_features where as_of_date = %(d)s",
        "offer_redemption": "select count(*) from features.customer_offer_candidates where as_of_date = %(d)s",
        "demand": "select count(*) from features.demand_features where as_of_date = %(d)s",
    }
    for family, query in expected.items():
        row = conn.execute(query, {"d": scored}).fetchone()
        assert row is not None
        assert _count(conn, SCORE_TABLES[family], scored) == int(str(row[0])) > 0, family
    assert _count(conn, "scores.sell_through", scored) > 0
    versions = conn.execute(
        "select distinct purchase_model_version, churn_model_version, clv_model_version from scores.customer"
    ).fetchall()
    assert versions == [(1, 1, 1)]


def test_forecast_intervals_are_ordered_and_dated(conn: Conn, scored: date) -> None:
    bad = conn.execute(
        "select count(*) from scores.demand_forecast where not (lower_95 <= lower_80 and lower_80 <= units "
        "and units <= upper_80 and upper_80 <= upper_95) or target_date <> as_of_date + horizon - 1 "
        # NaN sorts above every number in Postgres, so the comparisons above would pass it.
        "or greatest(lower_95, lower_80, units, upper_80, upper_95) = 'NaN'::float8"
    ).fetchone()
    assert bad == (0,)


def _upper_reach(conn: Conn, scored: date) -> dict[tuple[str, int], float]:
    rows = conn.execute(
        "select product_id || '|' || store_id, horizon, upper_80 - units from scores.demand_forecast "
        "where as_of_date = %s",
        [scored],
    ).fetchall()
    return {(str(r[0]), int(str(r[1]))): float(str(r[2])) for r in rows}


def test_forecast_intervals_take_each_series_spread(conn: Conn, scored: date) -> None:
    model = champion(conn, "demand")
    assert model is not None
    assert model.intervals is not None
    before = _upper_reach(conn, scored)
    # The tiny sample validates on too few periods for spreads of its own (a series needs
    # MIN_SPREAD_PERIODS): the largest series is given one three times its current one.
    spreads = model.intervals["series_spread"]
    widened = max(
        {n for n, _ in before}, key=lambda name: sum(v for (n, _), v in before.items() if n == name)
    )
    with conn.transaction(force_rollback=True):
        conn.execute(
            "update ml.model_versions set intervals = jsonb_set(intervals, array['series_spread', %s], "
            "to_jsonb(%s::float8)) where model_name = 'demand' and status = 'champion'",
            [widened, 3 * spreads.get(widened, 1.0)],
        )
        score_family(conn, FAMILIES["demand"], scored, run_id=0)
        after = _upper_reach(conn, scored)
    assert after.keys() == before.keys()
    assert before[(widened, 1)] > 0
    for key, reach in before.items():
        np.testing.assert_allclose(
            after[key], 3 * reach if key[0] == widened else reach, rtol=1e-6, atol=1e-9
        )


def test_forecast_intervals_widen_with_the_width_column(conn: Conn, scored: date) -> None:
    before = _upper_reach(conn, scored)
    # The daily sample has no width column's values (a year back is not read by day) and so
    # no slope: the champion is given one, and the largest series a value of -0.5, committed
    # (scoring reads the features on a connection of its own) and set back to NULL after.
    widened = max(
        {n for n, _ in before}, key=lambda name: sum(v for (n, _), v in before.items() if n == name)
    )
    product, store = (int(k) for k in widened.split("|"))
    value = "update features.demand_features set last_year_log_change = %s where as_of_date = %s"
    try:
        conn.execute(value + " and product_id = %s and store_id = %s", [-0.5, scored, product, store])
        with conn.transaction(force_rollback=True):
            conn.execute(
                'update ml.model_versions set intervals = intervals || \'{"width_slope": 2, "width_fill": 0.1}\' '
                "where model_name = 'demand' and status = 'champion'"
            )
            score_family(conn, FAMILIES["demand"], scored, run_id=0)
            after = _upper_reach(conn, scored)
    finally:
        conn.execute(value, [None, scored])
    assert after.keys() == before.keys()
    # 1 + 2 x |-0.5| for the series with a value, 1 + 2 x 0.1 (the median) for the others.
    for key, reach in before.items():
        np.testing.assert_allclose(
            after[key], (2.0 if key[0] == widened else 1.2) * reach, rtol=1e-6, atol=1e-9
        )


def test_rescoring_a_date_replaces_its_rows(conn: Conn, scored: date) -> None:
    before = {t: _count(conn, t, scored) for t in SCORE_TABLES.values()}
    first = conn.execute(
        "select sum(purchase_probability) from scores.customer where as_of_date = %s", [scored]
    ).fetchone()
    score(conn)
    assert {t: _count(conn, t, scored) for t in SCORE_TABLES.values()} == before
    again = conn.execute(
        "select sum(purchase_probability) from scores.customer where as_of_date = %s", [scored]
    ).fetchone()
    assert first == again
    runs = conn.execute(
        "select count(distinct run_id) from scores.customer where as_of_date = %s", [scored]
    ).fetchone()
    assert runs == (1,)  # the rerun's rows replaced the first run's


def _fail_at(stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make scoring fail at ``stage``: after the first chunks are already staged, or after the swap."""
    calls = {"n": 0}

    def on_third_call(real: Callable[..., object]) -> Callable[..., object]:
        def failing(*args: object, **kwargs: object) -> object:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError(f"{stage} failed (injected)")
            return real(*args, **kwargs)

        return failing

    monkeypatch.setattr(storecast.training.data, "CHUNK_ROWS", 100)
    if stage == "read":
        monkeypatch.setattr(FeatureReader, "_frame", on_third_call(FeatureReader._frame))
    elif stage == "score":
        monkeypatch.setattr(scoring, "predict", on_third_call(predict))
    elif stage == "write":
        monkeypatch.setattr(partitions, "copy_columns", on_third_call(copy_columns))
    else:
        real_swap = partitions.replace_partition

        def swap_then_fail(*args: object, **kwargs: object) -> None:
            real_swap(*args, **kwargs)  # type: ignore[arg-type]
            raise RuntimeError("swap failed (injected)")

        monkeypatch.setattr(partitions, "replace_partition", swap_then_fail)


@pytest.mark.parametrize("stage", ["read", "score", "write", "swap"])
def test_a_failure_at_any_stage_keeps_the_previous_rows(
    conn: Conn, scored: date, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    def state() -> list[tuple[object, ...]]:
        return conn.execute(
            "select run_id, count(*), sum(units) from scores.demand_forecast where as_of_date = %s group by 1",
            [scored],
        ).fetchall()

    before = state()
    _fail_at(stage, monkeypatch)
    with pytest.raises(RuntimeError, match=f"{stage} failed"):
        score(conn, ["demand"])
    assert state() == before
    assert conn.execute("select to_regclass('scores._staging_demand_forecast')").fetchone() == (None,)
    failed = conn.execute(
        "select status, message from ml.pipeline_runs where step = 'score:demand' order by run_id desc limit 1"
    ).fetchone()
    assert failed is not None
    assert failed[0] == "failed"
    assert "injected" in str(failed[1])


def test_each_scored_date_is_one_partition(conn: Conn, scored: date) -> None:
    for table in SCORE_TABLES.values():
        partitions = conn.execute(
            "select c.relname, pg_get_expr(c.relpartbound, c.oid) from pg_inherits i "
            "join pg_class c on c.oid = i.inhrelid where i.inhparent = %s::regclass",
            [table],
        ).fetchall()
        dates = [row[0] for row in conn.execute(f"select distinct as_of_date from {table}").fetchall()]
        assert scored in dates
        name = table.split(".")[1]
        expected = {(f"{name}_{d:%Y%m%d}", f"FOR VALUES IN ('{d}')") for d in dates}
        assert set(partitions) == expected, table


def _refused(
    conn: Conn, scored: date, family: str, change: str, match: str, error: type[Exception] = ScoringError
) -> None:
    """After ``change`` (rolled back after), scoring ``family`` is refused with ``error``
    matching ``match``."""
    with conn.transaction(force_rollback=True):
        conn.execute(change)
        with pytest.raises(error, match=match):
            score_family(conn, FAMILIES[family], scored, run_id=0)


def test_a_model_whose_columns_differ_from_its_stored_spec_is_refused(conn: Conn, scored: date) -> None:
    _refused(
        conn,
        scored,
        "customer",
        "update ml.model_versions set feature_columns = array_remove(feature_columns, 'recency_days') "
        "where model_name = 'churn_90d' and status = 'champion'",
        r"churn_90d v1: its feature columns do not match its stored spec",
    )


def test_a_model_trained_on_other_features_is_refused(conn: Conn, scored: date) -> None:
    _refused(
        conn,
        scored,
        "customer",
        "update ml.model_versions set feature_columns = array_remove(feature_columns, 'recency_days'), "
        "spec = jsonb_set(spec, '{features,numeric}', (spec -> 'features' -> 'numeric') - 'recency_days') "
        "where model_name = 'churn_90d' and status = 'champion'",
        r"churn_90d v1 was trained on other features.*spec only: \['recency_days'\]",
    )


def test_a_tampered_model_is_refused(conn: Conn, scored: date) -> None:
    _refused(
        conn,
        scored,
        "demand",
        "update ml.model_versions set onnx_sha256 = 'x' where model_name = 'demand' and status = 'champion'",
        "does not match its sha256",
    )


def test_a_missing_feature_column_is_named(conn: Conn, scored: date) -> None:
    _refused(
        conn,
        scored,
        "sell_through",
        "alter table features.item_features rename column neighbour_count to neighbours",
        "missing columns: neighbour_count",
        FeatureError,
    )


def test_two_writers_of_one_table_are_serialised(pg_settings: Settings, conn: Conn, scored: date) -> None:
    # score() holds the pipeline lock (tested with the daily run); below it, two writers of
    # one score table still take turns: the second waits for the first's commit.
    import threading
    import time

    done: list[int] = []
    with psycopg.connect(pg_settings.conninfo) as other:
        other.execute(
            "select pg_advisory_xact_lock(hashtext('storecast.score.' || %s))", ["scores.sell_through"]
        )
        writer = threading.Thread(
            target=lambda: done.append(score_family(conn, FAMILIES["sell_through"], scored, run_id=0).rows)
        )
        writer.start()
        time.sleep(1.5)
        assert writer.is_alive()
        assert done == []
        other.rollback()
    writer.join(60)
    assert not writer.is_alive()
    assert done[0] > 0


def test_the_analyst_role_reads_but_cannot_write(conn: Conn, scored: date) -> None:
    with conn.transaction():
        conn.execute("set local role storecast_analyst")
        assert conn.execute("select count(*) from scores.customer").fetchone() != (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("delete from scores.customer")
    with conn.transaction():
        conn.execute("set local role storecast_analyst")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(*) from raw.orders")


def test_score_tables_views_and_scoring_agree_on_the_columns(conn: Conn) -> None:
    # One definition (scoring.families): init.sql's tables, the stg_scores__* views and the
    # demand spec's interval levels must all follow it.
    import re

    from storecast.config import PROJECT_DIR

    views = {
        "customer": "stg_scores__customers",
        "offer_redemption": "stg_scores__offer_redemptions",
        "sell_through": "stg_scores__sell_throughs",
        "demand": "stg_scores__demand_forecasts",
    }
    assert set(views) == set(FAMILIES)
    for name, family in FAMILIES.items():
        schema, table = family.table.split(".")
        in_table = [
            str(r[0])
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s"
                " order by ordinal_position",
                [schema, table],
            ).fetchall()
        ]
        assert sorted(in_table) == sorted(family.columns()), family.table
        view = (PROJECT_DIR / "models_sql" / "staging" / f"{views[name]}.sql").read_text()
        selected = re.search(r"final as \(\s*select(.*?)from source", view, flags=re.S)
        assert selected is not None, views[name]
        read = [part.split(" as ")[0].strip() for part in selected.group(1).split(",")]
        assert sorted(read) == sorted(family.columns()), views[name]
    levels = model_specs()["demand"].interval_levels
    assert [round(level * 100) for level in levels] == list(FAMILIES["demand"].interval_levels)


def test_every_score_row_keeps_its_top_reasons(conn: Conn, scored: date) -> None:
    for family in FAMILIES.values():
        for output in family.outputs:
            column = output.reasons_column
            rows = conn.execute(
                f"select count(*), count({column}), max(jsonb_array_length({column})), "
                f"min(jsonb_array_length({column})) from {family.table} where as_of_date = %s",
                [scored],
            ).fetchone()
            assert rows is not None
            total, with_reasons, longest, shortest = (int(str(v)) for v in rows)
            assert total == with_reasons, f"{family.table}.{column}: rows without reasons"
            # As many reasons as the model has terms that can contribute, up to TOP_REASONS (a
            # zero contribution is no reason). BG/NBD's quantities count as the columns they
            # are credited to: BG/NBD + Gamma-Gamma as is has one quantity but four columns.
            served = champion(conn, output.model)
            assert served is not None
            assert served.explainer is not None
            parameters = Explainer.load(served.explainer).parameters
            btyd = parameters.get("btyd") or {"block": [0, 0], "columns": []}
            start, stop = btyd["block"]
            terms = (
                len(
                    {
                        g
                        for i, (g, c) in enumerate(zip(parameters["groups"], parameters["coef"], strict=True))
                        if c != 0 and not start <= i < stop
                    }
                    | set(btyd["columns"])
                )
                if parameters["kind"] == "linear"
                else len(set(parameters["groups"]))
            )
            assert longest == min(TOP_REASONS, terms), (family.table, column, longest, terms)
            assert shortest >= 1, (family.table, column, shortest)
            features = set(model_specs()[output.model].feature_columns)
            items = conn.execute(
                f"select r ->> 'feature', r ->> 'direction', (r ->> 'contribution')::float8 "
                f"from {family.table} s, jsonb_array_elements(s.{column}) r where s.as_of_date = %s",
                [scored],
            ).fetchall()
            assert items
            for feature, direction, contribution in items:
                assert feature in features, (output.model, feature)
                assert (direction == "up") == (float(str(contribution)) > 0), (output.model, feature)


def test_reasons_can_be_turned_off(conn: Conn, scored: date) -> None:
    with conn.transaction(force_rollback=True):
        score_family(conn, FAMILIES["sell_through"], scored, run_id=0, reasons=0)
        row = conn.execute(
            "select count(*), count(reasons) from scores.sell_through where as_of_date = %s", [scored]
        ).fetchone()
        assert row is not None
        rows, with_reasons = (int(str(v)) for v in row)
        assert rows > 0
        assert with_reasons == 0
