"""What a model version was trained on, as one digest: its spec, the settings and SQL
that built its feature table, and the matured rows of its training window.

Two trainings with the same fingerprint would fit the same model on the same rows, so
the second is skipped (a rerun of the daily job for the same date retrains nothing).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from importlib.metadata import version

from psycopg import sql

from storecast.db import Conn, scalar
from storecast.training.data import labelled, on_training_dates
from storecast.training.spec import ModelSpec


def training_fingerprint(conn: Conn, spec: ModelSpec, as_of: date | None) -> str:
    """SHA-256 of the spec, the feature table's build settings and SQL digest, the
    storecast version and, per matured time value training reads, its row count and a
    checksum of its labels."""
    schema, table = spec.relation.split(".", 1)
    where, params = labelled(spec, as_of)
    window = conn.execute(
        sql.SQL(
            "select {t}::text, count(*), sum(hashtext({y}::text)::bigint)::text from {rel} "
            "where {w} and {d} group by 1 order by 1"
        ).format(
            t=sql.Identifier(spec.time_column),
            y=sql.Identifier(spec.label),
            rel=sql.Identifier(schema, table),
            w=where,
            d=on_training_dates(conn, spec),
        ),
        params,
    ).fetchall()
    built = conn.execute(
        "select settings::text, sql_sha256 from ml.build_settings where model = %s", [table]
    ).fetchone()
    payload = {
        "spec": spec.model_dump(mode="json"),
        "build": list(built) if built else None,
        "storecast": version("storecast"),
        "window": [list(row) for row in window],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def trained_with(conn: Conn, model_name: str, fingerprint: str) -> int | None:
    """The latest version of ``model_name`` trained with ``fingerprint``, if any."""
    version: int | None = scalar(
        conn,
        "select max(version) from ml.model_versions where model_name = %s and fingerprint = %s",
        [model_name, fingerprint],
    )
    return version
