"""Scoring throughput: storecast's path against a naive pandas round trip and the bare stages.

Scores N rows (default 2,000,000 x 20 float features) with a 200-tree gradient-boosted
classifier, in one run:

(a) storecast: binary COPY out in chunks -> ONNX Runtime -> binary COPY into a staging
    table -> atomic swap into the score table (``scoring.score.write_scores``);
(b) the naive peer: ``pandas.read_sql`` -> ``predict_proba`` -> ``DataFrame.to_sql``;
(c) each stage alone on the same rows: COPY out into numpy, ONNX Runtime inference,
    COPY in of (key, score) rows. The slowest bare stage is the limit (a) is held to.

    python -m benchmarks.scoring_throughput [--rows 2000000]

Runs against the configured server (the embedded one by default) in a schema ``bench``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import psycopg
from psycopg import sql
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from database.pgbinary import Column, copy_columns
from scoring.score import predict, write_scores
from storecast.db import connect
from storecast.settings import conninfo_to_url, get_settings
from training.data import Frame, RowSource
from training.estimators import preprocessor
from training.export import export, float32_thresholds
from training.spec import ModelSpec

FEATURES = [f"f{i:02d}" for i in range(20)]
AS_OF = date(2026, 11, 23)


def _spec() -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "name": "bench",
            "description": "throughput benchmark",
            "task": "binary",
            "relation": "bench.features",
            "keys": ["row_id", "as_of_date"],
            "label": "label",
            "horizon_days": 1,
            "features": {"numeric": FEATURES},
            "candidates": ["hist_gradient_boosting_classifier"],
            "selection_metric": "roc_auc",
            "baseline": "recency_rule",
        }
    )


def _setup(conn: psycopg.Connection[tuple[object, ...]], rows: int) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, len(FEATURES)))
    label = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.standard_normal(rows) > 0.5).astype(float)
    conn.execute("create schema if not exists bench")
    conn.execute("drop table if exists bench.features, bench.scores, bench.copy_in, bench.naive_scores")
    conn.execute(
        sql.SQL(
            "create table bench.features (row_id bigint primary key, as_of_date date not null, label float8, {})"
        ).format(sql.SQL(", ").join(sql.SQL("{} float8").format(sql.Identifier(f)) for f in FEATURES))
    )
    columns = [
        Column("row_id", "int8", np.arange(rows)),
        Column("as_of_date", "date", np.full(rows, np.datetime64(AS_OF, "D"))),
        Column("label", "float8", label),
        *[Column(f, "float8", x[:, i]) for i, f in enumerate(FEATURES)],
    ]
    copy_columns(conn, sql.Identifier("bench", "features"), columns)
    for table in ("scores", "copy_in"):
        conn.execute(
            sql.SQL(
                "create table {} (as_of_date date not null, row_id bigint not null, probability float8 not null, "
                "primary key (as_of_date, row_id))"
            ).format(sql.Identifier("bench", table))
        )
    conn.execute("analyze bench.features")
    return x


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    """Print rows/s of each path and stage, as ratios to the slowest bare stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--trees", type=int, default=200)
    args = parser.parse_args()
    settings = get_settings()
    spec = _spec()
    with connect(settings) as conn:
        print(f"setting up {args.rows:,} rows x {len(FEATURES)} features ...", flush=True)
        x = _setup(conn, args.rows)
        sample = min(args.rows, 100_000)
        frame = pd.DataFrame(x[:sample].astype(np.float32).astype(np.float64), columns=FEATURES)
        labels = (x[:sample, 0] + 0.5 * x[:sample, 1] * x[:sample, 2] > 0.5).astype(int)
        pipeline = Pipeline(
            [
                ("preprocess", preprocessor(spec, linear=False)),
                (
                    "estimator",
                    HistGradientBoostingClassifier(max_iter=args.trees, early_stopping=False, random_state=0),
                ),
            ]
        ).fit(frame, labels)
        float32_thresholds(pipeline)
        session = ort.InferenceSession(export(pipeline, spec), providers=["CPUExecutionProvider"])
        print(f"model: {args.trees} trees; scoring ...", flush=True)

        def columns_for(chunk: Frame) -> list[Column]:
            return [
                Column("as_of_date", "date", np.full(len(chunk), np.datetime64(AS_OF, "D"))),
                Column("row_id", "int8", chunk.keys["row_id"].to_numpy()),
                Column("probability", "float8", predict(session, spec, chunk)),
            ]

        def open_rows() -> RowSource:
            return RowSource(conn, spec, [AS_OF], with_label=False)

        storecast_s, _ = _timed(lambda: write_scores(conn, "bench.scores", AS_OF, open_rows, columns_for))

        source = RowSource(conn, spec, [AS_OF], with_label=False)
        copy_out_s, full = _timed(lambda: source.fetch(0, len(source)))
        source.close()
        infer_s, probability = _timed(lambda: predict(session, spec, full))
        copy_in_s, _ = _timed(
            lambda: copy_columns(
                conn,
                sql.Identifier("bench", "copy_in"),
                [
                    Column("as_of_date", "date", np.full(len(full), np.datetime64(AS_OF, "D"))),
                    Column("row_id", "int8", full.keys["row_id"].to_numpy()),
                    Column("probability", "float8", probability),
                ],
            )
        )

    from sqlalchemy import create_engine

    engine = create_engine(
        conninfo_to_url(settings.conninfo).replace("postgresql://", "postgresql+psycopg://", 1)
    )

    def naive() -> None:
        df = pd.read_sql("select * from bench.features", engine)
        df["probability"] = pipeline.predict_proba(df[FEATURES])[:, 1]
        df[["as_of_date", "row_id", "probability"]].to_sql(
            "naive_scores", engine, schema="bench", if_exists="replace", index=False
        )

    print("naive pandas round trip ...", flush=True)
    naive_s, _ = _timed(naive)

    n = args.rows
    stages = {
        "COPY out into numpy": copy_out_s,
        "ONNX Runtime inference": infer_s,
        "COPY in of scores": copy_in_s,
    }
    limit_name, limit_s = max(stages.items(), key=lambda kv: kv[1])
    rows = [
        ("(a) storecast scoring path", storecast_s),
        ("(b) pandas read_sql -> predict_proba -> to_sql", naive_s),
        *[(f"(c) {name}", seconds) for name, seconds in stages.items()],
    ]
    print(f"\n{n:,} rows, {len(FEATURES)} float features, {args.trees}-tree gradient boosting, 2 cores\n")
    print(f"| {'path':<48} | {'seconds':>8} | {'rows/s':>10} | {'x limit':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}|{'-' * 12}|{'-' * 10}|")
    for name, seconds in rows:
        print(f"| {name:<48} | {seconds:8.2f} | {n / seconds:10,.0f} | {limit_s / seconds:8.2f} |")
    print(f"\nlimit: the slowest bare stage, {limit_name} ({n / limit_s:,.0f} rows/s)")
    print(
        f"(a) / limit = {limit_s / storecast_s:.2f} (target >= 0.70); (a) / (b) = {naive_s / storecast_s:.1f}x faster"
    )


if __name__ == "__main__":
    main()
