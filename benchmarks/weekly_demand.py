"""Weekly (and monthly) demand: storecast beside the forecasts a user would try first, measured in the same run.

Panels, each loaded into a throwaway embedded server the way a user would and run
with settings only (``--var``), never an edited file:

* ``real``: ``../shared/data/walmart_store1_dept_weekly.csv.gz`` (one Walmart store, 7
  departments, 143 weeks): each department a product, dollars units of 1 $, the five
  markdown columns a promotion of the week, a week without positive sales unobserved;
* ``panel``: a synthetic 83-store x 11-product panel, two years and a quarter, with shelf
  prices, deals and feature ads (``benchmarks.promotion_panel``), the shape of the panel
  storecast was judged on; its build time is the "2-year weekly build" figure;
* ``trend``: the same panel with every series trending, its level changing by a factor
  ``exp(g)`` a year, ``g`` drawn per series with a spread of 0.3 (what the stationary
  panel lacks: products and stores that grow or decline);
* ``shift``: the same panel with the whole chain's demand stepping up by 30 % 24 weeks
  before its end;
* ``festival``: the same panel with a holiday that moves in the year (Eid al-Fitr, 11
  days earlier each year) lifting its week and the week before, by category; the last
  origins forecast its third year;
* ``dip``: the same panel with the week after a deal selling less, as shoppers who stocked
  up on it buy less: it gives back 30 % of the deal's price lift, in log;
* ``shocks``: the same panel with every week moving the whole chain's demand by a factor
  and each store's by another (lognormal, 0.15 in log each, mean 1): what a week's series
  share and nothing foretells;
* ``sample``: the sample generator's weekly shape (``storecast sample --shape weekly``:
  one till total per store, product and week, a tenth of the cells unreported);
* ``monthly``: the real set by calendar month (``demand_grain=month``), each week's sales
  spread evenly over its seven days, dated on the month's first day; 32 whole months;
* ``sample-monthly``: the sample generator's monthly shape (``--shape monthly``).
* ``stockouts``: the sample generator's weekly shape of a retailer whose shelves run empty
  now and then (``--shape stockouts --shape weekly``: a stock count every day, a week with
  a day out of stock selling less than was asked for); such weeks are not scored against;
* ``stockouts-hidden``: the same with its zero counts moved aside after loading, so that
  storecast reads the sales as if it had no counts (what reading them gains);
* ``stockouts-log``: the same counted by a stock system's log of changes (a row only where
  the count changed since the day before), read with ``stock_counts=on_change``.

For each of the last ``--origins`` periods storecast trains as of that period (labels
matured by then only), scores it and is compared with what was sold. The baselines see
the same history at each origin: seasonal naive (52 weeks, or 12 months), a moving
average of the last 4 weeks (3 months), a plain global gradient-boosting model on lags,
and the same model given the target period's deal, feature ad and shelf price (where set),
and with ``--calendar`` that model given the events of the target period and the one after
as categories too. On the simulated panel
the expected units it was drawn from are printed too (``true mean``): not a baseline but
the floor, so the gap to it is what is left to gain.

    python -m benchmarks.weekly_demand [--data real|panel|trend|shift|festival|dip|shocks|sample|monthly|sample-monthly|stockouts|stockouts-hidden|stockouts-log] [--origins N] [--department N] [--calendar] [--history N] [--gaps N] [--horizon N] [--seed N] [--products N] [--save FILE] [--against FILE] [--json FILE]

``--department N`` cuts ``real`` or ``monthly`` to one department: one series, a
one-product retailer's data. ``--calendar`` loads the set's own events as
``raw.calendar_events``, which storecast reads and one more baseline is given: the real set's
holidays (its ``IsHoliday`` weeks), or the ``festival`` panel's days.
``--seed N`` draws a simulated panel (``panel``, ``trend``, ``shift``, ``festival``, ``dip``,
``shocks``) anew:
its deals, prices and noise, the same process. ``--products N`` has a simulated panel's
chain sell N products instead of 11: with 1, each store sells one product, a one-product
chain (the draw differs from the first product on).
``--history N`` deletes the sales before the latest N periods (and the promotions, shelf
prices and stock counts that ended before them) once loaded: a retailer with a short
history, seen by storecast and the baselines alike.
``--gaps N`` deletes two runs of N periods from every series' sales before the first
origin's (each from a day with orders, drawn at random with a fixed seed) once loaded:
weeks a store did not report, a till system down or a department closed for a refit, which
under ``demand_missing_periods: unobserved`` are unknown to storecast and the baselines alike.
``--save FILE`` writes storecast's forecasts to a CSV file; ``--against FILE`` reads one
back as one more method, so that a change (another commit, another setting) is compared
with the run before it origin by origin, as the baselines are, on WAPE and, where the file
holds intervals, on the 80 % interval score.
``--json FILE`` also writes the run's figures as JSON: what ``benchmarks.demand_suite``,
which runs every shape the README reports, reads to write its tables.

Prints WAPE, MASE (against a seasonal naive on each series' history), bias (sum
of errors over sum of actuals) and the coverage of the 80 % interval per horizon; against
each baseline, on how many origins storecast's WAPE is lower and the mean difference with
two standard errors; the coverage by quartile of the forecast; where the panel has
holidays of its own (``real`` by week, ``festival``), each method's WAPE and bias in their
weeks and the weeks before them, calendar loaded or not; and the build and training times.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sklearn.ensemble import HistGradientBoostingRegressor
from typer.testing import CliRunner

from benchmarks.promotion_panel import (
    FESTIVAL_DAYS,
    FIRST_WEEK,
    PLAIN,
    PRODUCTS,
    PanelShape,
    simulate,
    write_panel,
)
from benchmarks.raw_csv import RawFiles
from benchmarks.throwaway import throwaway_server
from storecast.build import build
from storecast.cli import app
from storecast.config import load_config
from storecast.database.schema import apply_schema
from storecast.scoring.score import score
from storecast.settings import get_settings
from storecast.training import registry
from storecast.training.metrics import coverage_by_band, level_bands
from storecast.training.spec import model_specs
from storecast.training.train import train_model

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "walmart_store1_dept_weekly.csv.gz"
Loader = Callable[[CliRunner, dict[str, str], Path], None]


@dataclass(frozen=True)
class Periods:
    """A panel's grain: how its dates step, and how far the forecasts and baselines look."""

    name: str
    #: Periods forecast ahead.
    horizons: int
    #: Periods in a year: seasonal naive's step back, and MASE's.
    season: int
    #: Periods the moving average (and the GB baseline's mean) covers.
    recent: int
    #: The GB baseline's lags, in periods before the origin.
    lags: tuple[int, ...]

    def step(self, day: date, periods: int) -> date:
        """The period start ``periods`` periods after ``day``'s (before it when negative)."""
        if self.name == "month":
            return (pd.Timestamp(day) + pd.DateOffset(months=periods)).date()
        return day + timedelta(weeks=periods)

    def of_year(self, day: date) -> int:
        """The week (ISO) or month of the year: the GB baseline's season."""
        return day.month if self.name == "month" else day.isocalendar()[1]

    def settings(self) -> list[str]:
        """The settings that give storecast this grain and horizon."""
        return [f"demand_grain={self.name}", f"demand_horizon={self.horizons}"]


