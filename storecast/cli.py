"""The ``storecast`` command line: one command per verb, each delegating to a library function.

A command imports the heavy parts of the library it needs (training, scoring, the report,
the service) inside itself, so ``--help``, ``runs`` or ``db status`` answer in about a
second instead of loading scikit-learn, ONNX and pandas first (``tests/unit/test_layers.py``).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import numpy as np
import psycopg
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from storecast.build import BuildError, build
from storecast.config import ConfigError, ProjectConfig, config_path, load_config, require_known, setting_docs
from storecast.database import server
from storecast.database.load_catalogue import LoadError
from storecast.database.loader import MODES, load_csv
from storecast.database.sample import DEFAULT_END_DATE, SCALES, generate
from storecast.database.sample.load import LoadedTable, load_sample
from storecast.database.sample.shapes import SHAPES, reshape
from storecast.database.schema import apply_schema, ensure_schema, server_info
from storecast.db import connect
from storecast.render import (
    err,
    out,
    print_champion_scores,
    print_config,
    print_error,
    print_load_result,
    print_loaded,
    print_rows,
    print_runs,
    print_setting_docs,
    print_training,
    print_version,
    print_versions,
)
from storecast.report import ReportError
from storecast.scoring.families import ScoringError
from storecast.scoring.runs import PipelineBusyError, pipeline_lock
from storecast.service import ServiceError
from storecast.settings import (
    Settings,
    SettingsError,
    conninfo_to_url,
    dbt_environment,
    embedded_status,
    get_settings,
    service_token,
)
from storecast.training import registry
from storecast.training.errors import FeatureError, ParityError, RegistryError, TrainingError
from storecast.training.spec import SpecError, model_specs, select_specs
from storecast.training.split import SplitError

app = typer.Typer(
    help="SQL-first retail predictions in Postgres.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(
    help="Manage the database: the embedded server, or an external one.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
models_app = typer.Typer(help="The model registry: list, inspect, promote, roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")


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
    ReportError,
    ServiceError,
    psycopg.OperationalError,
    ValueError,
)


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            print_error(exc)
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def _step(message: str) -> Iterator[None]:
    started = time.perf_counter()
    with err.status(message):
        yield
    err.print(Text("✓", style="green"), f"{message} ({time.perf_counter() - started:.1f}s)", highlight=False)


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
            print_rows(rows)
            raise typer.Exit(3)
        if not status.running:
            rows.append(("state", "stopped (storecast db start)"))
            print_rows(rows)
            raise typer.Exit(3)
        rows.append(("state", f"running (pid {status.pid})"))
    try:
        with psycopg.connect(settings.conninfo, autocommit=True, connect_timeout=10) as conn:
            info = server_info(conn)
    except psycopg.OperationalError as exc:
        rows.append(("state", f"unreachable: {str(exc).strip()}"))
        print_rows(rows)
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
    print_rows(rows)


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
            help=f"Reshape the retailer like real data (repeatable, applied in order, barcodes last): "
            f"{', '.join(SHAPES)}; see docs/sample-data.md."
        ),
    ] = None,
) -> None:
    """Generate the sample retailer and load it into the raw tables (replacing their rows)."""
    started = time.perf_counter()
    loaded = _sample(get_settings(), scale, seed, end_date, shape)
    print_loaded(loaded, time.perf_counter() - started)


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
    decimal_comma: Annotated[
        bool,
        typer.Option(
            "--decimal-comma",
            help="Numbers are written with a decimal comma, a point grouping thousands (1.234,56); "
            "usually with --delimiter ';'.",
        ),
    ] = False,
    thousands_comma: Annotated[
        bool,
        typer.Option(
            "--thousands-comma",
            help="Commas group the thousands of numbers, a point marks the decimals (1,234.56).",
        ),
    ] = False,
    encoding: Annotated[
        str,
        typer.Option(help="The file's text encoding, e.g. cp1252 (Excel on Windows) or latin-1."),
    ] = "utf-8",
    variables: Annotated[list[str] | None, _var_option()] = None,
) -> None:
    """Load a CSV file into a raw table; rejected rows go to raw.load_rejects with a reason.

    Keys named in the setting coded_keys are read as codes (raw.key_codes).
    Exit status: 0 all rows loaded, 2 loaded with some rows rejected, 1 nothing loaded.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    config = _config(variables)
    settings = get_settings()
    with connect(settings) as conn:
        ensure_schema(conn)
        with Progress(
            TextColumn("staging {task.description}", markup=False),
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
                decimal_comma=decimal_comma,
                thousands_comma=thousands_comma,
                coded_keys=config.values["coded_keys"],
                encoding=encoding,
            )
    print_load_result(result)
    if result.status in ("rejected", "failed"):
        raise typer.Exit(1)
    if result.rows_rejected:
        raise typer.Exit(2)


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
def config_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Settings to explain (what each means, as dbt_project.yml documents it).", show_default=False
        ),
    ] = None,
    variables: Annotated[list[str] | None, _var_option()] = None,
) -> None:
    """Print every setting, its effective value and where it came from (default, file, --var);
    with names, what those settings mean."""
    config = _config(variables)
    path = config_path()
    out.print(
        f"settings file: {path.resolve() if path else 'none (storecast.yml or STORECAST_CONFIG)'}",
        highlight=False,
    )
    for name in names or []:
        require_known(name, config.defaults)
    if names:
        print_setting_docs(config, names, setting_docs())
    else:
        print_config(config)


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
                say=lambda s: err.print(Text(s, style="yellow"), highlight=False),
            )
    err.print(Text("✓", style="green"), f"dbt build finished in {time.perf_counter() - started:.1f}s")


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
    from storecast.training.train import train_many

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
    print_training(report.results, report.failures, report.skipped)
    if report.failures:
        raise typer.Exit(1)


