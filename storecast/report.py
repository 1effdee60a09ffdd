"""``storecast report``: one self-contained HTML page on how the champions are doing.

Per score table (model family) and model: the selection metric over the matured-label
backtests beside the version's own test figure, the top features of the day's
explanations and the feature drift heat map; for classifiers the reliability curve
(test window and latest backtest), cumulative gains and lift by decile; for demand a
few series' history with the forecast and its 80 % / 95 % intervals, and interval
coverage by horizon. Everything is read from ``ml.*``, ``scores.*`` and the feature
tables; the charts are inline SVG (:mod:`storecast.charts`), so the file opens
anywhere, offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from pathlib import Path
from typing import Any

import storecast.charts as charts
from storecast.charts import Line
from storecast.database.key_codes import as_written
from storecast.db import Conn
from storecast.scoring.families import FAMILIES, Family, Output

#: Series shown with their forecast: the largest by forecast units.
FORECAST_SERIES = 3
#: Periods of history drawn before a forecast.
HISTORY_PERIODS = 26
#: Features shown in the drift heat map and the top features chart.
TOP_FEATURES = 12


class ReportError(RuntimeError):
    """Nothing to report on: no champion, or no scores."""


@dataclass(frozen=True)
class Serving:
    """What the report needs of a serving version."""

    model_name: str
    version: int
    task: str
    estimator: str
    metric: str
    test_value: float | None
    metrics: dict[str, Any]
    trained_as_of: date | None


def _fetch(conn: Conn, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows as tuples of Any: the report reads many small result sets of known shape."""
    return [tuple(row) for row in conn.execute(query, params).fetchall()]


def _champions(conn: Conn) -> dict[str, Serving]:
    rows = _fetch(
        conn,
        "select model_name, version, spec ->> 'task', estimator, selection_metric, "
        "(metrics ->> selection_metric)::float8, metrics, trained_as_of "
        "from ml.model_versions where status = 'champion'",
    )
    return {str(r[0]): Serving(*r) for r in rows}


def report_date(conn: Conn) -> date:
    """The latest date anything was scored for."""
    found = [
        row[0]
        for family in FAMILIES.values()
        for row in _fetch(conn, f"select max(as_of_date) from {family.table}")
        if row[0] is not None
    ]
    if not found:
        raise ReportError("nothing has been scored yet: run `storecast run` (or `storecast score`) first")
    day: date = max(found)
    return day


def _ordinal(day: date) -> float:
    return float(day.toordinal())