WEEKS = Periods("week", horizons=4, season=52, recent=4, lags=(1, 2, 4))
MONTHS = Periods("month", horizons=3, season=12, recent=3, lags=(1, 2, 3))


@dataclass(frozen=True)
class Source:
    """A panel: how to load it, and the settings a user of such data would set. ``floor``,
    where the expected units are known (a simulated panel), forecasts each origin with them,
    as many periods ahead as it is asked."""

    load: Loader
    settings: list[str]
    origins: int
    floor: Callable[[list[date], int], Forecasts] | None = None
    periods: Periods = WEEKS
    #: How to load it with its own events as a calendar (``--calendar``), where it has them.
    with_calendar: Loader | None = None
    #: The period starts of the data's own events (holidays), known whether or not they are
    #: loaded as a calendar: each method's error in them, and in the periods before, is printed.
    event_periods: Callable[[], tuple[date, ...]] | None = None
    #: The store, product and period start of each period out of stock a day or more.
    stock_outs: str = "select store_id, product_id, period_start, true from features.demand_stock_outs"


def _week_start(friday: date) -> date:
    return friday - timedelta(days=6)


def _load_files(runner: CliRunner, env: dict[str, str], files: dict[str, Path]) -> None:
    for table, path in files.items():
        result = runner.invoke(app, ["load", table, str(path)], env=env)
        if result.exit_code != 0:
            raise SystemExit(f"storecast load {table} failed:\n{result.output}")
        print(f"  storecast load {table}: {result.output.strip().splitlines()[0]}")


def _by_month(sales: pd.DataFrame) -> pd.DataFrame:
    """Weekly sales (dated by the Friday ending each week) as sales per calendar month,
    dated on its first day: each week's spread evenly over its seven days, and only the
    months whose every day lies in a reported week."""
    days = sales.loc[sales.index.repeat(7), ["Date", "Dept", "Weekly_Sales"]].reset_index(drop=True)
    days["Date"] = [friday - timedelta(days=k % 7) for k, friday in enumerate(days["Date"])]
    days["Weekly_Sales"] /= 7
    days["month"] = [d.replace(day=1) for d in days["Date"]]
    covered = days.groupby("month")["Date"].nunique()
    length = pd.Series({m: (MONTHS.step(m, 1) - m).days for m in covered.index})
    whole = covered.index[covered.to_numpy() == length[covered.index].to_numpy()]
    months = days[days["month"].isin(whole)].groupby(["month", "Dept"])["Weekly_Sales"].sum().reset_index()
    return pd.DataFrame(
        {"Date": months["month"], "Dept": months["Dept"], "Weekly_Sales": months["Weekly_Sales"]}
    )


