"""Run dbt (in-process) against the configured server: ``storecast build``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from storecast.settings import Settings, dbt_environment

#: The repository root: dbt_project.yml and profiles.yml live here.
PROJECT_DIR = Path(os.environ.get("STORECAST_PROJECT_DIR") or Path(__file__).resolve().parent.parent)


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


def dbt_vars(as_of: date | None = None, extra: dict[str, object] | None = None) -> dict[str, object]:
    """dbt ``--vars`` for a build: the as-of date plus any overrides."""
    values: dict[str, object] = dict(extra or {})
    if as_of is not None:
        values["as_of_date"] = as_of.isoformat()
    return values


def run_dbt(
    settings: Settings,
    command: str,
    args: Sequence[str] = (),
    as_of: date | None = None,
    variables: dict[str, object] | None = None,
) -> None:
    """Invoke ``dbt <command>`` in this process, with the connection from ``settings``.

    dbt prints its own progress. Raises :class:`BuildError` when dbt reports a
    failure, naming the failed nodes.
    """
    from dbt.cli.main import dbtRunner

    # A command may be two words ("docs generate"); dbt wants the flags after both.
    argv = [*command.split(), "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    values = dbt_vars(as_of, variables)
    if values:
        argv += ["--vars", json.dumps(values)]
    argv += list(args)
    with _environment(dbt_environment(settings.conninfo)):
        result = dbtRunner().invoke(argv)
    if result.exception is not None:
        raise BuildError(f"dbt {command} failed: {result.exception}") from result.exception
    if not result.success:
        failed = []
        for node in getattr(result.result, "results", None) or []:
            status = str(getattr(node, "status", "")).lower()
            if status in {"error", "fail", "runtime error"}:
                failed.append(f"{node.node.unique_id} ({status})")
        detail = "; ".join(failed) if failed else "see dbt's output above"
        raise BuildError(f"dbt {command} failed: {detail}")


def build(
    settings: Settings,
    as_of: date | None = None,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    variables: dict[str, object] | None = None,
) -> None:
    """``dbt build``: models, tests and unit tests, in dependency order.

    ``variables`` override dbt vars from ``dbt_project.yml`` for this build.
    """
    args: list[str] = []
    if select:
        args += ["--select", *select]
    if full_refresh:
        args.append("--full-refresh")
    run_dbt(settings, "build", args, as_of=as_of, variables=variables)
