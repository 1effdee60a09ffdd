"""The ``storecast`` command line: one command per verb, each delegating to a library function."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import numpy as np
import psycopg
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from database import server
from database.load_catalogue import LoadError
from database.load_ledger import LoadResult
from database.loader import MODES, load_csv
from database.sample import DEFAULT_END_DATE, SCALES, generate
from database.sample.load import LoadedTable, load_sample
from database.sample.shapes import SHAPES, reshape
from database.schema import apply_schema, ensure_schema, server_info
from scoring.families import ScoringError
from scoring.runs import PipelineBusyError, pipeline_lock
from storecast.build import BuildError, build
from storecast.config import ConfigError, ProjectConfig, config_path, load_config
from storecast.db import connect
from storecast.settings import (
    Settings,
    SettingsError,
    conninfo_to_url,
    dbt_environment,
    embedded_status,
    get_settings,
)
from training import registry
from training.data import FeatureError
from training.export import ParityError
from training.registry import RegistryError
from training.spec import SpecError, model_specs, select_specs
from training.split import SplitError
from training.train import TrainingError, TrainResult, train_many

app = typer.Typer(
    help="SQL-first retail predictions in Postgres.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(
    help="Manage the database: the embedded server, or an external one.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="The model registry: list, inspect, promote, roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")


def _console(stderr: bool) -> Console:
    """soft_wrap: never break a URL or a SQL line that someone will copy. Piped into a file or
    a CI log there is no terminal width to fit, so tables print whole instead of at 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, soft_wrap=True, width=None if stream.isatty() else 10_000)


out = _console(stderr=False)
err = _console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

#: Errors a user can act on: shown as one line, no traceback.
USER_ERRORS = (
    PipelineBusyError,
    SettingsError,
    ConfigError,
    TrainingError,
    server.ServerError,
    LoadError,
    BuildError,
    SpecError,
    SplitError,
    FeatureError,
    ParityError,
    RegistryError,
    ScoringError,
    psycopg.OperationalError,
    ValueError,
)


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def _step(message: str) -> Iterator[None]:
    started = time.perf_counter()
    with err.status(message):
        yield
    err.print(f"[green]✓[/] {message} ({time.perf_counter() - started:.1f}s)")


# ------------------------------------------------------------------ db


@db_app.command("start")
@_friendly
def db_start() -> None:
    """Start the embedded Postgres (creating it on first use) and apply the schema."""
    settings = get_settings()
    already = embedded_status(settings).running if settings.embedded else False
    status = server.start(settings)
    with psycopg.connect(settings.conninfo, autocommit=True) as conn:
        version = apply_schema(conn)
    verb = "already running" if already else "started"
    out.print(
        f"embedded Postgres {verb} (pid {status.pid}, data in {settings.pgdata}); schema version {version}"
    )


@db_app.command("stop")
@_friendly
def db_stop() -> None:
    """Stop the embedded Postgres."""
    settings = get_settings()
    stopped = server.stop(settings)
    out.print("embedded Postgres stopped" if stopped else "embedded Postgres was not running")


@db_app.command("init")
@_friendly
def db_init() -> None:
    """Apply database/init.sql (idempotent) and print the schema version."""
    settings = get_settings()
    with connect(settings) as conn:
        version = apply_schema(conn)
    out.print(f"schema version {version} applied")


@db_app.command("url")
@_friendly
def db_url() -> None:
    """Print a psql-ready connection URI: psql "$(storecast db url)"."""
    settings = get_settings()
    print(conninfo_to_url(settings.conninfo))


@db_app.command("env")
@_friendly
def db_env() -> None:
    """Print shell exports that point dbt's profiles.yml at this server: eval "$(storecast db env)"."""
    settings = get_settings()
    for name, value in dbt_environment(settings.conninfo).items():
        print(f"export {name}={shlex.quote(value)}")


