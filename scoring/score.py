"""The batch scoring job: champion ONNX models score one as-of date into ``scores.*``, atomically.

For each family: load the champions (verifying their sha256), refuse a model whose
feature columns do not match the feature relation, stream the as-of rows in bounded
chunks with binary COPY, run ONNX Runtime, COPY the predictions into a staging
table and swap it in as that date's partition of ``scores.<family>``, all in one
transaction. A rerun replaces rather than duplicates; a failure leaves the previous
rows as they were; a second concurrent run waits for the pipeline lock (scoring.runs).

The stages run at once: while ONNX Runtime scores chunks (it releases the GIL), a
worker thread reads the next chunk on a second connection and another writes the
scores of finished chunks. Swapping a partition in, rather than deleting
and inserting, means the scores are written once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from storecast.database.pgbinary import Column
from storecast.db import Conn, relation_columns
from storecast.scoring.families import FAMILIES, Family, Output, ScoringError
from storecast.scoring.inference import inference_session, predict
from storecast.scoring.partitions import write_scores
from storecast.training.data import FeatureReader, Frame, check_columns
from storecast.training.errors import FeatureError
from storecast.training.evaluation import interval_width, width_columns
from storecast.training.explain import TOP_REASONS, Explainer, reasons_json
from storecast.training.export import onnx_inputs, sha256
from storecast.training.intervals import keyed_bounds
from storecast.training.registry import Champion, champion, champion_names
from storecast.training.spec import ModelSpec, model_specs, stored_spec

#: Binary COPY encodings of the key column types in the score tables.
_BINARY_TYPES = {"bigint": "int8", "integer": "int4"}


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


def _loaded_champion(conn: Conn, spec: ModelSpec) -> tuple[Champion, ModelSpec]:
    """The champion of ``spec`` and the spec it was trained with (features it left out
    excluded), refusing one whose bytes or features do not match."""
    current = champion(conn, spec.name)
    if current is None:
        raise ScoringError(f"{spec.name} has no champion; run `storecast train {spec.name}` first")
    if sha256(current.onnx) != current.onnx_sha256:
        raise ScoringError(
            f"{spec.name} v{current.version}: the stored ONNX does not match its sha256; refusing to score"
        )
    trained = stored_spec(current.spec)
    if current.feature_columns != trained.feature_columns:
        raise ScoringError(
            f"{spec.name} v{current.version}: its feature columns do not match its stored spec; refusing to score"
        )
    known = [*current.feature_columns, *trained.dropped_features]
    if sorted(known) != sorted(spec.feature_columns):
        missing = [c for c in spec.feature_columns if c not in known]
        extra = [c for c in known if c not in spec.feature_columns]
        raise ScoringError(
            f"{spec.name} v{current.version} was trained on other features than its spec now lists "
            f"(spec only: {missing or 'none'}; model only: {extra or 'none'}); a setting such as "
            f"demand_grain may have changed: retrain with `storecast train {spec.name}`"
        )
    return current, trained


def score_family(
    conn: Conn,
    family: Family,
    as_of: date,
    run_id: int,
    chunk_rows: int | None = None,
    specs: dict[str, ModelSpec] | None = None,
    reasons: int = TOP_REASONS,
) -> ScoreResult:
    """Score ``as_of`` for one family and replace its rows in the score table, atomically.

    Every output whose model has a champion is scored; the columns of the others are
    left NULL (a family with no champion at all raises :class:`ScoringError`). Rows
    are read and scored ``chunk_rows`` (default :data:`storecast.training.data.CHUNK_ROWS`) at a time.
    Each row keeps each model's ``reasons`` largest feature contributions
    (:mod:`storecast.training.explain`; 0: none, and no explaining cost).
    """
    started = time.perf_counter()
    specs = specs if specs is not None else model_specs()
    serving = champion_names(conn)
    outputs = [o for o in family.outputs if o.model in serving]
    if not outputs:
        names = ", ".join(o.model for o in family.outputs)
        raise ScoringError(f"{family.name}: no champion for {names}; run `storecast train` first")
    loaded = {o.model: _loaded_champion(conn, specs[o.model]) for o in outputs}
    models = {name: c for name, (c, _) in loaded.items()}
    trained = {name: t for name, (_, t) in loaded.items()}
    first = trained[outputs[0].model]
    relation = first.scoring_relation or first.relation
    for spec in trained.values():
        check_columns(
            conn,
            relation,
            [*spec.features.numeric, *forecast_columns(spec)],
            spec.features.categorical,
            family.keys,
        )
    sessions = {name: inference_session(c.onnx) for name, c in models.items()}
    explainers = {
        name: Explainer.load(c.explainer) for name, c in models.items() if reasons > 0 and c.explainer
    }
    key_types = relation_columns(conn, family.table)
    times = family.rows(conn, first, as_of)

    def frames(reader: Conn) -> Generator[Frame]:
        return FeatureReader(
            reader,
            first,
            times,
            relation,
            with_label=False,
            numeric=list(dict.fromkeys(c for t in trained.values() for c in t.features.numeric)),
            extra_numeric=forecast_columns(first),
            categorical=list(dict.fromkeys(c for t in trained.values() for c in t.features.categorical)),
        ).frames(chunk_rows)

    table_columns = family.columns()

    def columns_for(frame: Frame) -> list[Column]:
        columns = [
            Column(k, _BINARY_TYPES[key_types[k]], frame.keys[k].to_numpy())
            for k in family.keys
            if k != "horizon"
        ]
        columns.append(Column("as_of_date", "date", np.full(len(frame), np.datetime64(as_of, "D"))))
        for output in outputs:
            spec = trained[output.model]
            prediction = predict(sessions[output.model], spec, frame)
            columns += _prediction_columns(
                output, spec, models[output.model], frame, prediction, family.interval_levels
            )
            columns.append(reasons_column(output, spec, explainers.get(output.model), frame, reasons))
        columns.append(Column("run_id", "int8", np.full(len(frame), run_id)))
        # Written through the family's one definition of its table (Family.columns).
        stray = [c.name for c in columns if c.name not in table_columns]
        if stray:
            raise ScoringError(f"{family.table}: scoring made columns the family does not define: {stray}")
        return sorted(columns, key=lambda c: table_columns.index(c.name))

    total = write_scores(conn, family.table, as_of, frames, columns_for)
    return ScoreResult(
        family.name, as_of, total, time.perf_counter() - started, {n: c.version for n, c in models.items()}
    )


def reasons_column(
    output: Output, spec: ModelSpec, explainer: Explainer | None, frame: Frame, top: int
) -> Column:
    """``output``'s reasons column for ``frame``: each row's ``top`` reasons as JSON, or
    NULL without an explainer."""
    if explainer is None:
        return Column(
            output.reasons_column,
            "jsonb",
            np.full(len(frame), "null", dtype=object),
            np.ones(len(frame), bool),
        )
    feed = onnx_inputs(frame.features, list(spec.features.numeric), list(spec.features.categorical))
    found = reasons_json(explainer.contributions(feed), explainer.names, frame.features, top)
    return Column(output.reasons_column, "jsonb", np.asarray(found, dtype=object))


def forecast_columns(spec: ModelSpec) -> list[str]:
    """Columns a forecast's rows are read with besides its features: the horizon, the target
    period's offset from the as-of date, and the column its intervals widen with."""
    return ["horizon", "target_offset_days", *width_columns(spec)] if spec.task == "forecast" else []


