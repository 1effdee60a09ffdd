"""The batch scoring job: champion ONNX models score one as-of date into ``scores.*``, atomically.

For each family: load the champions (verifying their sha256), refuse a model whose
feature columns do not match the feature relation, read the as-of rows in bounded
chunks with binary COPY, run ONNX Runtime, COPY the predictions into a staging
table and replace that date's rows in ``scores.<family>`` in the same transaction.
A rerun replaces rather than duplicates; a failure leaves the previous rows as they
were; a second concurrent run is refused by an advisory lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from psycopg import sql

from database.pgbinary import Column, copy_columns
from training.data import Conn, Frame, RowSource, check_columns, relation_columns
from training.export import onnx_inputs, run_session, sha256
from training.metrics import bucket_label, horizon_bucket
from training.registry import Champion, champion
from training.spec import ModelSpec, model_specs

#: Rows decoded and scored at a time: bounds memory whatever the as-of date's size.
CHUNK_ROWS = 200_000
#: Binary COPY encodings of the key column types in the score tables.
_BINARY_TYPES = {"bigint": "int8", "integer": "int4"}


class ScoringError(RuntimeError):
    """Scoring cannot run: no champion, a changed model, mismatched features, a concurrent run."""


@dataclass(frozen=True)
class Output:
    """One model's prediction column in a family's score table."""

    model: str
    column: str
    version_column: str | None = None  # wide tables keep one version column per model


@dataclass(frozen=True)
class Family:
    """A score table and the champion models that fill it."""

    name: str
    table: str
    keys: list[str]
    outputs: list[Output]
    rows: Callable[[Conn, ModelSpec, date], list[date]] = field(
        default=lambda conn, spec, as_of: [as_of], repr=False
    )


def _launch_dates(conn: Conn, spec: ModelSpec, as_of: date) -> list[date]:
    """Items still within their sell-through horizon on ``as_of``, or planned for later."""
    rows = conn.execute(
        sql.SQL("select distinct {t} from {rel} where {t} > %s").format(
            t=sql.Identifier(spec.time_column), rel=sql.Identifier(*spec.relation.split(".", 1))
        ),
        [as_of - timedelta(days=spec.horizon_days)],
    ).fetchall()
    return [r[0] for r in rows]  # type: ignore[misc]


#: The score tables, by family (explicit registry, one entry per table).
FAMILIES: dict[str, Family] = {
    "customer": Family(
        "customer",
        "scores.customer",
        ["customer_id"],
        [
            Output("purchase_30d", "purchase_probability_30d", "purchase_model_version"),
            Output("churn_90d", "churn_probability_90d", "churn_model_version"),
            Output("clv_365d", "clv_365d", "clv_model_version"),
        ],
    ),
    "offer_redemption": Family(
        "offer_redemption",
        "scores.offer_redemption",
        ["customer_id", "offer_id"],
        [Output("offer_redemption_7d", "probability")],
    ),
    "sell_through": Family(
        "sell_through",
        "scores.sell_through",
        ["product_id"],
        [Output("sell_through", "probability")],
        _launch_dates,
    ),
    "demand": Family(
        "demand", "scores.demand_forecast", ["product_id", "store_id", "horizon"], [Output("demand", "units")]
    ),
}


@dataclass
class ScoreResult:
    """What one family's scoring wrote."""

    family: str
    as_of: date
    rows: int
    seconds: float
    model_versions: dict[str, int]

    @property
    def rows_per_second(self) -> float:
        """Throughput of the whole path: read, infer, write, swap."""
        return self.rows / self.seconds if self.seconds else float("nan")