@db_app.command("status")
@_friendly
def db_status() -> None:
    """Say which server is in use, whether it is up, and its Postgres and pgvector versions."""
    settings = get_settings()
    rows: list[tuple[str, str]] = [
        ("server", "embedded" if settings.embedded else "external"),
        ("configured by", settings.source),
    ]
    if settings.embedded:
        status = embedded_status(settings)
        if not status.initialised:
            rows.append(("state", "not created yet (storecast db start)"))
            _print_rows(rows)
            raise typer.Exit(3)
        if not status.running:
            rows.append(("state", "stopped (storecast db start)"))
            _print_rows(rows)
            raise typer.Exit(3)
        rows.append(("state", f"running (pid {status.pid})"))
    try:
        with psycopg.connect(settings.conninfo, autocommit=True, connect_timeout=10) as conn:
            info = server_info(conn)
    except psycopg.OperationalError as exc:
        rows.append(("state", f"unreachable: {str(exc).strip()}"))
        _print_rows(rows)
        raise typer.Exit(3) from None
    if not settings.embedded:
        rows.append(("state", "reachable"))
    rows.append(("url", conninfo_to_url(settings.conninfo)))
    rows.append(("postgres", info.server_version))
    if info.pgvector_version:
        iterative = "yes" if info.has_iterative_index_scans else "no (pgvector < 0.8)"
        rows.append(("pgvector", f"{info.pgvector_version} (iterative index scans: {iterative})"))
    elif info.pgvector_available:
        rows.append(("pgvector", f"{info.pgvector_available} available, not installed (storecast db init)"))
    else:
        rows.append(("pgvector", "not available on this server (storecast needs pgvector >= 0.6)"))
    rows.append(
        (
            "schema",
            f"version {info.schema_version}" if info.schema_version else "not applied (storecast db init)",
        )
    )
    if info.data_directory:
        rows.append(("data directory", info.data_directory))
    _print_rows(rows)


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.print(f"{key.ljust(width)}  {value}", highlight=False)


# ------------------------------------------------------------------ data


def _sample(
    settings: Settings, scale: str, seed: int, end_date: str | None, shapes: list[str] | None = None
) -> list[LoadedTable]:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    end = np.datetime64(end_date, "D") if end_date else DEFAULT_END_DATE
    with connect(settings) as conn:
        ensure_schema(conn)
        with _step(f"generated the {scale} sample retailer (seed {seed}, history to {end})"):
            data = generate(SCALES[scale], seed=seed, end_date=end)
        if shapes:
            with _step(f"reshaped it: {', '.join(shapes)}"):
                data = reshape(data, shapes, seed)
        with _step(f"loaded it into {conninfo_to_url(settings.conninfo)}"):
            loaded = load_sample(
                conn,
                data,
                source=f"storecast sample --scale {scale} --seed {seed} --end-date {end}",
                on_table=lambda t: err.print(f"  {t.table:<24} {t.rows:>10,} rows  {t.seconds:6.2f}s"),
            )
    return loaded


def _print_loaded(loaded: list[LoadedTable], seconds: float) -> None:
    table = Table(title="sample retailer loaded", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for t in loaded:
        table.add_row(t.table, f"{t.rows:,}")
    out.print(table)
    out.print(f"{sum(t.rows for t in loaded):,} rows in {seconds:.1f}s")


@app.command("sample")
@_friendly
def sample(
    scale: Annotated[str, typer.Option(help=f"One of: {', '.join(SCALES)}.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    end_date: Annotated[
        str | None, typer.Option(help=f"Last day of the history (default {DEFAULT_END_DATE}).")
    ] = None,
    shape: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Reshape the retailer like real data (repeatable, applied in order): {', '.join(SHAPES)}; "
            "see docs/sample-data.md."
        ),
    ] = None,
) -> None:
    """Generate the sample retailer and load it into the raw tables (replacing their rows)."""
    started = time.perf_counter()
    loaded = _sample(get_settings(), scale, seed, end_date, shape)
    _print_loaded(loaded, time.perf_counter() - started)