def _write_real_csvs(
    sales: pd.DataFrame, folder: Path, periods: Periods = WEEKS, calendar: bool = False
) -> dict[str, Path]:
    """The raw tables storecast loads, as CSV files a user would write: one order per
    week, or per month (dated on its first day) with ``periods`` MONTHS; with ``calendar``
    the set's holidays as a calendar of events."""
    files = RawFiles(folder)
    files.write("stores", [[1, "Store 1", "US"]])
    depts = sorted(sales["Dept"].unique())
    files.write("products", [[d, f"Department {d}", f"department {d}", "1.00"] for d in depts])
    totals = _by_month(sales) if periods is MONTHS else sales
    dates = sorted(totals["Date"].unique())
    files.write(
        "orders",
        [[i + 1, 1, f"{w}T12:00:00Z", "store"] for i, w in enumerate(dates)],
    )
    order_of = {w: i + 1 for i, w in enumerate(dates)}
    sold = totals[totals["Weekly_Sales"] >= 1]
    files.write(
        "order_items",
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
    files.write("promotions", promotions)
    if calendar:
        # The holidays the set comes with (IsHoliday: the weeks of the Super Bowl, Labor
        # Day, Thanksgiving and Christmas), named by their month, as the retailer's calendar.
        files.write(
            "calendar_events", [[friday, HOLIDAYS[friday.month]] for friday in _holiday_fridays(sales)]
        )
    return files.paths


def _read_real(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt") as handle:
        sales = pd.read_csv(handle)
    sales["Date"] = pd.to_datetime(sales["Date"]).dt.date
    sales["markdown"] = sales[[f"MarkDown{i}" for i in range(1, 6)]].fillna(0).sum(axis=1)
    sales["IsHoliday"] = sales["IsHoliday"].astype(str) == "True"
    return sales


def _holiday_fridays(sales: pd.DataFrame) -> list[date]:
    """The Fridays ending the real set's holiday weeks (``IsHoliday``), oldest first."""
    return sorted(set(sales.loc[sales["IsHoliday"], "Date"]))


def _real_holiday_weeks() -> tuple[date, ...]:
    """The starts (Saturdays) of the real set's holiday weeks."""
    return tuple(_week_start(friday) for friday in _holiday_fridays(_read_real(REAL_DATA)))


def _load_real(
    runner: CliRunner,
    env: dict[str, str],
    folder: Path,
    periods: Periods = WEEKS,
    department: int | None = None,
    calendar: bool = False,
) -> None:
    sales = _read_real(REAL_DATA)
    if department is not None:
        known = sorted(int(d) for d in sales["Dept"].unique())
        if department not in known:
            raise SystemExit(f"--department {department}: the real set's departments are {known}")
        # One series, as a one-product retailer's: its markdowns read against its own sales.
        sales = sales[sales["Dept"] == department].reset_index(drop=True)
    _load_files(runner, env, _write_real_csvs(sales, folder, periods, calendar))


#: The promotion panel's draw unless ``--seed`` names another (``promotion_panel.simulate``'s).
PANEL_SEED = 7


def _load_panel(
    runner: CliRunner,
    env: dict[str, str],
    folder: Path,
    shape: PanelShape = PLAIN,
    calendar: bool = False,
    seed: int = PANEL_SEED,
) -> None:
    _load_files(runner, env, write_panel(folder, seed=seed, shape=shape, calendar=calendar))


def _true_means(
    origins: list[date], horizons: int = WEEKS.horizons, shape: PanelShape = PLAIN, seed: int = PANEL_SEED
) -> Forecasts:
    """The promotion panel's expected units, before its noise, ``horizons`` weeks from each
    origin: what no forecast of the mean can beat on average, so the gap to it is what is
    left to gain."""
    panel = simulate(seed, shape)
    stores, weeks, products = panel.mean.shape
    store, product = np.meshgrid(np.arange(1, stores + 1), np.arange(1, products + 1), indexing="ij")
    series = _series(pd.Series(store.ravel()), pd.Series(product.ravel()))
    frames = []
    for origin in origins:
        for h in range(1, horizons + 1):
            target = WEEKS.step(origin, h - 1)
            week = (target - FIRST_WEEK).days // 7
            if 0 <= week < weeks:
                frames.append(
                    pd.DataFrame(
                        {
                            "series": series,
                            "origin": origin,
                            "horizon": h,
                            "target": target,
                            # stores x products, in the order of series above
                            "forecast": panel.mean[:, week, :].ravel(),
                            "lower_80": np.nan,
                            "upper_80": np.nan,
                        }
                    )
                )
    return Forecasts(pd.concat(frames, ignore_index=True)[COLUMNS])


def _load_sample(
    runner: CliRunner, env: dict[str, str], folder: Path, shapes: Sequence[str] = ("weekly",)
) -> None:
    arguments = [a for shape in shapes for a in ("--shape", shape)]
    result = runner.invoke(app, ["sample", "--scale", "small", *arguments], env=env)
    if result.exit_code != 0:
        raise SystemExit(f"storecast sample failed:\n{result.output}")
    print(f"  storecast sample --scale small {' '.join(arguments)}")


#: The ``stockouts`` panel: the sample's stock-outs, then its weekly shape.
STOCKOUT_SHAPES = ("stockouts", "weekly")
#: Where ``stockouts-hidden`` and ``stockouts-log`` keep the daily zero stock counts, so that
#: the evaluation knows every week out of stock whatever storecast is shown.
ZERO_COUNTS = "public.zero_stock_counts"
#: The weeks out of stock a day or more, from ZERO_COUNTS (weeks as storecast starts them
#: here: Mondays, date_trunc's weeks).
KEPT_STOCK_OUTS = (
    "select store_id, product_id, date_trunc('week', snapshot_date)::date, true "
    f"from {ZERO_COUNTS} group by 1, 2, 3"
)


def _load_keeping_zero_counts(runner: CliRunner, env: dict[str, str], folder: Path) -> psycopg.Connection:
    """The ``stockouts`` panel, its zero counts copied to ZERO_COUNTS; a connection to change
    what storecast is shown."""
    _load_sample(runner, env, folder, STOCKOUT_SHAPES)
    conn = psycopg.connect(get_settings(env).conninfo, autocommit=True)
    conn.execute(f"create table {ZERO_COUNTS} as select * from raw.inventory_snapshots where on_hand <= 0")
    return conn


def _load_hiding_counts(runner: CliRunner, env: dict[str, str], folder: Path) -> None:
    """The ``stockouts`` panel with its zero stock counts moved aside after loading:
    storecast reads the sales as if it had no counts, the evaluation still knows the weeks."""
    with _load_keeping_zero_counts(runner, env, folder) as conn:
        hidden = conn.execute("delete from raw.inventory_snapshots where on_hand <= 0").rowcount
    print(f"  {hidden:,} zero stock counts hidden from storecast")


def _load_stock_log(runner: CliRunner, env: dict[str, str], folder: Path) -> None:
    """The ``stockouts`` panel with its daily counts thinned to a stock system's log of
    changes: a row only where the count differs from the day before's, so a spell out of
    stock is one row, its first day's 0."""
    with _load_keeping_zero_counts(runner, env, folder) as conn:
        unchanged = conn.execute(
            "delete from raw.inventory_snapshots as counted using raw.inventory_snapshots as before "
            "where before.product_id = counted.product_id and before.store_id = counted.store_id "
            "and before.snapshot_date = counted.snapshot_date - 1 and before.on_hand = counted.on_hand"
        ).rowcount
        kept, zeros = conn.execute(
            "select count(*), count(*) filter (where on_hand <= 0) from raw.inventory_snapshots"
        ).fetchone() or (0, 0)
    print(
        f"  {unchanged:,} unchanged daily counts dropped: {kept:,} rows of changes left, {zeros:,} of them zeros"
    )


WEEKLY = WEEKS.settings()
#: The trend panel's spread of yearly log growth across series.
TREND = 0.3
#: The shifted panel's step in the whole chain's demand, SHIFT_WEEKS before its end.
SHIFT = 1.3
#: The dip panel's share of a deal's price lift (in log) that the week after gives back.
DIP = 0.3
#: The shocks panel's spread (in log) of each week's chain-wide and each store's weekly factor.
SHOCK = 0.15


#: The simulated panels by name.
PANELS: dict[str, PanelShape] = {
    "panel": PLAIN,
    # Every series trending (a year's change exp(g), g ~ N(0, TREND)).
    "trend": PanelShape(growth=TREND),
    # The whole chain's demand up by SHIFT over its last SHIFT_WEEKS weeks.
    "shift": PanelShape(shift=SHIFT),
    # A moving holiday; its third year falls in the last origins' weeks.
    "festival": PanelShape(festival=True),
    # The week after a deal gives back DIP of the deal's price lift (shoppers stocked up).
    "dip": PanelShape(dip=DIP),
    # Every week a chain-wide and a per-store factor (SHOCK in log) on every product.
    "shocks": PanelShape(shock=SHOCK),
}


def _panel(shape: PanelShape, seed: int = PANEL_SEED) -> Source:
    """The promotion panel drawn with ``seed``, shaped by ``shape``."""
    load = partial(_load_panel, shape=shape, seed=seed)
    return Source(
        load,
        WEEKLY,
        origins=4,
        floor=partial(_true_means, shape=shape, seed=seed),
        with_calendar=partial(load, calendar=True) if shape.festival else None,
        event_periods=(
            (lambda: tuple(day - timedelta(days=day.weekday()) for day in FESTIVAL_DAYS))
            if shape.festival
            else None
        ),
    )


SOURCES: dict[str, Source] = {
    # The data dates each week by the Friday that ends it; weeks without sales were not reported.
    "real": Source(
        _load_real,
        [*WEEKLY, "week_start=saturday", "demand_missing_periods=unobserved"],
        origins=12,
        with_calendar=partial(_load_real, calendar=True),
        event_periods=_real_holiday_weeks,
    ),
    **{name: _panel(shape) for name, shape in PANELS.items()},
    "sample": Source(_load_sample, [*WEEKLY, "demand_missing_periods=unobserved"], origins=4),
    # The real set by calendar month: a user's monthly extract.
    "monthly": Source(
        partial(_load_real, periods=MONTHS),
        [*MONTHS.settings(), "demand_missing_periods=unobserved"],
        origins=6,
        periods=MONTHS,
        with_calendar=partial(_load_real, periods=MONTHS, calendar=True),
    ),
    # The sample generator's monthly shape: 658 store x product series by calendar month.
    "sample-monthly": Source(
        partial(_load_sample, shapes=("monthly",)), MONTHS.settings(), origins=4, periods=MONTHS
    ),
    # The weekly shape of a retailer whose shelves run empty now and then, counted daily.
    "stockouts": Source(
        partial(_load_sample, shapes=STOCKOUT_SHAPES),
        [*WEEKLY, "demand_missing_periods=unobserved"],
        origins=4,
    ),
    # The same with the zero counts hidden from storecast: what reading them gains.
    "stockouts-hidden": Source(
        _load_hiding_counts,
        [*WEEKLY, "demand_missing_periods=unobserved"],
        origins=4,
        stock_outs=KEPT_STOCK_OUTS,
    ),
    # The same counted by a stock system's log of changes, read as one (stock_counts).
    "stockouts-log": Source(
        _load_stock_log,
        [*WEEKLY, "demand_missing_periods=unobserved", "stock_counts=on_change"],
        origins=4,
        stock_outs=KEPT_STOCK_OUTS,
    ),
}


@dataclass
class Forecasts:
    """Point forecasts (and 80 % bounds where a method has them) per series x origin x horizon."""

    frame: pd.DataFrame  # series, origin, horizon, target, forecast, lower_80, upper_80


COLUMNS = ["series", "origin", "horizon", "target", "forecast", "lower_80", "upper_80"]
#: The row of a simulated panel's expected units (Source.floor).
FLOOR = "true mean"


#: A series is one store x product, coded as store * SERIES_STORE + product.
SERIES_STORE = 1_000_000


def _series(store: pd.Series, product: pd.Series) -> pd.Series:
    return store.astype(np.int64) * SERIES_STORE + product.astype(np.int64)


@dataclass
class Panel:
    """Units per period (rows) and series (columns); NaN where unobserved.
    ``deal`` and ``feature`` hold the promotions planned per period and series (0 without),
    ``price`` the shelf prices set (NaN without), ``out_of_stock`` whether a day of the
    period ended with nothing on hand (its sales fall short of its demand), ``events`` the
    calendar's events of each period that has one (the chain's: the benchmark's panels have
    no store's own)."""

    units: pd.DataFrame
    deal: pd.DataFrame
    feature: pd.DataFrame
    price: pd.DataFrame
    out_of_stock: pd.DataFrame
    periods: Periods
    events: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))


