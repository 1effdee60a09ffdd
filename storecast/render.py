"""How the CLI shows things: the consoles and every table it prints (the verbs in
:mod:`storecast.cli` fetch and act; this module only renders)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from storecast.config import ProjectConfig
from storecast.database.load_ledger import LoadResult
from storecast.database.sample.load import LoadedTable
from storecast.training.metrics import HIGHER_IS_BETTER

if TYPE_CHECKING:
    # Annotations only: importing training at run time would load scikit-learn and ONNX
    # for every command, --help included.
    from storecast.training.registry import ChampionScore
    from storecast.training.train import TrainResult


def _console(stderr: bool) -> Console:
    """soft_wrap: never break a URL or a SQL line that someone will copy. Piped into a file or
    a CI log there is no terminal width to fit, so tables print whole instead of at 80 columns.
    No markup or emoji codes: what is printed quotes the user's data (a rejected value
    ``[/b]`` or ``:x:``), which must print as it is; colour is given as :class:`Text` styles."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr, soft_wrap=True, width=None if stream.isatty() else 10_000, markup=False, emoji=False
    )


out = _console(stderr=False)
err = _console(stderr=True)


def print_error(message: object) -> None:
    """``error: message`` on stderr, the message as it is."""
    err.print(Text("error:", style="bold red"), str(message), highlight=False)


def print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.print(f"{key.ljust(width)}  {value}", highlight=False)