@app.command("load")
@_friendly
def load(
    table: Annotated[str, typer.Argument(help="Raw table, e.g. orders.")],
    file: Annotated[Path, typer.Argument(help="CSV file with a header line.")],
    mode: Annotated[str, typer.Option(help=f"One of: {', '.join(MODES)}.")] = "append",
    all_or_nothing: Annotated[
        bool, typer.Option("--all-or-nothing", help="Load nothing if any row is rejected.")
    ] = False,
    delimiter: Annotated[str, typer.Option(help="Field separator.")] = ",",
    date_format: Annotated[
        str | None,
        typer.Option(
            help="Order of the date and time fields as a PostgreSQL to_timestamp pattern, e.g. DD/MM/YYYY "
            "or MM/DD/YYYY HH24:MI (default: ISO 8601 only; anything else is rejected, never guessed)."
        ),
    ] = None,
) -> None:
    """Load a CSV file into a raw table; rejected rows go to raw.load_rejects with a reason.

    Exit status: 0 all rows loaded, 2 loaded with some rows rejected, 1 nothing loaded.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    settings = get_settings()
    with connect(settings) as conn:
        ensure_schema(conn)
        with Progress(
            TextColumn("staging {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task(file.name, total=file.stat().st_size if file.is_file() else None)
            result = load_csv(
                conn,
                table,
                file,
                mode=mode,  # type: ignore[arg-type]
                all_or_nothing=all_or_nothing,
                delimiter=delimiter.replace("\\t", "\t"),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                date_format=date_format,
            )
    _print_load_result(result)
    if result.status in ("rejected", "failed"):
        raise typer.Exit(1)
    if result.rows_rejected:
        raise typer.Exit(2)


def _print_load_result(result: LoadResult) -> None:
    colour = {"loaded": "green", "partial": "yellow"}.get(result.status, "red")
    out.print(
        f"[{colour}]{result.status}[/]: {result.rows_loaded:,} of {result.rows_in:,} rows into {result.table}, "
        f"{result.rows_rejected:,} rejected ({result.seconds:.1f}s, load {result.load_id})",
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


# ------------------------------------------------------------------ features

SCORING_DATE_HELP = "Scoring date (default: the day after the latest order)."


def _as_of_option(help_text: str) -> typer.models.OptionInfo:
    """The ``--as-of DATE`` option of build, train, score and run; the help says what it means there."""
    return typer.Option("--as-of", formats=["%Y-%m-%d"], help=help_text)  # type: ignore[no-any-return]


def _date(value: datetime | None) -> date | None:
    return value.date() if value else None


VAR_HELP = "Override a setting for this command, e.g. --var demand_grain=week (repeatable; `storecast config` lists them)."


def _var_option() -> typer.models.OptionInfo:
    """The repeatable ``--var NAME=VALUE`` option of config, build, train, score and run."""
    return typer.Option("--var", help=VAR_HELP)  # type: ignore[no-any-return]


def _no_wait_option() -> typer.models.OptionInfo:
    """``--no-wait`` of build, train, score and run: fail at once, naming the run, when another holds the lock."""
    return typer.Option(  # type: ignore[no-any-return]
        "--no-wait",
        help="Fail at once, naming it, when another build, train, score or run is running on this database "
        "(by default wait for it).",
    )


def _say(message: str) -> None:
    err.print(message, highlight=False)


def _config(variables: list[str] | None, as_of: datetime | None = None) -> ProjectConfig:
    """The effective settings: defaults, storecast.yml, --var, then --as-of; checked before anything runs."""
    return load_config(variables or []).with_as_of(_date(as_of))


@app.command("config")
@_friendly
def config_command(variables: Annotated[list[str] | None, _var_option()] = None) -> None:
    """Print every setting, its effective value and where it came from (default, file, --var)."""
    config = _config(variables)
    path = config_path()
    out.print(
        f"settings file: {path.resolve() if path else 'none (storecast.yml or STORECAST_CONFIG)'}",
        highlight=False,
    )
    table = Table(title_justify="left")
    for column in ("setting", "value", "source", "default"):
        table.add_column(column)
    for name, value in config.values.items():
        source = config.sources[name]
        table.add_row(
            name,
            "null" if value is None else str(value),
            source if source == "default" else f"[bold]{source}[/]",
            "null" if config.defaults[name] is None else str(config.defaults[name]),
        )
    out.print(table)


@app.command("build")
@_friendly
def build_command(
    as_of: Annotated[datetime | None, _as_of_option(SCORING_DATE_HELP)] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(
            help='dbt selection, e.g. --select "as_of_dates customer_features+" or "tag:a,tag:b" (repeatable).'
        ),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild incremental models from scratch.")
    ] = False,
    variables: Annotated[list[str] | None, _var_option()] = None,
    no_wait: Annotated[bool, _no_wait_option()] = False,
) -> None:
    """Run dbt build (models, data tests, unit tests) against the configured database."""
    config = _config(variables, as_of)
    settings = get_settings()
    started = time.perf_counter()
    # Whitespace separates selectors; a comma is dbt's intersection and stays in its selector.
    selectors = [part for value in select or [] for part in value.split()]
    with connect(settings) as conn:
        ensure_schema(conn)
        with pipeline_lock(conn, not no_wait, _say):
            build(
                settings,
                config,
                select=selectors,
                full_refresh=full_refresh,
                say=lambda s: err.print(f"[yellow]{s}[/]", highlight=False),
            )
    err.print(f"[green]✓[/] dbt build finished in {time.perf_counter() - started:.1f}s")


# ------------------------------------------------------------------ training


@app.command("train")
@_friendly
def train(
    models: Annotated[list[str] | None, typer.Argument(help="Models to train (default: all).")] = None,
    as_of: Annotated[
        datetime | None, _as_of_option("Read only labels whose window closed by this date.")
    ] = None,
    variables: Annotated[list[str] | None, _var_option()] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain", help="Train even a model whose spec, features and training rows are unchanged."
        ),
    ] = False,
    no_wait: Annotated[bool, _no_wait_option()] = False,
) -> None:
    """Train models from their specs; each new version is compared with the champion.

    A model whose spec, feature build and matured training rows are those of a version
    already registered is skipped (--retrain trains it again). Exit status 1 when any
    model could not be trained (the others still are).
    """
    config = _config(variables, as_of)
    specs = select_specs(models or [], config.values)
    settings = get_settings()
    with connect(settings) as conn:
        ensure_schema(conn)
        with pipeline_lock(conn, not no_wait, _say):
            report = train_many(
                conn,
                specs,
                settings.models_dir,
                config.as_of,
                progress=_say,
                # Models named on the command line are trained or fail; unnamed ones without data are skipped.
                skip_empty=not models,
                retrain=retrain,
            )
    _print_training(report.results, report.failures, report.skipped)
    if report.failures:
        raise typer.Exit(1)


def _print_training(results: list[TrainResult], failures: dict[str, str], skipped: dict[str, str]) -> None:
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
            _lift(r.spec.selection_metric, r.selection_value, r.baseline_value),
            "" if r.champion_value is None else f"{r.champion_value:.4f}",
            f"{r.parity:.1e}",
            f"{r.seconds:.1f}",
        )
    for name in failures:
        table.add_row(name, "", "[red]failed[/]", *[""] * 8)
    for name in skipped:
        table.add_row(name, "", "skipped", *[""] * 8)
    out.print(table)
    for message in failures.values():
        err.print(f"[bold red]error:[/] {message}", highlight=False)


def _lift(metric: str, value: float, baseline: float) -> str:
    """Relative improvement over the baseline, positive when better whichever way the metric points."""
    from training.metrics import HIGHER_IS_BETTER

    if not baseline:
        return ""
    change = (value - baseline) / abs(baseline)
    return f"{change if HIGHER_IS_BETTER[metric] else -change:+.1%}"


@models_app.command("list")
@_friendly
def models_list() -> None:
    """Every model version: status, trained as-of, key metric against its baseline."""
    with connect(get_settings()) as conn:
        rows = registry.versions(conn)
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
            ("[bold green]champion[/]" if r["status"] == "champion" else str(r["status"])),
            str(r["trained_as_of"]),
            str(r["estimator"]),
            metric,
            "" if value is None else f"{value:.4f}",
            "" if baseline is None else f"{baseline:.4f}",
            "" if value is None or baseline is None else _lift(metric, value, baseline),
            f"{r['created_at']:%Y-%m-%d %H:%M}",
            str(r["status_reason"] or ""),
        )
    out.print(table if rows else "no model versions yet: storecast train")


@models_app.command("show")
@_friendly
def models_show(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None, typer.Option(help="Version (default: the champion, else the newest).")
    ] = None,
) -> None:
    """Spec, features, metrics, calibration table and parity of one model version."""
    import json

    with connect(get_settings()) as conn:
        rows = registry.versions(conn, model)
        if not rows:
            raise RegistryError(f"no versions of {model!r}; storecast models list shows what there is")
        chosen = next((r for r in rows if r["version"] == version), None) if version else None
        chosen = chosen or next((r for r in rows if r["status"] == "champion"), rows[0])
        if version and chosen["version"] != version:
            raise RegistryError(f"{model} has no version {version}")
        calibration = registry.calibration_table(conn, model, int(chosen["version"]))
    r = chosen
    _print_rows(
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
            ("horizon", _horizon(r["spec"])),
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
    if r["intervals"]:
        out.print(
            "prediction intervals (scaled residual quantiles by horizon bucket and level band): "
            + json.dumps(r["intervals"])
        )
    if calibration:
        cal = Table(title="reliability (test window)", title_justify="left")
        for column in ("bin", "predicted", "observed", "rows"):
            cal.add_column(column, justify="right")
        for bin_, mean, rate, n in calibration:
            cal.add_row(str(bin_), f"{float(str(mean)):.3f}", f"{float(str(rate)):.3f}", str(n))
        out.print(cal)
    out.print("spec: " + json.dumps(r["spec"]))


def _horizon(spec: dict[str, object]) -> str:
    """A version's label horizon as its spec recorded it, in the unit it was set in."""
    periods, days, var = spec.get("horizon_periods"), spec.get("horizon_days"), spec.get("horizon_var")
    text = f"{periods} periods of {spec.get('period_days')} days" if periods else f"{days} days"
    return f"{text} (setting {var})" if var else text