def _by_series(conn: psycopg.Connection[tuple[object, ...]], query: str, values: list[str]) -> pd.DataFrame:
    """Rows of ``query`` (store, product, period start, then ``values``) with their series."""
    table = pd.DataFrame(conn.execute(query).fetchall(), columns=["store", "product", "week", *values])
    table["series"] = _series(table["store"], table["product"])
    return table


def _read_panel(conn: psycopg.Connection[tuple[object, ...]], missing_is_zero: bool, source: Source) -> Panel:
    """The panel as storecast sees it after the build: units per period from features.demand_sales,
    and the promotions and shelf prices planned per store, product and period as the build spread them."""
    sales = _by_series(
        conn, "select store_id, product_id, period_start, units from features.demand_sales", ["units"]
    )
    starts = [min(sales["week"])]
    while starts[-1] < max(sales["week"]):
        starts.append(source.periods.step(starts[-1], 1))
    units = (
        sales.pivot(index="week", columns="series", values="units").reindex(pd.Index(starts)).astype(float)
    )
    if missing_is_zero:
        # A period without a sales row sold nothing, from the series' first sale on.
        started = units.notna().cummax()
        units = units.fillna(0).where(started)
    promotions = _by_series(
        conn,
        "select store_id, product_id, period_start, promo_discount_pct::float8, promo_feature_ad::int::float8 "
        "from features.demand_promotions",
        ["deal", "feature"],
    )
    prices = _by_series(
        conn,
        "select store_id, product_id, period_start, shelf_price from features.demand_shelf_prices",
        ["price"],
    )
    stock_outs = _by_series(conn, source.stock_outs, ["out"])
    events = pd.DataFrame(
        conn.execute(
            "select period_start, min(period_event) from features.demand_events group by 1 order by 1"
        ).fetchall(),
        columns=["period_start", "event"],
    ).set_index("period_start")["event"]

    def planned(table: pd.DataFrame, column: str) -> pd.DataFrame:
        return (
            table.pivot(index="week", columns="series", values=column)
            .reindex(index=units.index, columns=units.columns)
            .astype(float)
        )

    return Panel(
        units,
        planned(promotions, "deal").fillna(0.0),
        planned(promotions, "feature").fillna(0.0),
        planned(prices, "price"),
        planned(stock_outs, "out").notna(),
        source.periods,
        events,
    )


def _histories(panel: Panel, origins: list[date]) -> Iterator[tuple[date, int, pd.Series, pd.Series]]:
    """Per origin and series with an observed period before it: the periods before the origin
    (NaN where unobserved) and the observed ones."""
    for origin in origins:
        history = panel.units[panel.units.index < origin]
        for series in history.columns:
            observed = history[series].dropna()
            if not observed.empty:
                yield origin, int(series), history[series], observed


def _seasonal_naive(panel: Panel, origins: list[date]) -> Forecasts:
    """The same period a year earlier; the latest observed one where that was not observed."""
    rows, periods = [], panel.periods
    for origin, series, history, observed in _histories(panel, origins):
        for h in range(1, periods.horizons + 1):
            target = periods.step(origin, h - 1)
            value = history.get(periods.step(target, -periods.season), np.nan)
            if np.isnan(value):
                value = observed.iloc[-1]
            rows.append([series, origin, h, target, value, np.nan, np.nan])
    return Forecasts(pd.DataFrame(rows, columns=COLUMNS))


def _moving_average(panel: Panel, origins: list[date]) -> Forecasts:
    """The mean of the last ``periods.recent`` observed periods, for every horizon."""
    rows, periods = [], panel.periods
    for origin, series, _, observed in _histories(panel, origins):
        value = float(observed.iloc[-periods.recent :].mean())
        for h in range(1, periods.horizons + 1):
            rows.append([series, origin, h, periods.step(origin, h - 1), value, np.nan, np.nan])
    return Forecasts(pd.DataFrame(rows, columns=COLUMNS))


#: The GB baseline's features: store, product, horizon, the lags and the recent mean
#: (the Periods' own), the target period a year back and the period of the year.
LAG_FEATURES = [
    "store",
    "product",
    "horizon",
    "lag_a",
    "lag_b",
    "lag_c",
    "mean_recent",
    "last_year",
    "period_of_year",
]
PROMOTION_FEATURES = ["deal", "feature_ad", "price"]
#: With a calendar, the GB baseline's codes of the events of the target period and the one after.
EVENT_FEATURES = ["event", "next_event"]
#: The real set's holiday weeks by month (its documentation names these four).
HOLIDAYS = {2: "super bowl", 9: "labor day", 11: "thanksgiving", 12: "christmas"}