def _loaded_champion(conn: Conn, spec: ModelSpec) -> Champion:
    current = champion(conn, spec.name)
    if current is None:
        raise ScoringError(f"{spec.name} has no champion; run `storecast train {spec.name}` first")
    if sha256(current.onnx) != current.onnx_sha256:
        raise ScoringError(
            f"{spec.name} v{current.version}: the stored ONNX does not match its sha256; refusing to score"
        )
    if current.feature_columns != spec.feature_columns:
        missing = [c for c in spec.feature_columns if c not in current.feature_columns]
        extra = [c for c in current.feature_columns if c not in spec.feature_columns]
        raise ScoringError(
            f"{spec.name} v{current.version} was trained on other features than its spec now lists "
            f"(spec only: {missing or 'none'}; model only: {extra or 'none'}); retrain with `storecast train {spec.name}`"
        )
    return current


def predict(session: ort.InferenceSession, spec: ModelSpec, frame: Frame) -> npt.NDArray[np.float64]:
    """Run one model on a chunk: the positive-class probability or the (clipped) prediction."""
    feed = onnx_inputs(frame.features, list(spec.features.numeric), list(spec.features.categorical))
    return spec.finalise(run_session(session, spec.task, feed))


def write_scores(
    conn: Conn,
    table: str,
    as_of: date,
    open_rows: Callable[[], RowSource],
    columns_for: Callable[[Frame], list[Column]],
    chunk_rows: int | None = None,
) -> int:
    """Score rows chunk by chunk into a staging table, then replace ``as_of``'s rows in
    ``table`` in the same transaction; returns the rows written.

    ``open_rows`` materialises the rows to score; ``columns_for`` turns a chunk of them
    into the score table's columns. Everything happens in one transaction under an
    advisory lock: a failure anywhere leaves ``table`` as it was.
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    schema, name = table.split(".", 1)
    with conn.transaction():
        locked = conn.execute("select pg_try_advisory_xact_lock(hashtext('storecast.score'))").fetchone()
        if not locked or not locked[0]:
            raise ScoringError("another scoring run is writing scores; try again when it has finished")
        staging = sql.Identifier(f"_staging_{name}")
        conn.execute(
            sql.SQL("create temp table {} (like {} including defaults) on commit drop").format(
                staging, sql.Identifier(schema, name)
            )
        )
        source = open_rows()
        total = len(source)
        for start in range(0, total, chunk_rows):
            copy_columns(conn, staging, columns_for(source.fetch(start, min(start + chunk_rows, total))))
        source.close()
        conn.execute(
            sql.SQL("delete from {} where as_of_date = %s").format(sql.Identifier(schema, name)), [as_of]
        )
        conn.execute(sql.SQL("insert into {} select * from {}").format(sql.Identifier(schema, name), staging))
    return total


def score_family(
    conn: Conn, family: Family, as_of: date, run_id: int, chunk_rows: int | None = None
) -> ScoreResult:
    """Score ``as_of`` for one family and replace its rows in the score table, atomically.

    Rows are read and scored ``chunk_rows`` (default :data:`CHUNK_ROWS`) at a time.
    """
    started = time.perf_counter()
    specs = model_specs()
    models = {o.model: _loaded_champion(conn, specs[o.model]) for o in family.outputs}
    first = specs[family.outputs[0].model]
    relation = first.scoring_relation or first.relation
    for output in family.outputs:
        spec = specs[output.model]
        check_columns(conn, relation, spec.features.numeric, spec.features.categorical, family.keys)
    sessions = {
        name: ort.InferenceSession(c.onnx, providers=["CPUExecutionProvider"]) for name, c in models.items()
    }
    key_types = relation_columns(conn, family.table)

    def open_rows() -> RowSource:
        return RowSource(
            conn,
            first,
            family.rows(conn, first, as_of),
            relation,
            with_label=False,
            numeric=list(dict.fromkeys(c for o in family.outputs for c in specs[o.model].features.numeric)),
            extra_numeric=["target_offset_days"] if first.task == "forecast" else [],
            categorical=list(
                dict.fromkeys(c for o in family.outputs for c in specs[o.model].features.categorical)
            ),
        )

    def columns_for(frame: Frame) -> list[Column]:
        # COPY names its columns, so their order need not follow the score table's.
        columns = [
            Column(k, _BINARY_TYPES[key_types[k]], frame.keys[k].to_numpy())
            for k in family.keys
            if k != "horizon"
        ]
        columns.append(Column("as_of_date", "date", np.full(len(frame), np.datetime64(as_of, "D"))))
        for output in family.outputs:
            spec = specs[output.model]
            prediction = predict(sessions[output.model], spec, frame)
            columns += _prediction_columns(output, spec, models[output.model], frame, prediction)
        columns.append(Column("run_id", "int8", np.full(len(frame), run_id)))
        return columns

    total = write_scores(conn, family.table, as_of, open_rows, columns_for, chunk_rows)
    return ScoreResult(
        family.name, as_of, total, time.perf_counter() - started, {n: c.version for n, c in models.items()}
    )


def _prediction_columns(
    output: Output,
    spec: ModelSpec,
    model: Champion,
    frame: Frame,
    prediction: npt.NDArray[np.float64],
) -> list[Column]:
    n = len(prediction)
    identity = (
        [Column(output.version_column, "int4", np.full(n, model.version))]
        if output.version_column
        else [
            Column("model_name", "text", np.full(n, model.model_name, dtype=object)),
            Column("model_version", "int4", np.full(n, model.version)),
        ]
    )
    if spec.task != "forecast":
        return [Column(output.column, "float8", prediction), *identity]
    if not model.intervals:
        raise ScoringError(f"{model.model_name} v{model.version} has no prediction intervals; retrain it")
    units = np.maximum(prediction, 0.0)
    horizon = frame.features["horizon"].to_numpy()
    bucket = horizon_bucket(horizon, spec.horizon_buckets)
    offsets = frame.features["target_offset_days"].to_numpy().astype(np.int64)
    columns = [
        Column("horizon", "int4", horizon.astype(np.int64)),
        Column("target_date", "date", frame.keys["as_of_date"].to_numpy() + offsets.astype("timedelta64[D]")),
        Column(output.column, "float8", units),
    ]
    for level, name in (("0.8", "80"), ("0.95", "95")):
        width = np.array([model.intervals[bucket_label(int(b), spec.horizon_buckets)][level] for b in bucket])
        columns += [
            Column(f"lower_{name}", "float8", np.maximum(units - width, 0.0)),
            Column(f"upper_{name}", "float8", units + width),
        ]
    return [*columns, *identity]


def scoring_date(conn: Conn) -> date:
    """The scoring date of the last feature build (features.as_of_dates)."""
    row = conn.execute("select as_of_date from features.as_of_dates where is_scoring_date").fetchone()
    if row is None:
        raise ScoringError("no scoring date: run `storecast build` first")
    return row[0]  # type: ignore[return-value]


def score(
    conn: Conn,
    families: list[str] | None = None,
    as_of: date | None = None,
    run_id: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ScoreResult]:
    """Score ``families`` (default: all) for ``as_of`` (default: the build's scoring date)."""
    from scoring.runs import new_run_id, step

    say = progress or (lambda _: None)
    unknown = [f for f in families or [] if f not in FAMILIES]
    if unknown:
        raise ScoringError(f"unknown score table(s) {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    as_of = as_of or scoring_date(conn)
    run_id = run_id if run_id is not None else new_run_id(conn)
    results = []
    for name in families or list(FAMILIES):
        with step(conn, run_id, as_of, f"score:{name}") as counters:
            result = score_family(conn, FAMILIES[name], as_of, run_id)
            counters.update(
                rows=result.rows,
                model_versions=result.model_versions,
                rows_per_second=round(result.rows_per_second),
                seconds=round(result.seconds, 2),
            )
        say(
            f"{name}: {result.rows:,} rows for {as_of} in {result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s)"
        )
        results.append(result)
    return results