@models_app.command("promote")
@_friendly
def models_promote(model: str, version: int) -> None:
    """Make a version the champion (the current one is retired), in one transaction."""
    with connect(get_settings()) as conn:
        registry.promote(conn, model, version)
    out.print(f"{model} v{version} is now the champion")


@models_app.command("rollback")
@_friendly
def models_rollback(
    model: str,
    to: Annotated[
        int | None, typer.Option("--to", help="Version to return to (default: the previous champion).")
    ] = None,
) -> None:
    """Return to the previous champion (or --to a version)."""
    with connect(get_settings()) as conn:
        version = registry.rollback(conn, model, to)
    out.print(f"{model} rolled back to v{version}")


# ------------------------------------------------------------------ scoring


@app.command("score")
@_friendly
def score_command(
    tables: Annotated[
        list[str] | None,
        typer.Argument(
            help="Score tables: customer, offer_redemption, sell_through, demand (default: every one with a champion)."
        ),
    ] = None,
    as_of: Annotated[
        datetime | None, _as_of_option("As-of date (default: the last build's scoring date).")
    ] = None,
    variables: Annotated[list[str] | None, _var_option()] = None,
    no_wait: Annotated[bool, _no_wait_option()] = False,
) -> None:
    """Score with the champion models and replace that date's rows in scores.*, atomically."""
    from scoring.score import score

    config = _config(variables, as_of)
    with connect(get_settings()) as conn:
        ensure_schema(conn)
        score(
            conn,
            tables,
            config.as_of,
            progress=lambda s: out.print(s, highlight=False),
            specs=model_specs(config.values),
            wait=not no_wait,
        )


