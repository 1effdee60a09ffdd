"""The model registry in ``ml.model_versions``: register, compare, promote, roll back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from storecast.db import Conn, scalar
from storecast.training.errors import RegistryError
from storecast.training.metrics import better


@dataclass(frozen=True)
class Champion:
    """The serving version of a model."""

    model_name: str
    version: int
    onnx: bytes
    onnx_sha256: str
    feature_columns: list[str]
    spec: dict[str, Any]
    intervals: dict[str, Any] | None = None
    explainer: bytes | None = None  # storecast.training.explain; None for versions made before it


@dataclass(frozen=True)
class ChampionScore:
    """A champion's selection metric on its own test window, beside its baseline's."""

    model_name: str
    version: int
    metric: str
    value: float
    baseline: str
    baseline_value: float
    estimator: str
    trained_as_of: date

    @property
    def beats_baseline(self) -> bool:
        """Whether the champion does better than the baseline (whichever way the metric points)."""
        return better(self.metric, self.value, self.baseline_value)


def champion_scores(conn: Conn) -> list[ChampionScore]:
    """Every champion's test-window figure against its baseline, by model name."""
    cursor = conn.cursor(row_factory=class_row(ChampionScore))
    return cursor.execute(
        """
        select model_name, version, selection_metric as metric, (metrics ->> selection_metric)::float8 as value,
               spec ->> 'baseline' as baseline, (baseline_metrics ->> selection_metric)::float8 as baseline_value,
               estimator, trained_as_of
        from ml.model_versions
        where status = 'champion' and jsonb_typeof(metrics -> selection_metric) = 'number'
          and jsonb_typeof(baseline_metrics -> selection_metric) = 'number'
        order by model_name
        """
    ).fetchall()


def champion_names(conn: Conn) -> set[str]:
    """Models that have a champion (without loading any ONNX bytes)."""
    rows = conn.execute("select model_name from ml.model_versions where status = 'champion'").fetchall()
    return {str(row[0]) for row in rows}


def champion(conn: Conn, model_name: str) -> Champion | None:
    """The current champion of ``model_name``, if any."""
    return (
        conn.cursor(row_factory=class_row(Champion))
        .execute(
            "select model_name, version, onnx, onnx_sha256, feature_columns, spec, intervals, explainer "
            "from ml.model_versions where model_name = %s and status = 'champion'",
            [model_name],
        )
        .fetchone()
    )


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None: JSON has no such number, and
    Postgres rejects the ``NaN`` Python writes (a coverage in a level band no test row
    fell in, a metric of a single class); null says it is undefined."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def register(conn: Conn, record: dict[str, Any], promote: bool, reason: str, models_dir: Path) -> int:
    """Insert a new version (as champion when ``promote``) in one transaction; returns its number.

    The ONNX file is also written to ``models_dir/<name>/<version>.onnx`` for users
    who serve models elsewhere.
    """
    name = str(record["model_name"])
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('storecast.registry.' || %s))", [name])
        version: int = scalar(
            conn, "select coalesce(max(version), 0) + 1 from ml.model_versions where model_name = %s", [name]
        )
        if promote:
            conn.execute(
                "update ml.model_versions set status = 'retired', status_reason = %s "
                "where model_name = %s and status = 'champion'",
                [f"replaced by version {version}", name],
            )
        values = dict(
            record, version=version, status="champion" if promote else "candidate", status_reason=reason
        )
        calibration_rows = values.pop("calibration_table", [])
        columns = list(values)
        conn.execute(
            f"insert into ml.model_versions ({', '.join(columns)}) values ({', '.join(['%s'] * len(columns))})",
            [Jsonb(json_safe(v)) if isinstance(v, dict) else v for v in values.values()],
        )
        for bin_, mean, rate, rows in calibration_rows:
            conn.execute(
                "insert into ml.calibration (model_name, version, bin, predicted_mean, observed_rate, rows) "
                "values (%s, %s, %s, %s, %s, %s)",
                [name, version, bin_, mean, rate, rows],
            )
    path = models_dir / name / f"{version}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(record["onnx"])
    return version


def promote(conn: Conn, model_name: str, version: int, reason: str = "promoted by hand") -> None:
    """Make ``version`` the champion and retire the previous one, in one transaction."""
    with conn.transaction():
        found = conn.execute(
            "select status from ml.model_versions where model_name = %s and version = %s for update",
            [model_name, version],
        ).fetchone()
        if found is None:
            raise RegistryError(f"{model_name} has no version {version}")
        conn.execute(
            "update ml.model_versions set status = 'retired', status_reason = %s "
            "where model_name = %s and status = 'champion' and version <> %s",
            [f"replaced by version {version}", model_name, version],
        )
        conn.execute(
            "update ml.model_versions set status = 'champion', status_reason = %s where model_name = %s and version = %s",
            [reason, model_name, version],
        )


def rollback(conn: Conn, model_name: str, to_version: int | None = None) -> int:
    """Return to ``to_version``, or to the most recent version that served before the champion."""
    if to_version is None:
        to_version = scalar(
            conn,
            """
            select max(version) from ml.model_versions
            where model_name = %s and status = 'retired'
              and version < coalesce((select version from ml.model_versions where model_name = %s and status = 'champion'), 2147483647)
            """,
            [model_name, model_name],
        )
        if to_version is None:
            raise RegistryError(f"{model_name} has no earlier champion to roll back to")
    promote(conn, model_name, to_version, reason="rolled back to")
    return to_version


def versions(conn: Conn, model_name: str | None = None) -> list[dict[str, Any]]:
    """Registry rows without the ONNX bytes, newest first."""
    cur = conn.execute(
        """
        select model_name, version, status, status_reason, created_at, trained_as_of, estimator, calibration,
               selection_metric, metrics, baseline_metrics, parity_max_abs_diff, training_seconds,
               train_rows, validation_rows, test_rows, feature_columns, dropped_features, onnx_opset, onnx_sha256, intervals,
               sampling, overridden_labels, spec, library_versions, train_start, train_end, validation_start, validation_end,
               test_start, test_end
        from ml.model_versions
        where %(name)s::text is null or model_name = %(name)s
        order by model_name, version desc
        """,
        {"name": model_name},
    )
    names = [d.name for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def calibration_table(conn: Conn, model_name: str, version: int) -> list[tuple[object, ...]]:
    """The stored reliability table of a version."""
    return conn.execute(
        "select bin, predicted_mean, observed_rate, rows from ml.calibration where model_name = %s and version = %s order by bin",
        [model_name, version],
    ).fetchall()
