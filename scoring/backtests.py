"""Matured-label backtests: the scores stored for a date, against the labels realised since.

Every metric is computed once per model version x scored as-of date, when the label
window of that date has closed by the run's date (for a forecast: every horizon's target
period; for offers, scored as candidates, the pair's first impression within the horizon
after the date and that impression's own label window), with the same functions that score
the test window at training
(:mod:`storecast.training.metrics`), so a backtest reads against the version's own test
figure in ``ml.model_versions.metrics``. Classifiers get AUC, PR-AUC, Brier, log loss,
calibration error and a reliability table (and precision, recall, NDCG and the expected
and realised margin at k per customer for offers); spend models MAE, RMSE, WAPE, bias and Gini; forecasts WAPE, MASE,
bias and interval coverage for all horizons together (horizon 0) and per horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
from psycopg import sql
from psycopg.rows import class_row

from storecast.db import Conn, relation_columns
from storecast.scoring.families import FAMILIES, Family, Output
from storecast.training import metrics as m
from storecast.training.data import as_float8, labelled
from storecast.training.spec import ModelSpec

#: The offer feature holding an offer's margin (its cost per redemption, as in the marts'
#: expected_margin_cost): expected and realised margin at k use it where a ranking model has it.
MARGIN = "margin_impact"


@dataclass
class Backtest:
    """The metrics of one model version on one scored date, by horizon (0: all rows)."""

    model_name: str
    model_version: int
    as_of_date: date
    metrics: dict[int, dict[str, float]]
    #: Labelled rows behind each horizon's metrics (0: all).
    counts: dict[int, int]
    reliability: list[tuple[int, float, float, int]] = field(default_factory=list)


@dataclass(frozen=True)
class _Scored:
    as_of_date: date
    model_version: int


def _due(conn: Conn, family: Family, output: Output, spec: ModelSpec, as_of: date) -> list[_Scored]:
    """Scored dates of ``output``'s model whose label window has closed by ``as_of`` and that
    have no backtest yet, oldest first."""
    version, of_model = output.version_sql()
    query = sql.SQL(
        """
        select distinct s.as_of_date, s.{version} as model_version
        from {table} as s
        where {of_model} and s.{version} is not null and s.as_of_date + %s::interval <= %s
          and not exists (
              select 1 from ml.backtests as b
              where b.model_name = %s and b.model_version = s.{version} and b.as_of_date = s.as_of_date
          )
        order by 1, 2
        """
    ).format(version=version, table=sql.Identifier(*family.table.split(".", 1)), of_model=of_model)
    cursor = conn.cursor(row_factory=class_row(_Scored))
    # Candidates' labels come from events up to a horizon later, each with its own window.
    wait = f"{spec.horizon_days * 2} days" if _from_events(spec) else spec.horizon_interval
    return cursor.execute(query, [wait, as_of, output.model]).fetchall()


def _from_events(spec: ModelSpec) -> bool:
    """Whether the model scores candidates (``scoring_relation``) whose labels are events
    dated after the scored date (an offer shown later), rather than rows of that date."""
    return spec.scoring_relation is not None and spec.time_column in spec.keys


def _joined(
    conn: Conn, family: Family, output: Output, spec: ModelSpec, scored: _Scored, as_of: date
) -> dict[str, npt.NDArray[np.generic]]:
    """The scored rows of that date with their realised label (and, for forecasts, the
    horizon, the seasonal naive forecast and the interval bounds)."""
    version, of_model = output.version_sql()
    # Rows are matched on the spec's keys; the time column joins the scored date only where
    # it is a key (an item's sell-through runs from its launch, whenever it was scored).
    keys = [k for k in spec.keys if k != spec.time_column]
    on = [sql.SQL("f.{k} = s.{k}").format(k=sql.Identifier(k)) for k in keys]
    if spec.time_column in spec.keys:
        on.append(sql.SQL("f.{} = s.as_of_date").format(sql.Identifier(spec.time_column)))
    columns: list[sql.Composable] = [
        sql.SQL("s.{}::float8 as prediction").format(sql.Identifier(output.column)),
        sql.SQL("nullif(f._label, 'NaN') as label"),
    ]
    if spec.group_column:
        columns.append(sql.SQL("s.{}::int8 as grp").format(sql.Identifier(spec.group_column)))
    if spec.group_column and MARGIN in spec.features.numeric:
        columns.append(sql.SQL("f.{}::float8 as margin").format(sql.Identifier(MARGIN)))
    if spec.task == "forecast":
        columns += [
            sql.SQL("s.horizon::int8 as horizon"),
            sql.SQL("coalesce(f.units_seasonal_naive::float8, 'NaN') as naive"),
            *(
                sql.SQL("s.{}::float8 as {}").format(sql.Identifier(name), sql.Identifier(name))
                for level in family.interval_levels
                for name in (f"lower_{level}", f"upper_{level}")
            ),
        ]
    where, params = labelled(spec, as_of)
    label = as_float8(spec.label, relation_columns(conn, spec.relation)[spec.label])
    relation = sql.Identifier(*spec.relation.split(".", 1))
    if _from_events(spec):
        # The pair's first event (an offer shown) within the horizon after the scored date.
        time = sql.Identifier(spec.time_column)
        joined = sql.SQL(
            "join lateral (select *, {label} as _label from {relation} as f where {where} and {on} "
            "and f.{time} >= s.as_of_date and f.{time} < s.as_of_date + {days} order by f.{time} limit 1) "
            "as f on true"
        ).format(
            label=label,
            relation=relation,
            where=where,
            on=sql.SQL(" and ").join(on[: len(keys)]),
            time=time,
            days=sql.Literal(spec.horizon_days),
        )
    else:
        joined = sql.SQL(
            "join (select *, {label} as _label from {relation} where {where}) as f on {on}"
        ).format(label=label, relation=relation, where=where, on=sql.SQL(" and ").join(on))
    query = sql.SQL(
        """
        select {columns}
        from {table} as s
        {joined}
        where s.as_of_date = %s and s.{version} = %s and {of_model}
        """
    ).format(
        columns=sql.SQL(", ").join(columns),
        table=sql.Identifier(*family.table.split(".", 1)),
        joined=joined,
        version=version,
        of_model=of_model,
    )
    cursor = conn.execute(query, [*params, scored.as_of_date, scored.model_version])
    names = [d.name for d in cursor.description or []]
    rows = cursor.fetchall()
    return {name: np.asarray([row[i] for row in rows]) for i, name in enumerate(names)}


def _scalars(values: dict[str, object]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


def _forecast_metrics(
    data: dict[str, npt.NDArray[np.generic]], family: Family
) -> tuple[dict[int, dict[str, float]], dict[int, int]]:
    y, p = data["label"].astype(float), data["prediction"].astype(float)
    horizon, naive = data["horizon"].astype(np.int64), data["naive"].astype(float)
    intervals = {
        str(level): (data[f"lower_{level}"].astype(float), data[f"upper_{level}"].astype(float))
        for level in family.interval_levels
    }

    def block(mask: npt.NDArray[np.bool_]) -> dict[str, float]:
        # One bucket holding every row: the per-bucket breakdown is what `horizon` gives here.
        out = m.forecast_metrics(
            y[mask],
            p[mask],
            naive[mask],
            horizon[mask].astype(float),
            [int(horizon.max())],
            {level: (lo[mask], hi[mask]) for level, (lo, hi) in intervals.items()},
        )
        return _scalars(out)

    metrics, counts = {0: block(np.ones(len(y), dtype=bool))}, {0: len(y)}
    for h in np.unique(horizon):
        metrics[int(h)], counts[int(h)] = block(horizon == h), int((horizon == h).sum())
    return metrics, counts


def evaluate(
    spec: ModelSpec,
    family: Family,
    model_version: int,
    scored_on: date,
    data: dict[str, npt.NDArray[np.generic]],
) -> Backtest:
    """The backtest of the joined rows: metrics by horizon (0 for all) and, for a
    classifier, its reliability table."""
    if spec.task == "forecast":
        metrics, counts = _forecast_metrics(data, family)
        return Backtest(spec.name, model_version, scored_on, metrics, counts)
    y, p = data["label"].astype(float), data["prediction"].astype(float)
    if spec.task == "regression":
        return Backtest(spec.name, model_version, scored_on, {0: m.regression_metrics(y, p)}, {0: len(y)})
    out = m.binary_metrics(y, p) | {"mean_prediction": float(p.mean())}
    if spec.group_column:
        groups = data["grp"].astype(np.int64)
        out |= m.ranking_metrics(y, p, groups, spec.top_k)
        if "margin" in data:
            out |= m.margin_at_k(y, p, groups, spec.top_k, data["margin"].astype(float))
    return Backtest(spec.name, model_version, scored_on, {0: out}, {0: len(y)}, m.reliability_table(y, p))


def _write(conn: Conn, b: Backtest, run_id: int | None) -> int:
    """Record a backtest (its metrics and reliability table) in one transaction."""
    rows = [
        (b.model_name, b.model_version, b.as_of_date, horizon, metric, value, b.counts[horizon], run_id)
        for horizon, values in b.metrics.items()
        for metric, value in values.items()
    ]
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "insert into ml.backtests (model_name, model_version, as_of_date, horizon, metric, value, n_rows, run_id) "
            "values (%s, %s, %s, %s, %s, nullif(%s, 'NaN'::float8), %s, %s)",
            rows,
        )
        cursor.executemany(
            "insert into ml.backtest_reliability values (%s, %s, %s, %s, %s, %s, %s)",
            [(b.model_name, b.model_version, b.as_of_date, *bin_row) for bin_row in b.reliability],
        )
    return len(rows)


def backtest(
    conn: Conn,
    specs: dict[str, ModelSpec],
    as_of: date,
    run_id: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Backtest]:
    """Backtest every scored date of every model whose label window closed by ``as_of`` and
    that has none yet; returns what was written (a date without any labelled row is skipped
    until it has one)."""
    say = progress or (lambda _: None)
    done = []
    for family in FAMILIES.values():
        for output in family.outputs:
            spec = specs.get(output.model)
            if spec is None:
                continue
            for scored in _due(conn, family, output, spec, as_of):
                data = _joined(conn, family, output, spec, scored, as_of)
                if not len(data["label"]):
                    continue
                result = evaluate(spec, family, scored.model_version, scored.as_of_date, data)
                written = _write(conn, result, run_id)
                say(
                    f"backtest {output.model} v{scored.model_version} as of {scored.as_of_date}: "
                    f"{result.counts[0]:,} labelled rows, {written} metrics"
                )
                done.append(result)
    return done