@app.command("run")
@_friendly
def run_command(
    as_of: Annotated[datetime | None, _as_of_option(SCORING_DATE_HELP)] = None,
    retrain: Annotated[
        bool,
        typer.Option(
            "--retrain", help="Retrain every model, not only those due and changed since their last version."
        ),
    ] = False,
    variables: Annotated[list[str] | None, _var_option()] = None,
    no_wait: Annotated[bool, _no_wait_option()] = False,
) -> None:
    """The daily job: build features, train what is due, score, build the marts, log every step."""
    from scoring.pipeline import run_daily

    config = _config(variables, as_of)
    settings = get_settings()
    started = time.perf_counter()
    with connect(settings) as conn:
        ensure_schema(conn)
        summary = run_daily(
            conn,
            settings,
            config,
            retrain=retrain,
            progress=_say,
            wait=not no_wait,
        )
    out.print(
        f"run {summary.run_id} for {summary.as_of} finished in {time.perf_counter() - started:.0f}s: "
        f"scored {summary.scored}; {summary.counters}; see `storecast runs`",
        highlight=False,
    )


@app.command("runs")
@_friendly
def runs_command(last: Annotated[int, typer.Option(help="How many runs to show.")] = 5) -> None:
    """What ran, how long it took, how many rows, what failed."""
    from scoring.runs import abandon_dead_steps, recent_runs

    with connect(get_settings()) as conn:
        ensure_schema(conn)
        abandon_dead_steps(conn)
        rows = recent_runs(conn, last)
    table = Table(title_justify="left")
    for column in ("run", "as of", "step", "status", "started", "took", "rows", "message"):
        table.add_column(column)
    for run_id, as_of_date, step_name, status, started, took, n, _, message in rows:
        colour = {"succeeded": "green", "failed": "red", "abandoned": "red"}.get(str(status), "yellow")
        table.add_row(
            str(run_id),
            str(as_of_date),
            str(step_name),
            f"[{colour}]{status}[/]",
            f"{started:%Y-%m-%d %H:%M:%S}",
            f"{took.total_seconds():.1f}s" if isinstance(took, timedelta) else "",
            "" if n is None else f"{n:,}",
            str(message or ""),
        )
    out.print(table if rows else "no runs yet")