def _gbm_rows(panel: Panel, origin: date) -> pd.DataFrame:
    """Direct multi-horizon rows as of ``origin``: the Periods' lags before it (by week:
    1, 2, 4), the mean of its recent periods, the target period a year back, the period of
    the year, and the deal, feature ad and shelf price planned for the target period."""
    units, periods = panel.units, panel.periods
    before = units[units.index < origin]
    lags = [
        before.iloc[-k] if len(before) >= k else pd.Series(np.nan, index=units.columns) for k in periods.lags
    ]
    mean_recent = before.iloc[-periods.recent :].mean()
    # Each event name a code, as a user would encode a category (NaN: none).
    codes = {name: float(k) for k, name in enumerate(sorted(set(panel.events)))}
    frames = []
    for h in range(1, periods.horizons + 1):
        target = periods.step(origin, h - 1)
        year_ago = periods.step(target, -periods.season)
        frames.append(
            pd.DataFrame(
                {
                    "series": list(units.columns),
                    "store": units.columns.to_numpy(dtype=np.int64) // SERIES_STORE,
                    "product": units.columns.to_numpy(dtype=np.int64) % SERIES_STORE,
                    "origin": origin,
                    "horizon": h,
                    "target": target,
                    "lag_a": lags[0].to_numpy(),
                    "lag_b": lags[1].to_numpy(),
                    "lag_c": lags[2].to_numpy(),
                    "mean_recent": mean_recent.to_numpy(),
                    "last_year": units.loc[year_ago].to_numpy() if year_ago in units.index else np.nan,
                    "period_of_year": periods.of_year(target),
                    "deal": panel.deal.loc[target].to_numpy() if target in units.index else 0.0,
                    "feature_ad": panel.feature.loc[target].to_numpy() if target in units.index else 0.0,
                    "price": panel.price.loc[target].to_numpy() if target in units.index else np.nan,
                    "event": codes.get(panel.events.get(target), np.nan),
                    "next_event": codes.get(panel.events.get(periods.step(target, 1)), np.nan),
                    "y": units.loc[target].to_numpy() if target in units.index else np.nan,
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows["mean_recent"].notna()]


def _gradient_boosting(panel: Panel, origins: list[date], features: list[str]) -> Forecasts:
    """A global gradient-boosting model on ``features``, refit at each origin on the periods before it."""
    starts = list(panel.units.index)
    all_rows = {w: _gbm_rows(panel, w) for w in starts[max(panel.periods.lags) + 1 :]}
    out = []
    for origin in origins:
        train = pd.concat([r for w, r in all_rows.items() if w < origin])
        matured = np.array([panel.periods.step(t, 1) <= origin for t in train["target"]])
        train = train[matured & train["y"].notna().to_numpy()]
        # Store and product as categories where scikit-learn allows (up to 255 values), and events.
        categorical = [i for i, f in enumerate(features[:2]) if train[f].nunique() <= 255]
        categorical += [i for i, f in enumerate(features) if f in EVENT_FEATURES]
        model = HistGradientBoostingRegressor(random_state=0, categorical_features=categorical or None)
        model.fit(train[features], train["y"])
        test = all_rows[origin]
        out.append(test.assign(forecast=model.predict(test[features]), lower_80=np.nan, upper_80=np.nan))
    return Forecasts(pd.concat(out)[COLUMNS])


#: The name ``--against``'s forecasts print under (with the file's name).
SAVED = "saved run"


def _save(forecasts: Forecasts, path: Path) -> None:
    """Write storecast's forecasts as CSV, one row per series, origin and horizon, so that a
    later run (another commit, another setting) is compared with them origin by origin."""
    forecasts.frame.to_csv(path, index=False)


def _saved(path: Path, origins: list[date]) -> Forecasts:
    """A run's forecasts written by ``--save``, as a method to compare with; the run must
    have forecast every one of ``origins`` (the same data, the same --origins)."""
    if not path.is_file():
        raise SystemExit(f"--against {path}: no such file (write one with --save)")
    frame = pd.read_csv(path)
    missing_columns = [c for c in COLUMNS if c not in frame.columns]
    if missing_columns:
        raise SystemExit(
            f"--against {path}: not a file --save wrote (no column {', '.join(missing_columns)})"
        )
    for column in ("origin", "target"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    missing = sorted(set(origins) - set(frame["origin"]))
    if missing:
        raise SystemExit(
            f"--against {path}: no forecasts from origin {', '.join(map(str, missing))}: "
            "save it from a run of the same --data, --origins and --history"
        )
    return Forecasts(frame[frame["origin"].isin(origins)][COLUMNS].reset_index(drop=True))


def _keep_latest(conn: psycopg.Connection[tuple[object, ...]], periods: Periods, count: int) -> date:
    """Delete the sales before the latest ``count`` periods that have orders, and the
    promotions, shelf prices and stock counts that ended before them: the data of a retailer
    whose history is that short. Returns the first period kept."""
    row = conn.execute(
        "select min(p) from (select distinct date_trunc(%s, ordered_at)::date as p from raw.orders "
        "order by p desc limit %s) latest",
        [periods.name, count],
    ).fetchone()
    if row is None or not isinstance(row[0], date):
        raise SystemExit("--history: no orders were loaded")
    cut = row[0]
    before = "select order_id from raw.orders where ordered_at < %(cut)s"
    conn.execute(f"delete from raw.order_items where order_id in ({before})", {"cut": cut})
    conn.execute(f"update raw.redemptions set order_id = null where order_id in ({before})", {"cut": cut})
    conn.execute("delete from raw.orders where ordered_at < %(cut)s", {"cut": cut})
    for table, column in (
        ("promotions", "end_date"),
        ("shelf_prices", "end_date"),
        ("inventory_snapshots", "snapshot_date"),
    ):
        conn.execute(f"delete from raw.{table} where {column} < %(cut)s", {"cut": cut})
    return cut


#: ``--gaps``: runs of unreported periods per series, and the seed that places them.
GAP_RUNS = 2
GAP_SEED = 5


def _drop_runs(
    conn: psycopg.Connection[tuple[object, ...]], periods: Periods, length: int, before: date
) -> int:
    """Delete :data:`GAP_RUNS` runs of ``length`` periods from each series' order lines,
    each starting on a day the series' store has orders, all ending before ``before``.
    Returns the order lines deleted."""
    rng = np.random.default_rng(GAP_SEED)
    days: dict[int, list[date]] = {}
    for store, day in conn.execute(
        "select distinct store_id, ordered_at::date from raw.orders order by 1, 2"
    ).fetchall():
        assert isinstance(store, int)
        assert isinstance(day, date)
        days.setdefault(store, []).append(day)
    deleted = 0
    series = conn.execute(
        "select distinct o.store_id, i.product_id from raw.order_items i join raw.orders o using (order_id) order by 1, 2"
    ).fetchall()
    for store, product in series:
        assert isinstance(store, int)
        starts = [d for d in days[store] if periods.step(d, length) <= before]
        for start in rng.choice(np.array(starts, dtype=object), min(GAP_RUNS, len(starts)), replace=False):
            cursor = conn.execute(
                "delete from raw.order_items i using raw.orders o where i.order_id = o.order_id "
                "and o.store_id = %s and i.product_id = %s and o.ordered_at >= %s and o.ordered_at < %s",
                [store, product, start, periods.step(start, length)],
            )
            deleted += cursor.rowcount
    return deleted


def _storecast(
    source: Source, count: int, history: int | None = None, gaps: int | None = None
) -> tuple[Forecasts, Panel, list[date], dict[str, float]]:
    """Load the source as a user would (with ``history``, only its latest that many periods
    of sales; with ``gaps``, runs of that many periods unreported), build once, then train
    as of and score each origin."""
    timings: dict[str, float] = {}
    with throwaway_server() as (settings, env, folder):
        runner = CliRunner()
        started = time.perf_counter()
        source.load(runner, env, folder)
        if history is not None:
            with psycopg.connect(settings.conninfo, autocommit=True) as conn:
                cut = _keep_latest(conn, source.periods, history)
            print(f"  sales before {cut} deleted: {history} {source.periods.name}s of history kept")
        if gaps is not None:
            with psycopg.connect(settings.conninfo, autocommit=True) as conn:
                row = conn.execute("select max(ordered_at)::date from raw.orders").fetchone()
                assert row is not None
                assert isinstance(row[0], date)
                # A period before the first origin: the origins come from the built panel.
                cut = source.periods.step(row[0], -(source.periods.horizons - 1 + count))
                lines = _drop_runs(conn, source.periods, gaps, cut)
            print(
                f"  {lines:,} order lines deleted: {GAP_RUNS} runs of {gaps} {source.periods.name}s "
                f"per series unreported before {cut}"
            )
        timings["load"] = time.perf_counter() - started
        config = load_config(source.settings, environ={})
        specs = model_specs(config.values)
        started = time.perf_counter()
        build(settings, config, select=["+demand_features"], quiet=True)
        timings["build"] = time.perf_counter() - started
        rows = []
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            panel = _read_panel(conn, config.values["demand_missing_periods"] == "zero", source)
            apply_schema(conn)
            # The last origins whose forecast periods all lie in the data.
            last = max(panel.units.index)
            origins = [source.periods.step(last, -(source.periods.horizons - 1 + k)) for k in range(count)][
                ::-1
            ]
            started = time.perf_counter()
            for origin in origins:
                trained = train_model(conn, specs["demand"], settings.models_dir, origin)
                if trained.status != "champion":
                    # Each origin is forecast by the model trained as of it.
                    registry.promote(conn, "demand", trained.version)
                score(conn, ["demand"], origin, specs=specs)
                rows += conn.execute(
                    "select store_id, product_id, as_of_date, horizon, target_date, units, lower_80, upper_80 "
                    "from scores.demand_forecast where as_of_date = %s",
                    [origin],
                ).fetchall()
                window = conn.execute(
                    "select validation_start, validation_end, validation_rows, intervals ->> 'scale_power', "
                    "coalesce(intervals ->> 'width_slope', '0'), "
                    "jsonb_array_length(coalesce(jsonb_path_query_array(intervals, '$.series_spread.*'), '[]')) "
                    "from ml.model_versions where model_name = 'demand' and version = %s",
                    [trained.version],
                ).fetchone()
                assert window is not None
                print(
                    f"  origin {origin}: trained v{trained.version} ({trained.estimator}; validated on "
                    f"{window[0]}..{window[1]}, {window[2]:,} rows; intervals' scale power {window[3]}, "
                    f"width slope {window[4]}, {window[5]:,} series spreads), scored"
                )
            timings["train and score per origin"] = (time.perf_counter() - started) / len(origins)
    frame = pd.DataFrame(rows, columns=["store", "product", *COLUMNS[1:]])
    frame.insert(0, "series", _series(frame.pop("store"), frame.pop("product")))
    return Forecasts(frame), panel, origins, timings


def _joined(forecasts: Forecasts, panel: Panel) -> pd.DataFrame:
    # Unobserved periods (NaN) are not scored against (pandas 3 keeps NaN when stacking),
    # nor those out of stock a day or more: their sales are not their demand.
    actual = panel.units.where(~panel.out_of_stock).stack().dropna().reset_index()
    actual.columns = pd.Index(["target", "series", "y"])
    return forecasts.frame.merge(actual, on=["series", "target"], how="inner")


def _metrics(forecasts: Forecasts, panel: Panel, first_origin: date) -> pd.DataFrame:
    joined = _joined(forecasts, panel)
    history = panel.units[panel.units.index < first_origin]
    scale = (history - history.shift(panel.periods.season)).abs().mean().replace(0, np.nan)
    out = []
    for h, group in joined.groupby("horizon"):
        error = group["forecast"] - group["y"]
        covered = ((group["y"] >= group["lower_80"]) & (group["y"] <= group["upper_80"])).mean()
        out.append(
            {
                "horizon": h,
                "WAPE": error.abs().sum() / group["y"].abs().sum(),
                "MASE": (error.abs() / group["series"].map(scale)).mean(),
                "bias": error.sum() / group["y"].sum(),
                "cov80": covered if group["lower_80"].notna().all() else np.nan,
                "n": len(group),
            }
        )
    return pd.DataFrame(out)


def _by_origin(forecasts: Forecasts, panel: Panel) -> pd.Series:
    """WAPE per forecast origin, over every horizon."""
    joined = _joined(forecasts, panel).assign(error=lambda f: (f["forecast"] - f["y"]).abs())
    sums = joined.groupby("origin")[["error", "y"]].sum()
    return sums["error"] / sums["y"].abs()


def _differences(ours: Forecasts, theirs: Forecasts, panel: Panel) -> pd.Series:
    """Their WAPE minus storecast's, per origin."""
    return (_by_origin(theirs, panel) - _by_origin(ours, panel)).dropna()


def _mean_and_spread(difference: pd.Series) -> str:
    """The mean with two standard errors over the origins."""
    return f"{difference.mean():+.4f} ± {_spread(difference):.4f}"


def _spread(difference: pd.Series) -> float:
    """Two standard errors of the mean over the origins (NaN from one origin)."""
    return float(2 * difference.std(ddof=1) / np.sqrt(len(difference))) if len(difference) > 1 else np.nan


def _paired_values(ours: Forecasts, theirs: Forecasts, panel: Panel) -> dict[str, float | int]:
    """storecast against one baseline origin by origin: on how many origins its WAPE is
    lower (``lower_on`` of ``origins``), and the baseline's WAPE minus storecast's, its mean
    (``difference``) and two standard errors (``spread``)."""
    difference = _differences(ours, theirs, panel)
    return {
        "lower_on": int((difference > 0).sum()),
        "origins": len(difference),
        "difference": float(difference.mean()),
        "spread": _spread(difference),
    }


def _paired(ours: Forecasts, theirs: Forecasts, panel: Panel) -> str:
    """:func:`_paired_values` in words, so that a gap within the noise of a few origins
    reads as such."""
    paired = _paired_values(ours, theirs, panel)
    return (
        f"lower WAPE on {paired['lower_on']} of {paired['origins']} origins, "
        f"baseline minus storecast {paired['difference']:+.4f} ± {paired['spread']:.4f}"
    )


def _coverage_by_level(forecasts: Forecasts, panel: Panel) -> str:
    """80 % coverage per quartile of the point forecast, each with two standard errors over
    origins (:func:`_coverage_by_level_values`)."""
    coverage, spread = _coverage_by_level_values(forecasts, panel)
    return ", ".join(f"{c:.2f} ± {s:.2f}" for c, s in zip(coverage, spread, strict=True))


def _coverage_by_level_values(forecasts: Forecasts, panel: Panel) -> tuple[list[float], list[float]]:
    """80 % coverage per quartile of the point forecast, as the registry reports it, and
    two standard errors of each over origins (the quartiles of a few series are a few
    series, and their periods move together)."""
    joined = _joined(forecasts, panel)
    inside = ((joined["y"] >= joined["lower_80"]) & (joined["y"] <= joined["upper_80"])).to_numpy()
    forecast = joined["forecast"].to_numpy(dtype=float)
    pooled = coverage_by_band(joined["y"].to_numpy(dtype=float), forecast, inside)
    by_origin = pd.DataFrame(
        {"origin": joined["origin"], "band": level_bands(forecast), "inside": inside}
    ).pivot_table(index="origin", columns="band", values="inside", aggfunc="mean")
    spread = 2 * by_origin.std(ddof=1) / np.sqrt(by_origin.notna().sum())
    return [float(c) for c in pooled], [float(spread.get(b, np.nan)) for b in range(len(pooled))]


def _interval_scores(forecasts: Forecasts, panel: Panel) -> pd.DataFrame:
    """Each row's 80 % interval score (Gneiting and Raftery: its width plus 10 times how far
    the actual fell outside it) beside its origin and units sold."""
    joined = _joined(forecasts, panel)
    y, lower, upper = joined["y"], joined["lower_80"], joined["upper_80"]
    miss = (lower - y).clip(lower=0) + (y - upper).clip(lower=0)
    return pd.DataFrame(
        {"origin": joined["origin"], "score": (upper - lower) + miss / ((1 - 0.8) / 2), "y": y}
    )


def _interval_score(forecasts: Forecasts, panel: Panel) -> float:
    """The 80 % intervals' interval score summed over the units sold. A proper score: lower
    is better, and narrower intervals gain only where they still cover."""
    scores = _interval_scores(forecasts, panel)
    return float(scores["score"].sum() / scores["y"].sum())


def _paired_interval_scores(ours: Forecasts, theirs: Forecasts, panel: Panel) -> str:
    """storecast's interval score against another run's, origin by origin, as :func:`_paired`
    does for WAPE."""
    by_origin = [_interval_scores(f, panel).groupby("origin")[["score", "y"]].sum() for f in (ours, theirs)]
    difference = (
        by_origin[1]["score"] / by_origin[1]["y"] - by_origin[0]["score"] / by_origin[0]["y"]
    ).dropna()
    return (
        f"lower interval score on {int((difference > 0).sum())} of {len(difference)} origins, "
        f"theirs minus storecast {_mean_and_spread(difference)}"
    )


def _errors_in(joined: pd.DataFrame, targets: set[date]) -> tuple[float, float, int]:
    """WAPE, bias and rows of the forecasts joined with their actuals (:func:`_joined`)
    whose target period is one of ``targets``."""
    joined = joined[joined["target"].isin(targets)]
    error = joined["forecast"] - joined["y"]
    total = joined["y"].sum()
    return float(error.abs().sum() / total), float(error.sum() / total), len(joined)


def _print_event_errors(methods: dict[str, Forecasts], panel: Panel, event_periods: tuple[date, ...]) -> None:
    """Each method's WAPE and bias in the periods holding the data's events (holidays) and
    in the periods before them, over every origin and horizon that forecast one."""
    joined = {method: _joined(forecasts, panel) for method, forecasts in methods.items()}
    tested = set(joined["storecast"]["target"])
    held = set(event_periods) & tested
    before = {panel.periods.step(p, -1) for p in event_periods} & tested
    if not held and not before:
        print("no forecast period holds one of the data's holidays or precedes it: use more --origins")
        return
    print()
    print(
        f"in the {panel.periods.name}s of the data's holidays ({', '.join(map(str, sorted(held)))}) "
        f"and the {panel.periods.name}s before them ({', '.join(map(str, sorted(before)))}):"
    )
    for method, rows in joined.items():
        cells = []
        for targets in (held, before):
            if targets:
                wape, bias, n = _errors_in(rows, targets)
                cells.append(f"WAPE {wape:.3f} bias {bias:+.3f} ({n:,} rows)")
            else:
                cells.append("(none forecast)")
        print(f"  {method:<30} {cells[0]}  |  before: {cells[1]}")


def _finite(value: float) -> float | None:
    """A figure for JSON: NaN (nothing to measure) as null."""
    return None if np.isnan(value) else round(float(value), 6)


def _summary(
    label: str, methods: dict[str, tuple[str, Forecasts]], panel: Panel, origins: list[date]
) -> dict[str, object]:
    """The run's figures as ``--json`` writes them (what benchmarks.demand_suite tabulates):
    per method, keyed by its role (``storecast``, ``seasonal_naive``, ``moving_average``,
    ``gb_lags``, ``gb_promotions``, ``gb_events``, ``saved``, ``floor``), its name, WAPE, MASE
    and bias averaged over the horizons, its interval score where it has intervals, and
    against storecast origin by origin (:func:`_paired_values`); storecast's 80 % coverage
    by horizon and by forecast quartile."""
    ours = methods["storecast"][1]
    figures: dict[str, dict[str, object]] = {}
    by_horizon = {role: _metrics(forecasts, panel, origins[0]) for role, (_, forecasts) in methods.items()}
    for role, (name, forecasts) in methods.items():
        entry: dict[str, object] = {
            "name": name,
            **{key.lower(): _finite(by_horizon[role][key].mean()) for key in ("WAPE", "MASE", "bias")},
            "interval_score": (
                _finite(_interval_score(forecasts, panel))
                if forecasts.frame["lower_80"].notna().any()
                else None
            ),
        }
        if role != "storecast":
            entry["against_storecast"] = {
                key: _finite(value) if isinstance(value, float) else value
                for key, value in _paired_values(ours, forecasts, panel).items()
            }
        figures[role] = entry
    coverage, spread = _coverage_by_level_values(ours, panel)
    return {
        "label": label,
        "period": panel.periods.name,
        "horizons": panel.periods.horizons,
        "origins": len(origins),
        "first_origin": origins[0].isoformat(),
        "last_origin": origins[-1].isoformat(),
        "methods": figures,
        "coverage_by_horizon": [_finite(c) for c in by_horizon["storecast"]["cov80"]],
        "coverage_by_quartile": [_finite(c) for c in coverage],
        "coverage_by_quartile_spread": [_finite(c) for c in spread],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        choices=list(SOURCES),
        default="real",
        help="the panel to forecast (default: the real weekly set)",
    )
    parser.add_argument(
        "--origins", type=int, default=None, help="forecast origins (weeks, or months), the latest first back"
    )
    parser.add_argument(
        "--department", type=int, default=None, help="real or monthly: that department alone (one series)"
    )
    parser.add_argument(
        "--calendar",
        action="store_true",
        help="real, monthly or festival: load the set's own events as raw.calendar_events (and give them to a GB baseline)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"{', '.join(PANELS)}: draw the panel with this seed (default {PANEL_SEED})",
    )
    parser.add_argument(
        "--products",
        type=int,
        default=None,
        help=f"{', '.join(PANELS)}: the chain sells this many products (default {PRODUCTS}; 1: a one-product chain)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="keep only the latest N periods of sales (a retailer with a short history)",
    )
    parser.add_argument(
        "--gaps",
        type=int,
        default=None,
        help=f"delete {GAP_RUNS} runs of N periods from each series' sales (weeks not reported)",
    )
    parser.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="forecast this many periods ahead (demand_horizon; by default 4 weeks, or 3 months)",
    )
    parser.add_argument(
        "--save", type=Path, default=None, help="write storecast's forecasts to this CSV file"
    )
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="a CSV file --save wrote: that run's forecasts printed and compared as one more method",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the run's figures to this JSON file (what benchmarks.demand_suite reads)",
    )
    args = parser.parse_args(argv)
    source = SOURCES[args.data]
    if args.seed is not None and args.data not in PANELS:
        parser.error(f"--seed draws a simulated panel: use it with --data {', '.join(PANELS)}")
    if args.products is not None:
        if args.data not in PANELS:
            parser.error(f"--products sizes a simulated panel: use it with --data {', '.join(PANELS)}")
        if args.products < 1:
            parser.error(f"--products {args.products}: a chain sells one product or more")
    if args.seed is not None or args.products is not None:
        shape = PANELS[args.data]
        if args.products is not None:
            shape = replace(shape, products=args.products)
        source = _panel(shape, PANEL_SEED if args.seed is None else args.seed)
    if args.department is not None:
        if args.data not in ("real", "monthly"):
            parser.error("--department reads the real set: use it with --data real or monthly")
        source = replace(
            source,
            load=partial(
                _load_real, periods=source.periods, department=args.department, calendar=args.calendar
            ),
        )
    elif args.calendar:
        if source.with_calendar is None:
            with_events = ", ".join(name for name, s in SOURCES.items() if s.with_calendar is not None)
            parser.error(
                f"--calendar: --data {args.data} has no events of its own; those with them: {with_events}"
            )
        source = replace(source, load=source.with_calendar)
    if args.horizon is not None:
        if args.horizon < 1:
            parser.error(f"--horizon {args.horizon}: a forecast looks one period ahead or more")
        source = replace(
            source,
            periods=replace(source.periods, horizons=args.horizon),
            settings=[
                f"demand_horizon={args.horizon}" if s.startswith("demand_horizon=") else s
                for s in source.settings
            ],
        )
    started = time.perf_counter()
    label = args.data if args.department is None else f"{args.data}, department {args.department}"
    if args.calendar:
        label += ", with its events as a calendar"
    if args.seed is not None:
        label += f", drawn with seed {args.seed}"
    if args.history is not None:
        label += f", its latest {args.history} {source.periods.name}s"
    if args.horizon is not None:
        label += f", {args.horizon} {source.periods.name}s ahead"
    if args.gaps is not None:
        if args.gaps < 1:
            parser.error(f"--gaps {args.gaps}: a run is one period or more")
        label += f", {GAP_RUNS} runs of {args.gaps} {source.periods.name}s unreported per series"
    print(f"{label}: settings {' '.join('--var ' + s for s in source.settings)}")
    ours, panel, origins, timings = _storecast(
        source, args.origins or source.origins, args.history, args.gaps
    )
    observed = panel.units.notna()
    print(
        f"{panel.units.shape[1]} series x {len(panel.units)} {panel.periods.name}s, "
        f"{int((~observed).sum().sum())} cells unobserved "
        f"or before a series' first sale, {int((panel.out_of_stock & observed).sum().sum())} out of "
        f"stock a day or more (not scored against); origins {origins[0]}..{origins[-1]}"
    )
    methods = {
        "storecast": ours,
        f"seasonal naive ({panel.periods.season} {panel.periods.name}s)": _seasonal_naive(panel, origins),
        f"moving average ({panel.periods.recent} {panel.periods.name}s)": _moving_average(panel, origins),
        "gradient boosting on lags": _gradient_boosting(panel, origins, LAG_FEATURES),
    }
    roles = dict(zip(methods, ("storecast", "seasonal_naive", "moving_average", "gb_lags"), strict=True))
    # The planned features the panel has (a column of only NaN cannot be binned).
    planned = {"deal": panel.deal > 0, "feature_ad": panel.feature > 0, "price": panel.price.notna()}
    promotion_features = [f for f in PROMOTION_FEATURES if planned[f].to_numpy().any()]
    if promotion_features:
        methods["gradient boosting + promotions"] = _gradient_boosting(
            panel, origins, LAG_FEATURES + promotion_features
        )
        roles["gradient boosting + promotions"] = "gb_promotions"
    if not panel.events.empty:
        # What a user with the same calendar would try: the events as two more categories.
        methods["GB + promotions + events"] = _gradient_boosting(
            panel, origins, LAG_FEATURES + promotion_features + EVENT_FEATURES
        )
        roles["GB + promotions + events"] = "gb_events"
    if args.against is not None:
        methods[f"{SAVED} ({args.against.name})"] = _saved(args.against, origins)
        roles[f"{SAVED} ({args.against.name})"] = "saved"
    if args.save is not None:
        _save(ours, args.save)
    if source.floor is not None:
        methods[FLOOR] = source.floor(origins, source.periods.horizons)
        roles[FLOOR] = "floor"
    rows = []
    for name, forecasts in methods.items():
        table = _metrics(forecasts, panel, origins[0])
        rows.append(table.assign(method=name))
    result = pd.concat(rows)
    print()
    print(f"| {'method':<30} | h | {'WAPE':>6} | {'MASE':>6} | {'bias':>7} | {'cov80':>5} | {'n':>6} |")
    print(f"|{'-' * 32}|---|--------|--------|---------|-------|--------|")
    for r in result.to_dict("records"):
        cov = "" if np.isnan(r["cov80"]) else f"{r['cov80']:.2f}"
        print(
            f"| {r['method']:<30} | {r['horizon']} | {r['WAPE']:6.3f} | {r['MASE']:6.3f} | {r['bias']:+7.3f} "
            f"| {cov:>5} | {r['n']:>6} |"
        )
    overall = result.groupby("method", sort=False)[["WAPE", "MASE", "bias"]].mean()
    print()
    print(f"mean over horizons 1-{panel.periods.horizons}:")
    for method, wape, mase, bias in zip(
        overall.index, overall["WAPE"], overall["MASE"], overall["bias"], strict=True
    ):
        print(f"  {method:<30} WAPE {wape:.3f}  MASE {mase:.3f}  bias {bias:+.3f}")
    print()
    print("storecast against each baseline, origin by origin (± two standard errors):")
    for method, forecasts in methods.items():
        if method not in ("storecast", FLOOR):
            print(f"  {method:<30} {_paired(ours, forecasts, panel)}")
    if FLOOR in methods:
        above = _mean_and_spread(-_differences(ours, methods[FLOOR], panel))
        print(f"storecast's WAPE above the {FLOOR} (the floor, not a baseline): {above}")
    print(
        "storecast 80 % coverage by forecast quartile (lowest first, ± two standard errors over origins): "
        + _coverage_by_level(ours, panel)
    )
    scores = [
        f"{name} {_interval_score(forecasts, panel):.4f}"
        for name, forecasts in methods.items()
        if forecasts.frame["lower_80"].notna().any()
    ]
    print(
        "80 % interval score (width + 10 x each miss beyond a bound, over units sold; lower is better): "
        + ", ".join(scores)
    )
    for name, forecasts in methods.items():
        if name.startswith(SAVED) and forecasts.frame["lower_80"].notna().any():
            print(f"storecast against the {name}: {_paired_interval_scores(ours, forecasts, panel)}")
    if source.event_periods is not None:
        _print_event_errors(methods, panel, source.event_periods())
    print()
    print(
        "storecast seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        + f"; whole run {time.perf_counter() - started:.0f}"
    )
    if args.json is not None:
        summary = _summary(label, {roles[name]: (name, f) for name, f in methods.items()}, panel, origins)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
