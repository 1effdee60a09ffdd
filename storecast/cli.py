"""The ``storecast`` command line: one command per verb, each delegating to a library function."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
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
from database.loader import MODES, LoadError, LoadResult, load_csv
from database.sample import DEFAULT_END_DATE, SCALES, generate
from database.sample.load import LoadedTable, load_sample
from database.schema import apply_schema, server_info
from storecast.build import BuildError, build
from storecast.db import connect
from storecast.settings import Settings, SettingsError, conninfo_to_url, dbt_environment, get_settings

app = typer.Typer(
    help="SQL-first retail predictions in Postgres.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(
    help="Manage the database: the embedded server, or an external one.", no_args_is_help=True
)
app.add_typer(db_app, name="db")

# soft_wrap: never break a URL or a SQL line that someone will copy.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

P = ParamSpec("P")
R = TypeVar("R")

#: Errors a user can act on: shown as one line, no traceback.
USER_ERRORS = (SettingsError, server.ServerError, LoadError, BuildError, psycopg.OperationalError, ValueError)


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
    already = server.embedded_status(settings).running if settings.embedded else False
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
        status = server.embedded_status(settings)
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


def _sample(settings: Settings, scale: str, seed: int, end_date: str | None) -> list[LoadedTable]:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    end = np.datetime64(end_date, "D") if end_date else DEFAULT_END_DATE
    with connect(settings) as conn:
        apply_schema(conn)
        with _step(f"generated the {scale} sample retailer (seed {seed}, history to {end})"):
            data = generate(SCALES[scale], seed=seed, end_date=end)
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
) -> None:
    """Generate the sample retailer and load it into the raw tables (replacing their rows)."""
    started = time.perf_counter()
    loaded = _sample(get_settings(), scale, seed, end_date)
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
) -> None:
    """Load a CSV file into a raw table; rejected rows go to raw.load_rejects with a reason.

    Exit status: 0 all rows loaded, 2 loaded with some rows rejected, 1 nothing loaded.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    settings = get_settings()
    with connect(settings) as conn:
        apply_schema(conn)
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


@app.command("build")
@_friendly
def build_command(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of", formats=["%Y-%m-%d"], help="Scoring date (default: the day after the latest order)."
        ),
    ] = None,
    select: Annotated[
        list[str] | None,
        typer.Option(help='dbt selection, e.g. --select "as_of_dates customer_features+" (repeatable).'),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild incremental models from scratch.")
    ] = False,
) -> None:
    """Run dbt build (models, data tests, unit tests) against the configured database."""
    settings = get_settings()
    started = time.perf_counter()
    with connect(settings) as conn:
        apply_schema(conn)
    selectors = [part for value in select or [] for part in value.replace(",", " ").split()]
    build(settings, as_of=as_of.date() if as_of else None, select=selectors, full_refresh=full_refresh)
    err.print(f"[green]✓[/] dbt build finished in {time.perf_counter() - started:.1f}s")


# ------------------------------------------------------------------ demo

EXAMPLE_SQL = """\
select count(*) as orders, count(customer_id) as identified from raw.orders;

select category, sum(quantity) as units
from raw.order_items join raw.products using (product_id)
group by category order by units desc limit 5;

select p.product_id, p.title,
       round((e.embedding <=> (select embedding from raw.product_embeddings where product_id = 1))::numeric, 3) as distance
from raw.product_embeddings e join raw.products p using (product_id)
order by distance limit 5;"""


@app.command("demo")
@_friendly
def demo(
    scale: Annotated[str, typer.Option(help=f"One of: {', '.join(SCALES)}.")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Start the embedded database, load the sample retailer and show what is there."""
    started = time.perf_counter()
    settings = get_settings()
    if settings.embedded:
        with _step(f"embedded Postgres running in {settings.pgdata}"):
            server.start(settings)
    loaded = _sample(settings, scale, seed, None)
    _print_loaded(loaded, time.perf_counter() - started)
    url = conninfo_to_url(settings.conninfo)
    out.print("\nTry it in psql:\n")
    out.print(f'  psql "{url}"\n', highlight=False)
    out.print(EXAMPLE_SQL, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
