"""Weekly real-data check: storecast's demand forecast on a real store's weekly sales,
beside seasonal naive and a plain global gradient-boosting model, measured in the same run.

The data is ``../shared/data/walmart_store1_dept_weekly.csv.gz`` (one Walmart store, 7
departments, 143 weeks): each department becomes a product, dollars become units of 1 $,
the five markdown columns a promotion of the week (depth = markdown / (markdown + the
store's sales), featured when the week holds a holiday), and a week without positive sales
a missing week. The files go through ``storecast load`` into a throwaway embedded server,
the settings are set with ``--var``-style overrides only (weekly grain, weeks ending on
Friday, 4 weeks ahead, missing weeks unobserved), and for each of the last ``--origins``
weeks storecast trains as of that week (labels matured by then only), scores it and is
compared with what was sold. The baselines see exactly the same history at each origin.

    python -m benchmarks.weekly_real_data [--origins 12] [--data PATH]

Baselines: seasonal naive, a 4-week moving average and the gradient-boosting model.
Prints WAPE, MASE (against a 52-week seasonal naive on each series' history), bias
(sum of errors over sum of actuals) and the coverage of the 80 % interval at horizons 1-4.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sklearn.ensemble import HistGradientBoostingRegressor
from typer.testing import CliRunner

from benchmarks.throwaway import throwaway_server
from database.schema import apply_schema
from scoring.score import score
from storecast.build import build
from storecast.cli import app
from storecast.config import PROJECT_DIR, load_config
from training import registry
from training.spec import model_specs
from training.train import train_model

DATA = PROJECT_DIR.parent / "shared" / "data" / "walmart_store1_dept_weekly.csv.gz"
#: The settings a user of this data would set: nothing else differs from the defaults.
SETTINGS = [
    "demand_grain=week",
    "week_start=saturday",  # the data dates each week by the Friday that ends it
    "demand_horizon=4",
    "demand_missing_periods=unobserved",
    "demand_history_weeks=156",
    "history_weeks=156",
]
HORIZONS = 4


def _week_start(friday: date) -> date:
    return friday - timedelta(days=6)


def _write_csvs(sales: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The raw tables storecast loads, as CSV files a user would write."""
    files: dict[str, Path] = {}

    def write(table: str, header: list[str], rows: Sequence[Sequence[object]]) -> None:
        files[table] = folder / f"{table}.csv"
        with files[table].open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(header)
            out.writerows(rows)

    first = min(sales["Date"])
    write(
        "stores",
        ["store_id", "store_name", "region", "format", "opened_at"],
        [[1, "Store 1", "US", "hypermarket", first]],
    )
    depts = sorted(sales["Dept"].unique())
    write(
        "products",
        [
            "product_id",
            "title",
            "brand",
            "category",
            "platform",
            "list_price",
            "unit_cost",
            "launched_at",
            "initial_stock",
        ],
        [
            [d, f"Department {d}", "Walmart", f"department {d}", "store", "1.00", "0.70", first, 0]
            for d in depts
        ],
    )
    weeks = sorted(sales["Date"].unique())
    write(
        "orders",
        ["order_id", "store_id", "ordered_at", "channel"],
        [[i + 1, 1, f"{w}T12:00:00Z", "store"] for i, w in enumerate(weeks)],
    )
    order_of = {w: i + 1 for i, w in enumerate(weeks)}
    sold = sales[sales["Weekly_Sales"] >= 1]
    write(
        "order_items",
        ["order_id", "line_no", "product_id", "quantity", "unit_price"],
        [
            [order_of[day], int(dept), int(dept), round(float(amount)), "1.00"]
            for day, dept, amount in zip(sold["Date"], sold["Dept"], sold["Weekly_Sales"], strict=True)
        ],
    )
    weekly = sales.groupby("Date").agg(
        store_sales=("Weekly_Sales", "sum"), markdown=("markdown", "first"), holiday=("IsHoliday", "first")
    )
    promotions: list[list[object]] = []
    marked = weekly[weekly["markdown"] > 0]
    for friday, markdown, store_sales, holiday in zip(
        marked.index, marked["markdown"], marked["store_sales"], marked["holiday"], strict=True
    ):
        depth = min(0.95, max(0.0001, float(markdown) / (float(markdown) + float(store_sales))))
        for d in depts:
            promotions.append(
                [len(promotions) + 1, d, 1, _week_start(friday), friday, f"{depth:.4f}", bool(holiday)]
            )
    write(
        "promotions",
        ["promotion_id", "product_id", "store_id", "start_date", "end_date", "discount_pct", "feature_ad"],
        promotions,
    )
    return files


