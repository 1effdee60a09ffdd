"""Drift of each champion's inputs and outputs on a scored date, measured where the data lives.

Each champion carries the distribution of its training features and test predictions
(:mod:`storecast.training.drift`). Here PostgreSQL counts the rows of the scored date in
the same bins (``width_bucket`` over the stored decile edges; categories by value), and
each feature's population stability index and share of NULLs go to ``ml.feature_drift``,
one row per champion x date x feature, and ``prediction`` for its output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import sql
from psycopg.rows import class_row

from storecast.db import Conn, relation_columns
from storecast.scoring.families import FAMILIES, Family, Output
from storecast.training.data import as_float8
from storecast.training.drift import psi
from storecast.training.spec import ModelSpec

#: The name the output's own drift is recorded under.
PREDICTION = "prediction"


@dataclass(frozen=True)
class Drift:
    """One feature's (or the prediction's) drift on one scored date."""

    feature: str
    psi: float
    null_share: float
    reference_null_share: float
    rows: int
    #: The largest PSI one of the version's test dates showed against training.
    test_psi: float = 0.0


@dataclass(frozen=True)
class _Champion:
    model_version: int
    drift_reference: dict[str, Any] | None


def _bins(
    conn: Conn, value: sql.Composable, source: sql.Composable, edges: list[float], params: list[Any]
) -> tuple[list[float], float, int]:
    """Shares of the non-NULL values in each ``width_bucket`` bin, the share of NULLs and the row count."""
    counts = conn.execute(
        sql.SQL("select width_bucket({v}, %s::float8[]), count(*) from {src} group by 1").format(
            v=value, src=source
        ),
        [edges, *params],
    ).fetchall()
    by_bin = {b: int(n) for b, n in counts}  # type: ignore[call-overload]
    rows = sum(by_bin.values())
    nulls = by_bin.pop(None, 0)
    present = max(rows - nulls, 1)
    return [by_bin.get(i, 0) / present for i in range(len(edges) + 1)], nulls / max(rows, 1), rows


def _categories(
    conn: Conn, column: str, source: sql.Composable, reference: dict[str, Any], params: list[Any]
) -> tuple[list[float], list[float], float, int]:
    counts = conn.execute(
        sql.SQL("select coalesce({c}::text, ''), count(*) from {src} group by 1").format(
            c=sql.Identifier(column), src=source
        ),
        params,
    ).fetchall()
    by_value = {str(v): int(n) for v, n in counts}  # type: ignore[call-overload]
    rows = sum(by_value.values())
    known: dict[str, float] = reference["categories"]
    actual = [by_value.get(k, 0) / max(rows, 1) for k in known]
    actual.append(1 - sum(actual))
    expected = [*known.values(), float(reference["other_share"])]
    return expected, actual, by_value.get("", 0) / max(rows, 1), rows


def measure_features(
    conn: Conn, spec: ModelSpec, family: Family, reference: dict[str, Any], as_of: date
) -> list[Drift]:
    """Drift of every feature of the rows ``family`` scores for ``spec`` on ``as_of``."""
    relation = spec.scoring_relation or spec.relation
    times = family.rows(conn, spec, as_of)
    source = sql.SQL("{} where {} = any(%s)").format(
        sql.Identifier(*relation.split(".", 1)), sql.Identifier(spec.time_column)
    )
    types = relation_columns(conn, relation)
    out = []
    for column, ref in reference["numeric"].items():
        if column not in types or not ref["edges"]:
            continue
        shares, nulls, rows = _bins(
            conn, as_float8(column, types[column], null="NULL"), source, ref["edges"], [times]
        )
        out.append(
            Drift(
                column,
                psi(ref["shares"], shares),
                nulls,
                float(ref["null_share"]),
                rows,
                ref.get("test_psi", 0.0),
            )
        )
    for column, ref in reference["categorical"].items():
        if column not in types:
            continue
        expected, actual, nulls, rows = _categories(conn, column, source, ref, [times])
        null_share = float(ref["categories"].get("", 0.0))
        out.append(Drift(column, psi(expected, actual), nulls, null_share, rows, ref.get("test_psi", 0.0)))
    return out


def measure_prediction(
    conn: Conn, family: Family, output: Output, reference: dict[str, Any], version: int, as_of: date
) -> Drift | None:
    """Drift of the model's stored predictions on ``as_of`` from its test-window predictions."""
    ref = reference["prediction"]
    if not ref["edges"]:
        return None
    column, of_model = output.version_sql()
    source = sql.SQL("{} as s where s.as_of_date = %s and s.{} = %s and {}").format(
        sql.Identifier(*family.table.split(".", 1)), column, of_model
    )
    shares, nulls, rows = _bins(
        conn,
        sql.SQL("s.{}::float8").format(sql.Identifier(output.column)),
        source,
        ref["edges"],
        [as_of, version],
    )
    if not rows:
        return None
    return Drift(PREDICTION, psi(ref["shares"], shares), nulls, float(ref["null_share"]), rows)


def _champion(conn: Conn, model_name: str) -> _Champion | None:
    cursor = conn.cursor(row_factory=class_row(_Champion))
    return cursor.execute(
        "select version as model_version, drift_reference from ml.model_versions "
        "where model_name = %s and status = 'champion'",
        [model_name],
    ).fetchone()


def _write(
    conn: Conn, model: str, version: int, as_of: date, drifts: list[Drift], run_id: int | None
) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """
            insert into ml.feature_drift
                (model_name, model_version, as_of_date, feature, psi, test_psi, null_share, reference_null_share,
                 n_rows, run_id)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            on conflict (model_name, model_version, as_of_date, feature) do update set
                psi = excluded.psi, test_psi = excluded.test_psi, null_share = excluded.null_share, n_rows = excluded.n_rows,
                run_id = excluded.run_id, computed_at = now()
            """,
            [
                (
                    model,
                    version,
                    as_of,
                    d.feature,
                    d.psi,
                    d.test_psi,
                    d.null_share,
                    d.reference_null_share,
                    d.rows,
                    run_id,
                )
                for d in drifts
            ],
        )


def drift(
    conn: Conn,
    specs: dict[str, ModelSpec],
    as_of: date,
    run_id: int | None = None,
    predictions: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, list[Drift]]:
    """Measure and record each champion's feature drift on ``as_of`` (and, with
    ``predictions``, the drift of the predictions it stored for that date); returns the
    drifts by model. Versions trained before drift references were kept are skipped."""
    say = progress or (lambda _: None)
    found: dict[str, list[Drift]] = {}
    for family in FAMILIES.values():
        for output in family.outputs:
            spec = specs.get(output.model)
            champion = _champion(conn, output.model) if spec else None
            if spec is None or champion is None or not champion.drift_reference:
                continue
            reference = champion.drift_reference
            if predictions:
                measured = measure_prediction(conn, family, output, reference, champion.model_version, as_of)
                drifts = [measured] if measured else []
            else:
                drifts = measure_features(conn, spec, family, reference, as_of)
            if not drifts:
                continue
            _write(conn, output.model, champion.model_version, as_of, drifts, run_id)
            # A single date is never distributed like a training window (calendar features
            # least of all, every date one value): the feature named is the one furthest
            # beyond what the version's own test dates showed.
            worst = max(drifts, key=lambda d: d.psi - d.test_psi)
            seen = f" (its test dates up to {worst.test_psi:.3f})" if worst.test_psi else ""
            say(
                f"drift {output.model} v{champion.model_version} on {as_of}: {worst.feature} PSI {worst.psi:.3f}"
                + seen
            )
            found[output.model] = drifts
    return found