@models_app.command("list")
@_friendly
def models_list() -> None:
    """Every model version: status, trained as-of, key metric against its baseline."""
    with connect(get_settings()) as conn:
        rows = registry.versions(conn)
    print_versions(rows)


@models_app.command("show")
@_friendly
def models_show(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        int | None, typer.Option(help="Version (default: the champion, else the newest).")
    ] = None,
) -> None:
    """Spec, features, metrics, calibration table and parity of one model version."""
    with connect(get_settings()) as conn:
        rows = registry.versions(conn, model)
        if not rows:
            raise RegistryError(f"no versions of {model!r}; storecast models list shows what there is")
        chosen = next((r for r in rows if r["version"] == version), None) if version else None
        chosen = chosen or next((r for r in rows if r["status"] == "champion"), rows[0])
        if version and chosen["version"] != version:
            raise RegistryError(f"{model} has no version {version}")
        calibration = registry.calibration_table(conn, model, int(chosen["version"]))
    print_version(chosen, calibration)


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
    from storecast.scoring.score import score

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
            reasons=int(config.values["explanation_reasons"]),
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
    from storecast.scoring.pipeline import run_daily

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
    from storecast.scoring.runs import abandon_dead_steps, recent_runs

    with connect(get_settings()) as conn:
        ensure_schema(conn)
        abandon_dead_steps(conn)
        rows = recent_runs(conn, last)
    print_runs(rows)


@app.command("report")
@_friendly
def report_command(
    as_of: Annotated[
        datetime | None, _as_of_option("Scored date to report on (default: the latest scored date).")
    ] = None,
    folder: Annotated[Path, typer.Option("--out", help="Folder to write report.html into.")] = Path(
        "storecast-report"
    ),
) -> None:
    """Write a self-contained HTML report of the champions: backtests, calibration, gains,
    forecasts, coverage, drift and top features (opens offline, no server)."""
    from storecast.report import write_report

    with connect(get_settings()) as conn:
        ensure_schema(conn)
        path = write_report(conn, folder, as_of.date() if as_of else None)
    out.print(f"report written: {path.resolve()}", highlight=False)


# ------------------------------------------------------------------ service


@app.command("serve")
@_friendly
def serve_command(
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond loopback it needs STORECAST_SERVICE_TOKEN.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Run the HTTP service: upload CSVs, retrain with live progress, forecasts with their
    inventory plan, overrides; a page for people at / and the API's schema at /docs."""
    from storecast.service.app import serve

    settings = get_settings()
    if settings.embedded:
        server.start(settings)
    serve(settings, host, port, service_token())


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


@app.command("demo")
@_friendly
def demo(
    scale: Annotated[str, typer.Option(help=f"One of: {', '.join(SCALES)}.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Start the embedded database, load the sample retailer, run the whole pipeline, show SQL to try."""
    from storecast.scoring.pipeline import run_daily

    started = time.perf_counter()
    settings = get_settings()
    if settings.embedded:
        with _step(f"embedded Postgres running in {settings.pgdata}"):
            server.start(settings)
    loaded = _sample(settings, scale, seed, None)
    print_loaded(loaded, time.perf_counter() - started)
    with connect(settings) as conn:
        # The sample replaced the raw data, so the feature tables are rebuilt from scratch.
        summary = run_daily(
            conn, settings, load_config(), full_refresh=True, progress=lambda s: err.print(s, highlight=False)
        )
        scores = registry.champion_scores(conn)
    url = conninfo_to_url(settings.conninfo)
    out.print(f"\nDone in {time.perf_counter() - started:.0f}s: scored {summary.scored} for {summary.as_of}.")
    print_champion_scores(scores)
    out.print("\nTry it in psql:\n")
    out.print(f'  psql "{url}"\n', highlight=False)
    out.print(EXAMPLE_SQL, highlight=False)
    out.print("\nOr open the report on the models (one HTML file): storecast report --out storecast-report")
    out.print("Or serve it to people who do not write SQL: storecast serve, then open http://127.0.0.1:8000/")


if __name__ == "__main__":  # pragma: no cover
    app()