def _read(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt") as handle:
        sales = pd.read_csv(handle)
    sales["Date"] = pd.to_datetime(sales["Date"]).dt.date
    sales["markdown"] = sales[[f"MarkDown{i}" for i in range(1, 6)]].fillna(0).sum(axis=1)
    sales["IsHoliday"] = sales["IsHoliday"].astype(str) == "True"
    return sales


@dataclass
class Forecasts:
    """Point forecasts (and 80 % bounds where a method has them) per series x origin x horizon."""

    frame: pd.DataFrame  # dept, origin, horizon, target, forecast, lower_80, upper_80


def _panel(sales: pd.DataFrame) -> pd.DataFrame:
    """Units per department x week start; unobserved weeks (no positive sales) are NaN."""
    units = sales.assign(week=sales["Date"].map(_week_start), units=sales["Weekly_Sales"].round())
    units.loc[units["units"] < 1, "units"] = np.nan
    return units.pivot(index="week", columns="Dept", values="units").sort_index()


def _seasonal_naive(panel: pd.DataFrame, origins: list[date]) -> Forecasts:
    rows = []
    for origin in origins:
        history = panel[panel.index < origin]
        for dept in panel.columns:
            series = history[dept]
            for h in range(1, HORIZONS + 1):
                target = origin + timedelta(weeks=h - 1)
                value = series.get(target - timedelta(weeks=52), np.nan)
                if np.isnan(value):
                    value = series.dropna().iloc[-1]
                rows.append([dept, origin, h, target, value, np.nan, np.nan])
    return Forecasts(
        pd.DataFrame(
            rows, columns=["dept", "origin", "horizon", "target", "forecast", "lower_80", "upper_80"]
        )
    )


def _moving_average(panel: pd.DataFrame, origins: list[date], weeks: int = 4) -> Forecasts:
    """The mean of the last ``weeks`` observed weeks, for every horizon."""
    rows = []
    for origin in origins:
        history = panel[panel.index < origin]
        for dept in panel.columns:
            value = float(history[dept].dropna().iloc[-weeks:].mean())
            for h in range(1, HORIZONS + 1):
                rows.append([dept, origin, h, origin + timedelta(weeks=h - 1), value, np.nan, np.nan])
    return Forecasts(
        pd.DataFrame(
            rows, columns=["dept", "origin", "horizon", "target", "forecast", "lower_80", "upper_80"]
        )
    )


def _gbm_rows(panel: pd.DataFrame, origin: date) -> pd.DataFrame:
    """Direct multi-horizon rows as of ``origin``: lags 1-4 and 52 weeks before the target, week of year."""
    rows = []
    history = panel[panel.index < origin]
    for dept in panel.columns:
        series = history[dept]
        lags = [series.get(origin - timedelta(weeks=k), np.nan) for k in range(1, 5)]
        mean_4 = np.nanmean(lags) if not np.isnan(lags).all() else np.nan
        for h in range(1, HORIZONS + 1):
            target = origin + timedelta(weeks=h - 1)
            rows.append(
                {
                    "dept": dept,
                    "origin": origin,
                    "horizon": h,
                    "target": target,
                    "lag_1": lags[0],
                    "lag_2": lags[1],
                    "lag_4": lags[3],
                    "mean_4": mean_4,
                    "last_year": series.get(target - timedelta(weeks=52), np.nan),
                    "week_of_year": target.isocalendar()[1],
                    "y": panel[dept].get(target, np.nan),
                }
            )
    return pd.DataFrame(rows)


def _gradient_boosting(panel: pd.DataFrame, origins: list[date]) -> Forecasts:
    """A plain global gradient-boosting model without covariates, refit at each origin."""
    weeks = list(panel.index)
    features = ["dept", "horizon", "lag_1", "lag_2", "lag_4", "mean_4", "last_year", "week_of_year"]
    all_rows = {w: _gbm_rows(panel, w) for w in weeks[5:]}
    out = []
    for origin in origins:
        train = pd.concat([r for w, r in all_rows.items() if w < origin])
        matured = np.array([t + timedelta(days=7) <= origin for t in train["target"]])
        train = train[matured & train["y"].notna().to_numpy()]
        model = HistGradientBoostingRegressor(random_state=0).fit(train[features], train["y"])
        test = all_rows[origin]
        out.append(test.assign(forecast=model.predict(test[features]), lower_80=np.nan, upper_80=np.nan))
    frame = pd.concat(out)
    return Forecasts(frame[["dept", "origin", "horizon", "target", "forecast", "lower_80", "upper_80"]])


def _storecast(
    sales: pd.DataFrame, origins: list[date], say: bool = True
) -> tuple[Forecasts, dict[str, float]]:
    """Load the files with `storecast load`, build once, then train as of and score each origin."""
    timings: dict[str, float] = {}
    with throwaway_server() as (settings, env, folder):
        runner = CliRunner()
        started = time.perf_counter()
        for table, path in _write_csvs(sales, folder).items():
            result = runner.invoke(app, ["load", table, str(path)], env=env)
            if result.exit_code != 0:
                raise SystemExit(f"storecast load {table} failed:\n{result.output}")
            if say:
                print(f"  storecast load {table}: {result.output.strip().splitlines()[0]}")
        timings["load"] = time.perf_counter() - started
        config = load_config(SETTINGS, environ={})
        specs = model_specs(config.values)
        started = time.perf_counter()
        build(settings, config, select=["+demand_features"])
        timings["build"] = time.perf_counter() - started
        rows = []
        started = time.perf_counter()
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            apply_schema(conn)
            for origin in origins:
                trained = train_model(conn, specs["demand"], settings, origin)
                if trained.status != "champion":
                    # Each origin is forecast by the model trained as of it.
                    registry.promote(conn, "demand", trained.version)
                score(conn, ["demand"], origin, specs=specs)
                rows += conn.execute(
                    "select product_id, as_of_date, horizon, target_date, units, lower_80, upper_80 "
                    "from scores.demand_forecast where as_of_date = %s",
                    [origin],
                ).fetchall()
                if say:
                    print(f"  origin {origin}: trained v{trained.version} ({trained.estimator}), scored")
        timings["train and score per origin"] = (time.perf_counter() - started) / len(origins)
    frame = pd.DataFrame(
        rows, columns=["dept", "origin", "horizon", "target", "forecast", "lower_80", "upper_80"]
    )
    return Forecasts(frame), timings


def _metrics(forecasts: Forecasts, panel: pd.DataFrame, first_origin: date) -> pd.DataFrame:
    actual = panel.stack().reset_index()
    actual.columns = pd.Index(["target", "dept", "y"])
    joined = forecasts.frame.merge(actual, on=["dept", "target"], how="inner")
    scale = {
        dept: float(np.nanmean(np.abs(panel[dept][panel.index < first_origin].diff(52))))
        for dept in panel.columns
    }
    out = []
    for h, group in joined.groupby("horizon"):
        error = group["forecast"] - group["y"]
        covered = ((group["y"] >= group["lower_80"]) & (group["y"] <= group["upper_80"])).mean()
        out.append(
            {
                "horizon": h,
                "WAPE": error.abs().sum() / group["y"].abs().sum(),
                "MASE": (error.abs() / group["dept"].map(scale)).mean(),
                "bias": error.sum() / group["y"].sum(),
                "cov80": covered if group["lower_80"].notna().all() else np.nan,
                "n": len(group),
            }
        )
    return pd.DataFrame(out)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--origins", type=int, default=12, help="weekly forecast origins, the latest first back"
    )
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    sales = _read(args.data)
    panel = _panel(sales)
    last = max(panel.index)
    # The last origins whose 4 forecast weeks all lie in the data.
    origins = [last - timedelta(weeks=HORIZONS - 1 + k) for k in range(args.origins)][::-1]
    print(
        f"{len(panel.columns)} series x {len(panel)} weeks, {int(panel.isna().sum().sum())} unobserved; "
        f"origins {origins[0]}..{origins[-1]}; settings: {' '.join('--var ' + s for s in SETTINGS)}"
    )
    started = time.perf_counter()
    ours, timings = _storecast(sales, origins)
    methods = {
        "storecast": ours,
        "seasonal naive (52 weeks)": _seasonal_naive(panel, origins),
        "moving average (4 weeks)": _moving_average(panel, origins),
        "global gradient boosting": _gradient_boosting(panel, origins),
    }
    rows = []
    for name, forecasts in methods.items():
        table = _metrics(forecasts, panel, origins[0])
        rows.append(table.assign(method=name))
    result = pd.concat(rows)
    print()
    print(f"| {'method':<26} | h | {'WAPE':>6} | {'MASE':>6} | {'bias':>7} | {'cov80':>5} | {'n':>3} |")
    print(f"|{'-' * 28}|---|--------|--------|---------|-------|-----|")
    for r in result.to_dict("records"):
        cov = "" if np.isnan(r["cov80"]) else f"{r['cov80']:.2f}"
        print(
            f"| {r['method']:<26} | {r['horizon']} | {r['WAPE']:6.3f} | {r['MASE']:6.3f} | {r['bias']:+7.3f} "
            f"| {cov:>5} | {r['n']:>3} |"
        )
    overall = result.groupby("method", sort=False)[["WAPE", "MASE", "bias"]].mean()
    print()
    print("mean over horizons 1-4:")
    for method, wape, mase, bias in zip(
        overall.index, overall["WAPE"], overall["MASE"], overall["bias"], strict=True
    ):
        print(f"  {method:<26} WAPE {wape:.3f}  MASE {mase:.3f}  bias {bias:+.3f}")
    print()
    print(
        "storecast seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        + f"; whole run {time.perf_counter() - started:.0f}"
    )


if __name__ == "__main__":
    main()