def _date_ticks(days: list[date]) -> dict[float, str]:
    if not days:
        return {}
    picks = sorted({days[0], days[len(days) // 2], days[-1]})
    return {_ordinal(d): d.isoformat() for d in picks}


def metric_trend(conn: Conn, champion: Serving) -> str:
    """The selection metric of every backtested date (all versions), beside the
    champion's own test figure."""
    rows = _fetch(
        conn,
        "select as_of_date, value from ml.backtests where model_name = %s and metric = %s and horizon = 0 "
        "and value is not null order by as_of_date",
        [champion.model_name, champion.metric],
    )
    title = f"{champion.metric} over matured backtests"
    if not rows:
        return charts.empty(title, "no scored date has matured labels yet", "trend")
    days = [r[0] for r in rows]
    xs = [_ordinal(d) for d in days]
    lines = [Line("backtest", xs, [float(r[1]) for r in rows])]
    if champion.test_value is not None:
        # A week either side of a single date, so that the yardstick shows.
        span = [xs[0], xs[-1]] if len(xs) > 1 else [xs[0] - 7, xs[0] + 7]
        lines.append(
            Line(f"test window v{champion.version}", span, [champion.test_value] * 2, True, reference=True)
        )
    return charts.line_chart(title, lines, "scored date", champion.metric, _date_ticks(days), kind="trend")


def top_features(conn: Conn, family: Family, output: Output, as_of: date) -> str:
    """Mean |contribution| per row of each feature among the rows' top reasons."""
    rows = _fetch(
        conn,
        f"""
        with rows as (select count(*)::float8 as n from {family.table} where as_of_date = %(d)s)
        select r ->> 'feature', sum(abs((r ->> 'contribution')::float8)) / max(rows.n), count(*) / max(rows.n)
        from {family.table} s cross join rows, jsonb_array_elements(s.{output.reasons_column}) r
        where s.as_of_date = %(d)s
        group by 1 order by 2 desc limit {TOP_FEATURES}
        """,
        {"d": as_of},
    )
    title = f"top features on {as_of}"
    if not rows:
        return charts.empty(
            title, "no reasons stored for this date (explanation_reasons 0, or an older version)", "features"
        )
    return charts.bar_chart(
        title,
        [str(r[0]) for r in rows],
        {"mean |contribution|": [float(r[1]) for r in rows]},
        "mean |contribution| per row (raw score), among each row's top reasons",
        note=", ".join(f"{r[0]} in {float(r[2]):.0%} of rows" for r in rows[:3]),
        kind="features",
    )


def drift_map(conn: Conn, champion: Serving) -> str:
    """PSI of the champion's features (and prediction) on every date it was measured."""
    # Here, not at the top: the CLI imports this module at start, and drift imports pandas.
    from storecast.training.drift import PSI_SHIFT

    rows = _fetch(
        conn,
        "select feature, as_of_date, psi from ml.feature_drift where model_name = %s and model_version = %s "
        "order by feature, as_of_date",
        [champion.model_name, champion.version],
    )
    title = f"feature drift (PSI against the training window), v{champion.version}"
    if not rows:
        return charts.empty(title, "no drift measured yet for this version", "drift")
    days = sorted({r[1] for r in rows})
    worst: dict[str, float] = {}
    cells: dict[tuple[str, date], float] = {}
    for feature, day, psi in rows:
        cells[(str(feature), day)] = float(psi)
        worst[str(feature)] = max(worst.get(str(feature), 0.0), float(psi))
    features = sorted(worst, key=lambda f: -worst[f])[:TOP_FEATURES]
    return charts.heat_map(
        title,
        features,
        [d.isoformat() for d in days],
        [[cells.get((f, d)) for d in days] for f in features],
        note=f"darkest at PSI >= {PSI_SHIFT}; the features that moved most first",
        kind="drift",
        darkest_at=PSI_SHIFT,
    )


def reliability(conn: Conn, champion: Serving) -> list[str]:
    """Reliability curve, cumulative gains and lift by decile of a classifier."""
    test = _fetch(
        conn,
        "select predicted_mean, observed_rate, rows from ml.calibration where model_name = %s and version = %s "
        "order by bin",
        [champion.model_name, champion.version],
    )
    latest = _fetch(
        conn,
        "select mean_predicted, observed_rate from ml.backtest_reliability where model_name = %s "
        "and as_of_date = (select max(as_of_date) from ml.backtest_reliability where model_name = %s) order by bin",
        [champion.model_name, champion.model_name],
    )
    lines = [Line("perfect", [0.0, 1.0], [0.0, 1.0], True, reference=True)]
    if test:
        lines.append(Line("test window", [float(r[0]) for r in test], [float(r[1]) for r in test]))
    if latest:
        lines.append(Line("latest backtest", [float(r[0]) for r in latest], [float(r[1]) for r in latest]))
    out = [
        charts.line_chart(
            "reliability",
            lines,
            "predicted probability",
            "observed rate",
            y_range=(0.0, 1.0),
            kind="reliability",
        )
        if len(lines) > 1
        else charts.empty("reliability", "no calibration table stored", "reliability")
    ]
    if not test:
        return [*out, charts.empty("cumulative gains", "no calibration table stored", "gains")]
    # From the test window's probability bins, highest first: a coarse gains curve.
    bins = sorted(((float(p), float(o), int(n)) for p, o, n in test), reverse=True)
    total = sum(n for *_, n in bins)
    positives = sum(o * n for _, o, n in bins) or 1.0
    xs, ys, lifts, seen, found = [0.0], [0.0], [], 0, 0.0
    for _, observed, n in bins:
        seen += n
        found += observed * n
        xs.append(seen / total)
        ys.append(found / positives)
        lifts.append(observed / (positives / total))
    out.append(
        charts.line_chart(
            "cumulative gains (test window)",
            [Line("model", xs, ys), Line("random", [0.0, 1.0], [0.0, 1.0], True, reference=True)],
            "share of rows, highest scores first",
            "share of positives",
            y_range=(0.0, 1.0),
            kind="gains",
        )
    )
    out.append(
        charts.bar_chart(
            "lift by probability bin (test window)",
            [f"mean p {p:.2f}" for p, *_ in bins],
            {"lift": lifts},
            "observed rate / overall rate",
            kind="lift",
        )
    )
    return out


def forecasts(conn: Conn, family: Family, as_of: date) -> list[str]:
    """For each of the largest series, its history and the forecast with its intervals."""
    # Titled by the keys as the files write them (raw.key_codes: the setting coded_keys).
    series = _fetch(
        conn,
        f"select product_id, store_id, {as_written('product_id')}, {as_written('store_id')} from {family.table} "
        f"where as_of_date = %s group by 1, 2 order by sum(units) desc limit {FORECAST_SERIES}",
        [as_of],
    )
    if not series:
        return [charts.empty("forecast", "no forecast for this date", "forecast")]
    out = []
    for product, store, product_shown, store_shown in series:
        history = _fetch(
            conn,
            "select period_start, units from features.demand_sales where product_id = %s and store_id = %s "
            "and period_start < %s order by period_start desc limit %s",
            [product, store, as_of, HISTORY_PERIODS],
        )[::-1]
        ahead = _fetch(
            conn,
            f"select target_date, units, lower_80, upper_80, lower_95, upper_95 from {family.table} "
            "where as_of_date = %s and product_id = %s and store_id = %s order by horizon",
            [as_of, product, store],
        )
        lines = [Line("actual", [_ordinal(r[0]) for r in history], [float(r[1]) for r in history])]
        lines.append(
            Line(
                "forecast, 80 / 95 %",
                [_ordinal(r[0]) for r in ahead],
                [float(r[1]) for r in ahead],
                True,
                bands=[
                    ([float(r[2]) for r in ahead], [float(r[3]) for r in ahead]),
                    ([float(r[4]) for r in ahead], [float(r[5]) for r in ahead]),
                ],
            )
        )
        days = sorted([r[0] for r in history] + [r[0] for r in ahead])
        out.append(
            charts.line_chart(
                f"product {product_shown}, store {store_shown}: actual units and forecast",
                lines,
                "period",
                "units",
                _date_ticks(days),
                note="periods without a sale are not drawn",
                kind="forecast",
            )
        )
    return out


def coverage(conn: Conn, champion: Serving) -> str:
    """Interval coverage by horizon in the latest backtest, against the nominal levels."""
    rows = _fetch(
        conn,
        "select horizon, metric, value from ml.backtests where model_name = %s and horizon > 0 "
        "and metric in ('coverage_80', 'coverage_95') and value is not null "
        "and as_of_date = (select max(as_of_date) from ml.backtests where model_name = %s) order by horizon",
        [champion.model_name, champion.model_name],
    )
    title = "interval coverage by horizon (latest backtest)"
    if not rows:
        return charts.empty(title, "no scored date has matured labels yet", "coverage")
    lines = []
    for level in (80, 95):
        points = [(float(h), float(v)) for h, m, v in rows if m == f"coverage_{level}"]
        lines.append(Line(f"{level} % interval", [x for x, _ in points], [y for _, y in points]))
        ends = [points[0][0], points[-1][0]]
        lines.append(Line(f"aim {level / 100:.2f}", ends, [level / 100] * 2, True, reference=True))
    return charts.line_chart(
        title,
        lines,
        "horizon (periods ahead)",
        "share of actuals inside",
        y_range=(0.0, 1.0),
        kind="coverage",
    )


def _section(conn: Conn, family: Family, champions: dict[str, Serving], as_of: date) -> str:
    parts = [f"<h2>{escape(family.name)} <small>{escape(family.table)}</small></h2>"]
    for output in family.outputs:
        champion = champions.get(output.model)
        if champion is None:
            parts.append(f"<p>{escape(output.model)}: no champion.</p>")
            continue
        test = "n/a" if champion.test_value is None else f"{champion.test_value:.4f}"
        parts.append(
            f"<h3>{escape(output.model)} v{champion.version} <small>{escape(champion.estimator)}, trained as of "
            f"{champion.trained_as_of}; {escape(champion.metric)} {test} on its test window</small></h3>"
        )
        charts_ = [metric_trend(conn, champion), top_features(conn, family, output, as_of)]
        if champion.task == "binary":
            charts_ += reliability(conn, champion)
        if champion.task == "forecast":
            charts_ += [*forecasts(conn, family, as_of), coverage(conn, champion)]
        charts_.append(drift_map(conn, champion))
        parts.append(f'<div class="charts">{"".join(charts_)}</div>')
    return "".join(parts)


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
h2 small, h3 small { color: #666; font-weight: normal; font-size: .7em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure.chart { margin: 0; border: 1px solid #eee; padding: .5em; }
figure.chart figcaption { font-weight: bold; font-size: .9em; }
figure.chart figcaption small { display: block; font-weight: normal; color: #666; }
figure.empty { width: 300px; color: #888; }
"""


def build_report(conn: Conn, as_of: date | None = None) -> str:
    """The report's HTML for ``as_of`` (default: the latest scored date)."""
    as_of = as_of or report_date(conn)
    champions = _champions(conn)
    if not champions:
        raise ReportError("no model has a champion yet: run `storecast train` first")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = "".join(_section(conn, family, champions, as_of) for family in FAMILIES.values())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>storecast report {as_of}</title><style>{STYLE}</style></head><body>"
        f"<h1>storecast report <small>scores of {as_of}, generated {generated}</small></h1>"
        f"{sections}</body></html>"
    )


def write_report(conn: Conn, out: Path, as_of: date | None = None) -> Path:
    """Write ``report.html`` into ``out`` (created if needed); returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(build_report(conn, as_of), encoding="utf-8")
    return path
