"""Scoring throughput: storecast's path against a naive pandas round trip and the bare stages.

Scores N rows (default 2,000,000 x 20 float features) with a 200-tree gradient-boosted
classifier, in one run:

(a) storecast: binary COPY out in chunks -> ONNX Runtime -> binary COPY into a staging
    table -> swapped in as the date's partition of the score table, reading, scoring and
    writing overlapped (``storecast.scoring.partitions.write_scores``); and the same with
    each row's top 3 reasons (``storecast.training.explain``: the explainer's ONNX
    Runtime pass for the leaves, the per-leaf credits summed, the reasons as jsonb);
(b) the naive peer: ``pandas.read_sql`` -> ``predict_proba`` -> ``DataFrame.to_sql``;
(c) each stage alone on the same rows: COPY out into numpy, ONNX Runtime inference,
    COPY in of (key, score) rows. The slowest bare stage is the limit (a) is held to.

    python -m benchmarks.scoring_throughput [--rows 2000000]

Runs against the configured server (the embedded one by default) in a schema ``bench``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import psycopg
from psycopg import sql
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from storecast.database.pgbinary import Column, copy_columns
from storecast.db import Conn, connect
from storecast.scoring.families import Output
from storecast.scoring.inference import SCORING_THREADS, inference_session, predict
from storecast.scoring.partitions import write_scores
from storecast.scoring.score import reasons_column
from storecast.settings import conninfo_to_url, get_settings
from storecast.training.data import FeatureReader, Frame
from storecast.training.estimators import preprocessor
from storecast.training.explain import TOP_REASONS, Explainer, export_explainer
from storecast.training.export import export, float32_thresholds
from storecast.training.spec import ModelSpec

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
    for table, partitioned in (("scores", True), ("copy_in", False)):
        conn.execute(
            sql.SQL(
                "create table {} (as_of_date date not null, row_id bigint not null, probability float8 not null, "
                "reasons jsonb, primary key (as_of_date, row_id)){}"
            ).format(
                sql.Identifier("bench", table),
                sql.SQL(" partition by list (as_of_date)" if partitioned else ""),
            )
        )
    # Settle the new rows first (hint bits, visibility map, statistics), or whichever path
    # reads them first pays for it, and autovacuum does it in the middle of a measurement.
    conn.execute("vacuum (freeze, analyze) bench.features")
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
    parser.add_argument("--repeats", type=int, default=3, help="runs of (a) and (c) to take the median of")
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
                ("preprocess", preprocessor(spec, "raw")),
                (
                    "estimator",
                    HistGradientBoostingClassifier(max_iter=args.trees, early_stopping=False, random_state=0),
                ),
            ]
        ).fit(frame, labels)
        float32_thresholds(pipeline)
        onnx = export(pipeline, spec)
        session = inference_session(onnx)
        explainer = Explainer.load(export_explainer(pipeline, spec, frame))
        output = Output("bench", "probability")
        # The bare inference stage the way a user would run it: one call, ONNX Runtime's defaults.
        plain_session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
        print(f"model: {args.trees} trees; scoring, {args.repeats} runs of each ...", flush=True)

        def columns_for(chunk: Frame) -> list[Column]:
            return [
                Column("as_of_date", "date", np.full(len(chunk), np.datetime64(AS_OF, "D"))),
                Column("row_id", "int8", chunk.keys["row_id"].to_numpy()),
                Column("probability", "float8", predict(session, spec, chunk)),
            ]

        def explained_columns_for(chunk: Frame) -> list[Column]:
            return [*columns_for(chunk), reasons_column(output, spec, explainer, chunk, TOP_REASONS)]

        def frames(reader: Conn) -> Generator[Frame]:
            return FeatureReader(reader, spec, [AS_OF], with_label=False).frames()

        chunks = list(FeatureReader(conn, spec, [AS_OF], with_label=False).frames())
        full = Frame(
            keys=pd.concat([c.keys for c in chunks], ignore_index=True),
            features=pd.concat([c.features for c in chunks], ignore_index=True),
            label=None,
            time=np.concatenate([c.time for c in chunks]),
        )
        probability = predict(plain_session, spec, full)

        def copy_in() -> None:
            conn.execute("truncate bench.copy_in")
            copy_columns(
                conn,
                sql.Identifier("bench", "copy_in"),
                [
                    Column("as_of_date", "date", np.full(len(full), np.datetime64(AS_OF, "D"))),
                    Column("row_id", "int8", full.keys["row_id"].to_numpy()),
                    Column("probability", "float8", probability),
                ],
            )

        with ThreadPoolExecutor(SCORING_THREADS) as pool:
            measured = {
                "storecast": lambda: write_scores(conn, "bench.scores", AS_OF, frames, columns_for),
                "storecast + reasons": lambda: write_scores(
                    conn, "bench.scores", AS_OF, frames, explained_columns_for
                ),
                "copy out": lambda: list(FeatureReader(conn, spec, [AS_OF], with_label=False).frames()),
                "inference": lambda: predict(plain_session, spec, full),
                "chunked inference": lambda: list(pool.map(lambda c: predict(session, spec, c), chunks)),
                "copy in": copy_in,
            }
            # Round robin, so that a slow spell of a shared machine hits every path alike.
            times: dict[str, list[float]] = {name: [] for name in measured}
            for _ in range(args.repeats):
                for name, fn in measured.items():
                    times[name].append(_timed(fn)[0])
        median = {name: float(np.median(seconds)) for name, seconds in times.items()}
        storecast_s, copy_out_s, infer_s = median["storecast"], median["copy out"], median["inference"]
        explained_s = median["storecast + reasons"]
        chunked_infer_s, copy_in_s = median["chunked inference"], median["copy in"]

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

    print("naive pandas round trip (one run) ...", flush=True)
    naive_s, _ = _timed(naive)

    n = args.rows
    stages = {
        "COPY out into numpy": copy_out_s,
        "ONNX Runtime inference, one call": infer_s,
        "COPY in of scores": copy_in_s,
    }
    limit_name, limit_s = max(stages.items(), key=lambda kv: kv[1])
    rows = [
        ("(a) storecast scoring path", storecast_s),
        ("(a) the same, with 3 reasons per row", explained_s),
        ("(b) pandas read_sql -> predict_proba -> to_sql", naive_s),
        *[(f"(c) {name}", seconds) for name, seconds in stages.items()],
        (f"    ONNX Runtime as (a) runs it, {SCORING_THREADS} at once", chunked_infer_s),
    ]
    cores = os.cpu_count()
    print(f"\n{n:,} rows, {len(FEATURES)} float features, {args.trees}-tree gradient boosting, {cores} cores")
    print(f"median of {args.repeats} runs for (a) and (c)\n")
    print(f"| {'path':<48} | {'seconds':>8} | {'rows/s':>10} | {'x limit':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}|{'-' * 12}|{'-' * 10}|")
    for name, seconds in rows:
        print(f"| {name:<48} | {seconds:8.2f} | {n / seconds:10,.0f} | {limit_s / seconds:8.2f} |")
    print(f"\nlimit: the slowest bare stage, {limit_name} ({n / limit_s:,.0f} rows/s)")
    print(
        f"(a) / limit = {limit_s / storecast_s:.2f} (target >= 0.70); (a) / (b) = {naive_s / storecast_s:.1f}x faster"
    )
    print(f"inference alone, run as (a) runs it, takes {chunked_infer_s / storecast_s:.2f} of (a)'s time")
    print(
        f"reasons cost {explained_s / storecast_s:.2f}x the time of (a) without them (setting explanation_reasons)"
    )


if __name__ == "__main__":
    main()
