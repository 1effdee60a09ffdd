"""Run dbt (in-process) against the configured server: ``storecast build``.

dbt gets the project settings (:mod:`storecast.config`) as ``--vars``. An
incremental feature table keeps the rows of earlier builds, so a build whose
settings would change what those rows mean (a label horizon, the demand grain,
the time zone), or whose SQL changed since, rebuilds the table from scratch
instead of mixing old and new rows; ``ml.build_settings`` records what each
table was last built with.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from storecast.config import NOT_REBUILDING, PROJECT_DIR, ProjectConfig, load_config
from storecast.db import Conn, relation_columns
from storecast.settings import Settings, dbt_environment

__all__ = ["PROJECT_DIR", "BuildError", "SettingChange", "build", "model_vars", "run_dbt", "settings_changes"]


class BuildError(RuntimeError):
    """dbt reported a failure (a model or a test)."""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_dbt(
    settings: Settings, command: str, args: Sequence[str] = (), config: ProjectConfig | None = None
) -> Any:
    """Invoke ``dbt <command>`` in this process, with the connection from ``settings``
    and the vars of ``config`` (default: :func:`storecast.config.load_config`).

    dbt prints its own progress. Returns dbt's result; raises :class:`BuildError`
    when dbt reports a failure, naming the failed nodes.
    """
    from dbt.cli.main import dbtRunner

    config = config or load_config()
    # A command may be two words ("docs generate"); dbt wants the flags after both.
    argv = [*command.split(), "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if config.overrides():
        argv += ["--vars", json.dumps(config.overrides())]
    argv += list(args)
    # dbt writes beside the project unless told otherwise: into site-packages once installed.
    paths = {
        "DBT_TARGET_PATH": str(settings.dbt_dir / "target"),
        "DBT_LOG_PATH": str(settings.dbt_dir / "logs"),
    }
    with _environment({**dbt_environment(settings.conninfo), **paths}):
        result = dbtRunner().invoke(argv)
    if result.exception is not None:
        raise BuildError(f"dbt {command} failed: {result.exception}") from result.exception
    if not result.success:
        failed = [
            f"{node.node.unique_id} ({node.status})"
            for node in _results(result)
            if str(node.status).lower() in {"error", "fail", "runtime error"}
        ]
        detail = "; ".join(failed) if failed else "see dbt's output above"
        raise BuildError(f"dbt {command} failed: {detail}")
    return result


def _results(result: Any) -> list[Any]:
    return list(getattr(result.result, "results", None) or [])


# ------------------------------------------------------------------ which vars shape a model

_REF = re.compile(r"""\bref\(\s*['"](\w+)['"]\s*\)""")
_VAR = re.compile(r"""\bvar\(\s*['"](\w+)['"]""")
_CALL = re.compile(r"\b(\w+)\s*\(")
_INCREMENTAL = re.compile(r"""materialized\s*=\s*['"]incremental['"]""")


@cache
def _sources() -> tuple[dict[str, str], dict[str, str]]:
    """The raw SQL of every model and macro in the project, by name."""
    models = {p.stem: p.read_text(encoding="utf-8") for p in (PROJECT_DIR / "models_sql").rglob("*.sql")}
    macros = {
        p.stem: p.read_text(encoding="utf-8") for p in (PROJECT_DIR / "dbt_project" / "macros").rglob("*.sql")
    }
    return models, macros


def _walk(model: str, follow_refs: bool) -> tuple[set[str], list[str]]:
    """The vars read and the texts read by ``model``'s file and the macros it calls, and
    (``follow_refs``) its upstream models', transitively (one macro per file, named like
    the file, makes this a lookup)."""
    models, macros = _sources()
    seen_models: set[str] = {model}
    seen_macros: set[str] = set()
    found: set[str] = set()
    texts: list[str] = []
    pending = [models.get(model, "")]
    while pending:
        text = pending.pop()
        texts.append(text)
        found.update(_VAR.findall(text))
        for upstream in _REF.findall(text) if follow_refs else ():
            if upstream in models and upstream not in seen_models:
                seen_models.add(upstream)
                pending.append(models[upstream])
        for called in _CALL.findall(text):
            if called in macros and called not in seen_macros:
                seen_macros.add(called)
                pending.append(macros[called])
    return found, texts


def _upstream(model: str) -> tuple[frozenset[str], str]:
    """The vars ``model`` reads and a digest of its SQL, in its own file, the macros it calls
    and its upstream models, transitively."""
    found, texts = _walk(model, follow_refs=True)
    digest = hashlib.sha256("\0".join(sorted(texts)).encode()).hexdigest()
    return frozenset(found), digest


def own_vars(model: str) -> frozenset[str]:
    """The vars ``model``'s own SQL reads, directly or through its macros: what a dbt unit
    test of it, its inputs given as rows, depends on."""
    return frozenset(_walk(model, follow_refs=False)[0])


def model_vars(model: str) -> frozenset[str]:
    """The vars that ``model`` reads, directly or through its macros and upstream models."""
    return _upstream(model)[0]


#: The name a change of SQL is recorded under, beside the vars.
SQL_CHANGED = "its SQL"


@dataclass(frozen=True)
class SettingChange:
    """A setting (or the SQL) that differs from what an incremental table was last built with."""

    model: str
    name: str
    built_with: Any
    now: Any

    def __str__(self) -> str:
        if self.name == SQL_CHANGED and self.built_with is None:
            return f"{self.model}: built before its settings and SQL were recorded"
        if self.name == SQL_CHANGED:
            return f"{self.model}: its SQL (or that of a model or macro it reads) changed"
        return f"{self.model}: {self.name} was {self.built_with!r}, now {self.now!r}"


def _recorded(conn: Conn) -> dict[str, tuple[dict[str, Any], str | None]]:
    if conn.execute("select to_regclass('ml.build_settings')").fetchone() in (None, (None,)):
        return {}
    rows = conn.execute("select model, settings, sql_sha256 from ml.build_settings").fetchall()
    return {
        str(model): (dict(values), None if digest is None else str(digest))  # type: ignore[call-overload]
        for model, values, digest in rows
    }


def _incremental_tables(conn: Conn) -> list[str]:
    """Incremental feature models of the project whose table exists in the database."""
    models, _ = _sources()
    incremental = [m for m, text in models.items() if _INCREMENTAL.search(text)]
    rows = conn.execute(
        "select table_name from information_schema.tables where table_schema = 'features' and table_name = any(%s)",
        [incremental],
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def settings_changes(conn: Conn, config: ProjectConfig) -> list[SettingChange]:
    """Incremental tables whose recorded settings or SQL differ from now, one entry per
    difference; a table with nothing recorded (built by an older storecast) counts as changed."""
    recorded = _recorded(conn)
    changes = []
    for model in _incremental_tables(conn):
        built_with, digest = recorded.get(model, ({}, None))
        names, now_digest = _upstream(model)
        for name in sorted(names - NOT_REBUILDING):
            now = config.values.get(name)
            if name in built_with and built_with[name] != now:
                changes.append(SettingChange(model, name, built_with[name], now))
        if digest != now_digest:
            changes.append(SettingChange(model, SQL_CHANGED, digest, now_digest))
    return changes


def _record(conn: Conn, config: ProjectConfig, result: Any) -> None:
    built = {
        node.node.name
        for node in _results(result)
        if getattr(node.node, "resource_type", None) == "model"
        and node.node.config.materialized == "incremental"
        and str(node.status).lower() == "success"
    }
    for model in sorted(built):
        names, digest = _upstream(model)
        # The history lengths are kept, for advice when they leave a model too few dates
        # (storecast.training.history); the scoring date is not: training's fingerprint
        # reads these, and a build for another day changes nothing of the earlier dates.
        values = {name: config.values.get(name) for name in sorted(names - {"as_of_date"})}
        conn.execute(
            "insert into ml.build_settings (model, settings, sql_sha256) values (%s, %s, %s) "
            "on conflict (model) do update set settings = excluded.settings, "
            "sql_sha256 = excluded.sql_sha256, built_at = now()",
            [model, Jsonb(values), digest],
        )


#: ``dbt ls`` flags that print the selected models' names and nothing else.
_LS_MODELS = ("--resource-type", "model", "--output", "name", "--log-level", "none")


def _selection(select: Sequence[str]) -> list[str]:
    return ["--select", *select, "--indirect-selection", "cautious"] if select else []


def build(
    settings: Settings,
    config: ProjectConfig | None = None,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    say: Callable[[str], None] | None = None,
    quiet: bool = False,
    unit_tests: bool = True,
) -> None:
    """``dbt build``: models, tests and unit tests, in dependency order, with ``config``'s vars.

    ``select`` is dbt's selection syntax, one selector per item (``a,b`` intersects).
    Tests run only when every model they read is selected, so a selection builds on
    a fresh database. When a setting or the SQL that shapes a selected incremental
    table differs from what it was built with, the build rebuilds from scratch and says
    why; an unselected table's change waits for a build that selects it. ``quiet``
    keeps dbt to its errors (a benchmark's tables are its output, not dbt's progress).
    ``unit_tests=False`` leaves out dbt's unit tests, as dbt advises for production: their
    inputs and vars are fixed in their YAML, so they check the SQL, not the data, and give
    the same answer on every build of the same code.
    """
    config = config or load_config()
    tell = say or (lambda _: None)
    with psycopg.connect(settings.conninfo, autocommit=True) as conn:
        changes = settings_changes(conn, config)
        if changes and select:
            # Only a selected table's change rebuilds: an unselected one is not built, so
            # its change would never be recorded and would rebuild the selection every time.
            selected = set(run_dbt(settings, "ls", [*_selection(select), *_LS_MODELS], config).result)
            changes = [c for c in changes if c.model in selected]
        if changes and not full_refresh:
            tell(
                "settings or SQL changed since the last build, so the feature tables are rebuilt from scratch: "
                + "; ".join(str(c) for c in changes)
            )
            full_refresh = True
        args = _selection(select)
        if full_refresh:
            args.append("--full-refresh")
        if quiet:
            args.append("--quiet")
        if not unit_tests:
            args += ["--exclude-resource-type", "unit_test"]
        result = run_dbt(settings, "build", args, config)
        _record(conn, config, result)
        outside = scoring_date_outside_data(conn)
        if outside:
            tell(f"warning: {outside}")


def scoring_date_outside_data(conn: Conn) -> str:
    """A warning when the scoring date (var as_of_date) lies outside the data loaded: after
    it, the days between hold no orders, so the features read them as days without a sale;
    on or before the first order, nothing precedes it to learn from. Empty when it lies
    within (or nothing is built)."""
    # Not built yet, or built by a storecast before first_order_date (a build that left
    # it out of the selection).
    if "first_order_date" not in relation_columns(conn, "features.as_of_dates"):
        return ""
    row = conn.execute(
        "select as_of_date, first_order_date, data_observed_until from features.as_of_dates where is_scoring_date"
    ).fetchone()
    as_of, first_order, observed_until = row if row is not None else (None, None, None)
    if (
        not isinstance(as_of, date)
        or not isinstance(first_order, date)
        or not isinstance(observed_until, date)
    ):
        return ""
    if as_of <= first_order:
        return (
            f"the scoring date {as_of} is not after the first order ({first_order}): no day before it holds "
            f"data to build features or labels from; set as_of_date after {first_order}, or leave it unset "
            f"to score as of {observed_until}"
        )
    if as_of <= observed_until:
        return ""
    days = (as_of - observed_until).days
    return (
        f"the scoring date {as_of} is {days} day{'s' if days != 1 else ''} past the data, which ends "
        f"before {observed_until}: its features read those days as days without an order or a sale "
        "(recency grows, the latest demand periods count 0); load them, or leave as_of_date unset "
        f"to score as of {observed_until}"
    )