# ------------------------------------------------------------------ demo

EXAMPLE_SQL = """\
select * from marts.offer_recommendations
where customer_id = (select min(customer_id) from marts.offer_recommendations) order by rank;

select stock_status, count(*) from marts.inventory_plan group by 1;
select product_id, store_id, on_hand, stock_counted_on, reorder_point, suggested_order_units
from marts.inventory_plan where stock_status = 'reorder now' order by suggested_order_units desc limit 10;

select product_id, title, sell_through_probability, guardrail, similar_past_items -> 0 as most_similar
from marts.sell_through_projection where guardrail = 'block';

select * from marts.customer_scores order by churn_probability desc limit 10;

select model_name, version, status, estimator, selection_metric,
       metrics ->> selection_metric as value, baseline_metrics ->> selection_metric as baseline
from ml.model_versions where status = 'champion';"""


def _print_champion_scores(scores: list[registry.ChampionScore]) -> None:
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
            "[green]beats it[/]" if s.beats_baseline else "[bold red]does NOT beat it[/]",
        )
    out.print(table)
    for s in scores:
        if not s.beats_baseline:
            out.print(
                f"[bold red]{s.model_name}[/] v{s.version} does not beat the {s.baseline} baseline on its own test "
                f"window ({s.metric} {s.value:.4f} against {s.baseline_value:.4f}): read its scores as a "
                "demonstration of the path on sample data, not as predictions to act on.",
                highlight=False,
            )


@app.command("demo")
@_friendly
def demo(
    scale: Annotated[str, typer.Option(help=f"One of: {', '.join(SCALES)}.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Start the embedded database, load the sample retailer, run the whole pipeline, show SQL to try."""
    from scoring.pipeline import run_daily

    started = time.perf_counter()
    settings = get_settings()
    if settings.embedded:
        with _step(f"embedded Postgres running in {settings.pgdata}"):
            server.start(settings)
    loaded = _sample(settings, scale, seed, None)
    _print_loaded(loaded, time.perf_counter() - started)
    with connect(settings) as conn:
        # The sample replaced the raw data, so the feature tables are rebuilt from scratch.
        summary = run_daily(
            conn, settings, load_config(), full_refresh=True, progress=lambda s: err.print(s, highlight=False)
        )
        scores = registry.champion_scores(conn)
    url = conninfo_to_url(settings.conninfo)
    out.print(f"\nDone in {time.perf_counter() - started:.0f}s: scored {summary.scored} for {summary.as_of}.")
    _print_champion_scores(scores)
    out.print("\nTry it in psql:\n")
    out.print(f'  psql "{url}"\n', highlight=False)
    out.print(EXAMPLE_SQL, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