def print_loaded(loaded: list[LoadedTable], seconds: float) -> None:
    table = Table(title="sample retailer loaded", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for t in loaded:
        table.add_row(t.table, f"{t.rows:,}")
    out.print(table)
    out.print(f"{sum(t.rows for t in loaded):,} rows in {seconds:.1f}s")


def print_load_result(result: LoadResult) -> None:
    colour = {"loaded": "green", "partial": "yellow"}.get(result.status, "red")
    out.print(
        Text(result.status, style=colour),
        f": {result.rows_loaded:,} of {result.rows_in:,} rows into {result.table}, "
        f"{result.rows_rejected:,} rejected ({result.seconds:.1f}s, load {result.load_id})",
        sep="",
        highlight=False,
    )
    for line, reason in result.first_rejects:
        out.print(f"  line {line}: {reason}", highlight=False)
    if result.rows_rejected > len(result.first_rejects):
        out.print(f"  … {result.rows_rejected - len(result.first_rejects):,} more", highlight=False)
    if result.rows_rejected:
        out.print(
            f"  all rejects: select * from raw.load_rejects where load_id = {result.load_id}", highlight=False
        )


def print_training(results: list[TrainResult], failures: dict[str, str], skipped: dict[str, str]) -> None:
    table = Table(title="training results (test window)", title_justify="left")
    for column in (
        "model",
        "version",
        "status",
        "estimator",
        "metric",
        "value",
        "baseline",
        "lift",
        "champion was",
        "parity",
        "seconds",
    ):
        table.add_column(
            column, justify="right" if column not in ("model", "status", "estimator", "metric") else "left"
        )
    for r in results:
        table.add_row(
            r.spec.name,
            str(r.version),
            r.status,
            r.estimator + (f" + {r.calibration}" if r.calibration else ""),
            r.spec.selection_metric,
            f"{r.selection_value:.4f}",
            f"{r.baseline_value:.4f}",
            lift(r.spec.selection_metric, r.selection_value, r.baseline_value),
            "" if r.champion_value is None else f"{r.champion_value:.4f}",
            f"{r.parity:.1e}",
            f"{r.seconds:.1f}",
        )
    for name in failures:
        table.add_row(name, "", Text("failed", style="red"), *[""] * 8)
    for name in skipped:
        table.add_row(name, "", "skipped", *[""] * 8)
    out.print(table)
    for message in failures.values():
        print_error(message)


def lift(metric: str, value: float, baseline: float) -> str:
    """Relative improvement over the baseline, positive when better whichever way the metric points."""
    if not baseline:
        return ""
    change = (value - baseline) / abs(baseline)
    return f"{change if HIGHER_IS_BETTER[metric] else -change:+.1%}"


def print_config(config: ProjectConfig) -> None:
    """Every setting: value, where it came from, default."""
    table = Table(title_justify="left")
    for column in ("setting", "value", "source", "default"):
        table.add_column(column)
    for name, value in config.values.items():
        source = config.sources[name]
        table.add_row(
            name,
            "null" if value is None else str(value),
            Text(source, style="" if source == "default" else "bold"),
            "null" if config.defaults[name] is None else str(config.defaults[name]),
        )
    out.print(table)


def print_setting_docs(config: ProjectConfig, names: list[str], docs: dict[str, str]) -> None:
    """Each named setting: its value, where it came from, its default and what it means."""

    def shown(value: Any) -> str:
        return "null" if value is None else str(value)

    for name in names:
        source = config.sources[name]
        where = "default" if source == "default" else f"from {source}; default {shown(config.defaults[name])}"
        out.print(Text.assemble((name, "bold"), f" = {shown(config.values[name])} ({where})"))
        out.print(Text(f"  {docs.get(name, '')}"))


def print_versions(rows: list[dict[str, Any]]) -> None:
    """Every model version: status, trained as-of, key metric against its baseline."""
    table = Table(title_justify="left")
    for column in (
        "model",
        "version",
        "status",
        "trained as-of",
        "estimator",
        "metric",
        "value",
        "baseline",
        "lift",
        "created",
        "reason",
    ):
        table.add_column(column)
    for r in rows:
        metric = str(r["selection_metric"])
        value, baseline = r["metrics"].get(metric), r["baseline_metrics"].get(metric)
        table.add_row(
            str(r["model_name"]),
            str(r["version"]),
            Text(str(r["status"]), style="bold green" if r["status"] == "champion" else ""),
            str(r["trained_as_of"]),
            str(r["estimator"]),
            metric,
            "" if value is None else f"{value:.4f}",
            "" if baseline is None else f"{baseline:.4f}",
            "" if value is None or baseline is None else lift(metric, value, baseline),
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            str(r["status_reason"] or ""),
        )
    out.print(table if rows else "no model versions yet: storecast train")


def print_version(r: dict[str, Any], calibration: list[tuple[object, ...]]) -> None:
    """One version: windows, estimator, ONNX, features, metrics, intervals, reliability, spec."""
    print_rows(
        [
            ("model", f"{r['model_name']} v{r['version']} ({r['status']}: {r['status_reason']})"),
            ("trained as of", str(r["trained_as_of"])),
            (
                "windows",
                f"train {r['train_start']}..{r['train_end']} ({r['train_rows']:,} rows), validation {r['validation_start']}..{r['validation_end']} ({r['validation_rows']:,}), test {r['test_start']}..{r['test_end']} ({r['test_rows']:,})",
            ),
            (
                "estimator",
                f"{r['estimator']}" + (f" + {r['calibration']} calibration" if r["calibration"] else ""),
            ),
            ("onnx", f"opset {r['onnx_opset']}, sha256 {r['onnx_sha256']}"),
            ("parity", f"max |onnx - scikit-learn| = {r['parity_max_abs_diff']:.2e} on the test rows"),
            ("features", ", ".join(r["feature_columns"])),
            (
                "left out",
                ", ".join(r["dropped_features"]) + " (constant or NULL on every training row)"
                if r["dropped_features"]
                else "none",
            ),
            ("horizon", horizon(r["spec"])),
            ("sampling", json.dumps(r["sampling"]) if r["sampling"] else "none"),
            ("libraries", ", ".join(f"{k} {v}" for k, v in r["library_versions"].items())),
            ("seconds", f"{r['training_seconds']:.1f}"),
        ]
    )
    table = Table(title="metrics on the test window", title_justify="left")
    table.add_column("metric")
    table.add_column("model", justify="right")
    table.add_column("baseline", justify="right")
    for key, value in r["metrics"].items():
        if isinstance(value, int | float):
            base = r["baseline_metrics"].get(key)
            table.add_row(key, f"{value:.4f}", "" if not isinstance(base, int | float) else f"{base:.4f}")
    out.print(table)
    if "by_horizon" in r["metrics"]:
        out.print("by horizon: " + json.dumps(r["metrics"]["by_horizon"], indent=1))
    note = untested_horizons(r["metrics"], r["spec"])
    if note:
        out.print(note)
    for line in interval_lines(r["intervals"]):
        out.print(line)
    if calibration:
        cal = Table(title="reliability (test window)", title_justify="left")
        for column in ("bin", "predicted", "observed", "rows"):
            cal.add_column(column, justify="right")
        for bin_, mean, rate, n in calibration:
            cal.add_row(str(bin_), f"{float(str(mean)):.3f}", f"{float(str(rate)):.3f}", str(n))
        out.print(cal)
    out.print("spec: " + json.dumps(r["spec"]))


def untested_horizons(metrics: dict[str, Any], spec: dict[str, Any]) -> str:
    """What a forecast's test window leaves out: its as-of dates are the latest matured ones,
    whose longer horizons have not happened yet ('' when it holds every horizon, or for a
    version that did not record its range)."""
    tested, periods = metrics.get("horizon_range"), spec.get("horizon_periods")
    if not tested or not isinstance(periods, int) or tested[1] >= periods:
        return ""
    return (
        f"the test window holds horizons {tested[0]}-{tested[1]} of {periods}: its as-of dates are the "
        "latest whose labels have matured, so the longer horizons are judged by the backtests as their "
        "targets pass (storecast report; marts.model_performance)"
    )


def interval_lines(intervals: dict[str, Any] | None) -> list[str]:
    """A forecast version's stored intervals as ``models show`` prints them: the quantiles
    as stored, and the series' spreads summarised (one per series: thousands on a large
    panel)."""
    if not intervals:
        return []
    spreads = intervals.get("series_spread") or {}
    folds = intervals.get("validation_folds") or []
    shown = {k: v for k, v in intervals.items() if k not in ("series_spread", "validation_folds")}
    lines = [
        "prediction intervals (scaled residual quantiles by horizon bucket and level band): "
        + json.dumps(shown)
    ]
    if spreads:
        values = np.asarray(list(spreads.values()), dtype=float)
        lines.append(
            f"series spread (width relative to the level's): {len(values):,} series, "
            f"from {values.min():.2f} to {values.max():.2f}, median {np.median(values):.2f}"
        )
    if len(folds) > 1:
        lines.append(
            f"residuals from {len(folds)} validation folds, from {', '.join(folds)}: each later one forecast by "
            "the model fitted up to its start less the embargo, as the refit one forecasts from just before the test window"
        )
    if intervals.get("width_slope"):
        lines.append(
            f"width grows with the spec's interval_width_column: times 1 + {intervals['width_slope']} x |value| "
            f"(a row without a value counts as {intervals['width_fill']})"
        )
    return lines


def horizon(spec: dict[str, object]) -> str:
    """A version's label horizon as its spec recorded it, in the unit it was set in."""
    periods, days, var = spec.get("horizon_periods"), spec.get("horizon_days"), spec.get("horizon_var")
    period = spec.get("period") or f"{spec.get('period_days')} days"
    text = f"{periods} periods of {period}" if periods else f"{days} days"
    return f"{text} (setting {var})" if var else text


def print_runs(rows: list[tuple[object, ...]]) -> None:
    """Steps of recent runs: status, start, duration, rows, message."""
    table = Table(title_justify="left")
    for column in ("run", "as of", "step", "status", "started", "took", "rows", "message"):
        table.add_column(column)
    for run_id, as_of_date, step_name, status, started, took, n, _, message in rows:
        colour = {"succeeded": "green", "failed": "red", "abandoned": "red"}.get(str(status), "yellow")
        table.add_row(
            str(run_id),
            str(as_of_date),
            str(step_name),
            Text(str(status), style=colour),
            f"{started:%Y-%m-%d %H:%M:%S}",
            f"{took.total_seconds():.1f}s" if isinstance(took, timedelta) else "",
            "" if n is None else f"{n:,}",
            str(message or ""),
        )
    out.print(table if rows else "no runs yet")


def print_champion_scores(scores: list[ChampionScore]) -> None:
    """Each champion against its baseline on its own test window, and plainly which do not beat it."""
    table = Table(title="champions on their test windows", title_justify="left")
    for column in ("model", "version", "metric", "champion", "baseline", "baseline value", "verdict"):
        table.add_column(column)
    for s in scores:
        table.add_row(
            s.model_name,
            str(s.version),
            s.metric,
            f"{s.value:.4f}",
            s.baseline,
            f"{s.baseline_value:.4f}",
            Text("beats it", style="green")
            if s.beats_baseline
            else Text("does NOT beat it", style="bold red"),
        )
    out.print(table)
    for s in scores:
        if not s.beats_baseline:
            out.print(
                Text(s.model_name, style="bold red"),
                f" v{s.version} does not beat the {s.baseline} baseline on its own test "
                f"window ({s.metric} {s.value:.4f} against {s.baseline_value:.4f}): read its scores as a "
                "demonstration of the path on sample data, not as predictions to act on.",
                sep="",
                highlight=False,
            )