def _prediction_columns(
    output: Output,
    spec: ModelSpec,
    model: Champion,
    frame: Frame,
    prediction: npt.NDArray[np.float64],
    interval_levels: tuple[int, ...],
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
    offsets = frame.features["target_offset_days"].to_numpy().astype(np.int64)
    columns = [
        Column("horizon", "int4", horizon.astype(np.int64)),
        Column("target_date", "date", frame.keys["as_of_date"].to_numpy() + offsets.astype("timedelta64[D]")),
        Column(output.column, "float8", units),
    ]
    ranges = keyed_bounds(
        model.intervals,
        units,
        horizon.astype(float),
        spec.horizon_buckets,
        frame.keys,
        spec.series_keys,
        interval_width(spec, frame),
    )
    for level in interval_levels:
        if f"{level / 100:g}" not in ranges:
            raise ScoringError(f"{model.model_name} v{model.version} has no {level} % interval; retrain it")
        lower, upper = ranges[f"{level / 100:g}"]
        columns += [Column(f"lower_{level}", "float8", lower), Column(f"upper_{level}", "float8", upper)]
    return [*columns, *identity]


def scoring_date(conn: Conn) -> date:
    """The scoring date of the last feature build (features.as_of_dates)."""
    row = conn.execute("select as_of_date from features.as_of_dates where is_scoring_date").fetchone()
    if row is None:
        raise ScoringError("no scoring date: run `storecast build` first")
    return row[0]  # type: ignore[return-value]


@dataclass
class ScoringOutcome:
    """What a scoring run did: the families scored, and those skipped with the reason."""

    results: list[ScoreResult]
    skipped: dict[str, str]


def score(
    conn: Conn,
    families: list[str] | None = None,
    as_of: date | None = None,
    run_id: int | None = None,
    progress: Callable[[str], None] | None = None,
    specs: dict[str, ModelSpec] | None = None,
    wait: bool = True,
    reasons: int = TOP_REASONS,
) -> ScoringOutcome:
    """Score ``families`` for ``as_of`` (default: the build's scoring date).

    Without ``families``, every family with a champion is scored and the others are
    skipped, each with its reason (a retailer without offers has no offer model). A
    family that fails does not stop the others; :class:`ScoringError` is raised at
    the end, naming every failure, or when nothing could be scored. Scoring holds the
    database-wide pipeline lock: a second ``score`` or ``run`` waits (or, without
    ``wait``, :class:`storecast.scoring.runs.PipelineBusyError` is raised naming the holder).
    Each row keeps ``reasons`` explanations per model (setting ``explanation_reasons``).
    """
    from storecast.scoring.runs import pipeline_lock

    with pipeline_lock(conn, wait, progress):
        return _score(conn, families, as_of, run_id, progress, specs, reasons)


def _score(
    conn: Conn,
    families: list[str] | None,
    as_of: date | None,
    run_id: int | None,
    progress: Callable[[str], None] | None,
    specs: dict[str, ModelSpec] | None,
    reasons: int = TOP_REASONS,
) -> ScoringOutcome:
    from storecast.scoring.runs import new_run_id, step

    say = progress or (lambda _: None)
    unknown = [f for f in families or [] if f not in FAMILIES]
    if unknown:
        raise ScoringError(f"unknown score table(s) {', '.join(unknown)}; choose from {', '.join(FAMILIES)}")
    specs = specs if specs is not None else model_specs()
    as_of = as_of or scoring_date(conn)
    run_id = run_id if run_id is not None else new_run_id(conn)
    outcome = ScoringOutcome([], {})
    failed: dict[str, str] = {}
    serving = champion_names(conn)
    for name in families or list(FAMILIES):
        family = FAMILIES[name]
        if not families and not any(o.model in serving for o in family.outputs):
            reason = f"no champion for {', '.join(o.model for o in family.outputs)}"
            outcome.skipped[name] = reason
            say(f"{name}: skipped: {reason}")
            continue
        try:
            with step(conn, run_id, as_of, f"score:{name}") as counters:
                result = score_family(conn, family, as_of, run_id, specs=specs, reasons=reasons)
                counters.update(
                    rows=result.rows,
                    model_versions=result.model_versions,
                    rows_per_second=round(result.rows_per_second),
                    seconds=round(result.seconds, 2),
                )
        except (ScoringError, FeatureError) as exc:
            failed[name] = str(exc)
            say(f"{name}: failed: {exc}")
            continue
        missing = [o.model for o in family.outputs if o.model not in result.model_versions]
        note = family.note(conn, as_of)
        say(
            f"{name}: {result.rows:,} rows for {as_of} in {result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s)"
            + (f"; no champion for {', '.join(missing)}, its columns are NULL" if missing else "")
            + (f"; {note}" if note else "")
        )
        outcome.results.append(result)
    if failed:
        raise ScoringError(f"scoring {', '.join(failed)} failed: " + "; ".join(failed.values()))
    if not outcome.results:
        raise ScoringError("nothing was scored: no model has a champion yet; run `storecast train` first")
    return outcome
