"""Train one model from its spec: split by time, fit and select, calibrate, export, register.

Each step is a function of its own, in the order :func:`train_model` runs them:
:func:`_split` (the time windows), :func:`_read` (their rows), :func:`_trainable`
(what the rows cannot train), :func:`_select` (fit each candidate, keep the best on
validation), :func:`_finish` (intervals, calibration or the refit before the test
window, the customers' level), then export with its parity check, the test-window
metrics, :func:`storecast.training.champion.judge` and the registry record.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.metadata import version as package_version
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import class_row
from sklearn.pipeline import Pipeline

from storecast.db import Conn, relation_columns
from storecast.training import drift
from storecast.training import metrics as m
from storecast.training.baselines import BASELINES
from storecast.training.btyd import BTYDFeatures, ExpectedSpend
from storecast.training.calibration import calibrate
from storecast.training.champion import judge
from storecast.training.customers import (
    LatestCustomers,
    extrapolating_candidates,
    fit_notes,
    hold_to_recent_rate,
    latest_customers,
    recent_order_level,
)
from storecast.training.data import (
    FeatureReader,
    Frame,
    overridden_labels,
    time_counts,
)
from storecast.training.errors import FeatureError, ParityError, TrainingError
from storecast.training.estimators import BLENDS, BTYD_AS_IS, BTYD_ONLY
from storecast.training.evaluation import F64, evaluate, evaluation_columns, interval_width, predict
from storecast.training.explain import export_explainer
from storecast.training.export import OPSET, export, onnx_inputs, parity, predict_onnx, sha256
from storecast.training.fingerprint import trained_with, training_fingerprint
from storecast.training.fitting import Progress, fit_blend, fit_candidate
from storecast.training.grain import LastPeriod, grain_hint, partial_period_hint
from storecast.training.history import setting_advice
from storecast.training.intervals import fit as fit_intervals
from storecast.training.intervals import min_calibration_origins, min_calibration_rows, series_names
from storecast.training.pruning import constant_features, without
from storecast.training.registry import register
from storecast.training.selection import paired_gain
from storecast.training.spec import ModelSpec
from storecast.training.split import SplitError, TimeSplit, split_times, validation_folds


@dataclass
class TrainResult:
    """What a training run produced (also stored in ml.model_versions)."""

    spec: ModelSpec
    version: int
    status: str
    reason: str
    estimator: str
    calibration: str | None
    selection_value: float
    baseline_value: float
    champion_value: float | None
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    parity: float
    seconds: float
    split: TimeSplit
    dropped_features: list[str]
    pipeline: Pipeline = field(repr=False)
    test: Frame = field(repr=False)
    onnx: bytes = field(repr=False)


@dataclass(frozen=True)
class Windows:
    """The rows of a split's windows. ``gap`` (the dates the embargo left out of training)
    is read only for a refit before the test window; ``overridden`` counts the labels
    that come from ``raw.overrides``."""

    train: Frame
    validation: Frame
    test: Frame
    gap: Frame | None
    overridden: int | None
    #: The validation rows candidates are compared on (``TimeSplit.choosing``).
    choosing: Frame


@dataclass(frozen=True)
class Selection:
    """The candidate chosen on validation, each candidate's selection metric there, what
    chose among them (the age guard's note, the customer fit's notes) and the customers
    scored today, which BG/NBD's level is read from (None for a model not of customers)."""

    best: str
    pipeline: Pipeline
    scores: dict[str, float]
    note: str
    latest: LatestCustomers | None

    @property
    def btyd(self) -> BTYDFeatures | None:
        """BG/NBD as fitted on today's customers, which refits of the chosen candidate reuse."""
        return None if self.latest is None else self.latest.btyd


def _rows_before_test(windows: Windows, cutoff: np.datetime64 | None = None) -> Frame:
    """Every labelled row before the test window (train, the embargo's gap, validation), or
    those up to ``cutoff``: what a model refit before the test window, or before a
    validation fold, is fitted on."""
    assert windows.gap is not None  # read for every spec that refits
    frames = [windows.train, windows.gap, windows.validation]
    return Frame.concat(
        frames if cutoff is None else [frame.subset(frame.time <= cutoff) for frame in frames]
    )


@dataclass(frozen=True)
class Finished:
    """The pipeline that is exported, with its calibration (method and note) and a
    forecast's intervals."""

    pipeline: Pipeline
    calibration: str | None
    calibration_note: str
    intervals: dict[str, Any] | None


def _conformal(spec: ModelSpec, selection: Selection, windows: Windows, say: Progress) -> dict[str, Any]:
    """Split-conformal intervals from the validation residuals, their width following the
    level, with the first date of each validation fold the residuals came from
    (:func:`_validation_forecasts`)."""
    validation = windows.validation
    assert validation.label is not None
    folds, forecasts = _validation_forecasts(spec, selection, windows, say)
    intervals = fit_intervals(
        validation.label,
        forecasts,
        validation.features["horizon"].to_numpy(dtype=float),
        validation.time,
        spec.horizon_buckets,
        spec.interval_levels,
        series_names(validation.keys, spec.series_keys),
        interval_width(spec, validation),
    )
    return {**intervals, "validation_folds": [str(fold[0]) for fold in folds]}


def _validation_forecasts(
    spec: ModelSpec, selection: Selection, windows: Windows, say: Progress
) -> tuple[list[list[date]], F64]:
    """The validation window's folds and its forecasts, each fold's by a model that has not
    seen it: the first by the chosen candidate as selection fitted it, each later one by
    the same candidate fitted again on every row up to the fold's start less the embargo.
    A model refit before the test window forecasts from just before it, while a model
    fitted before a long validation window forecasts its latest dates from further back,
    and its misses there would widen the intervals; so such a model's window is split
    (:func:`~storecast.training.split.validation_folds`), any other's is one fold."""
    validation = windows.validation
    dates: list[date] = np.unique(validation.time).tolist()
    folds = (
        validation_folds(dates, math.ceil(spec.horizon_days / _spacing_days(dates)))
        if spec.refit_before_test
        else [dates]
    )
    if len(folds) == 1:
        return folds, predict(selection.pipeline, spec, validation)
    forecasts = np.empty(len(validation))
    for index, fold in enumerate(folds):
        pipeline = selection.pipeline
        if index:
            rows = _rows_before_test(windows, np.datetime64(fold[0] - timedelta(days=spec.embargo), "D"))
            say(
                f"{spec.name}: {selection.best} fitted on {len(rows):,} rows to forecast validation from {fold[0]}"
            )
            pipeline = fit_candidate(spec, selection.best, rows, selection.btyd, say)
        in_fold = validation.at(fold)
        forecasts[in_fold] = predict(pipeline, spec, validation.subset(in_fold))
    return folds, forecasts


def _library_versions() -> dict[str, str]:
    return {p: package_version(p) for p in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")}


def _last_period(conn: Conn) -> LastPeriod | None:
    """The last loaded demand period, as the latest feature build saw it (None before one,
    or before a build added these columns)."""
    if "last_period_start" not in relation_columns(conn, "features.as_of_dates"):
        return None
    row = (
        conn.cursor(row_factory=class_row(LastPeriod))
        .execute(
            "select max(last_period_start) as start, max(last_order_date) as last_order, "
            "max(last_period_order_days) as order_days, max(data_observed_until) as observed_until "
            "from features.as_of_dates"
        )
        .fetchone()
    )
    # An empty table gives one row of NULLs.
    return row if row is not None and row.start is not None else None


def _trained_as_of(
    conn: Conn, last: LastPeriod | None, as_of: date | None, counts: list[tuple[date, int]]
) -> date:
    """The date a version is trained as of: the one given, else the first day without data."""
    if as_of is not None:
        return as_of
    if last is not None:
        return last.observed_until
    row = conn.execute("select max(data_observed_until) from features.as_of_dates").fetchone()
    return row[0] if row and row[0] else max(t for t, _ in counts)  # type: ignore[return-value]


def _horizon_setting(spec: ModelSpec) -> str:
    """The setting that sets the label horizon and its value, for advice in an error ('' without one)."""
    return f"{spec.horizon_var}, now {spec.horizon_days // spec.period_days}" if spec.horizon_var else ""


def _spacing_days(times: list[date]) -> int:
    """The usual days between consecutive time values (a week on a weekly grid, whatever
    the grain: daily forecasts are trained on weekly as-of dates)."""
    gaps = [(b - a).days for a, b in pairwise(times)]
    return int(np.median(gaps)) if gaps else 1


def _split(conn: Conn, spec: ModelSpec, as_of: date | None) -> tuple[TimeSplit, list[tuple[date, int]]]:
    """The time windows of the matured rows (and their counts), or a :class:`TrainingError`
    saying what to change when there is too little history to hold out and still train."""
    counts = time_counts(conn, spec, matured_by=as_of)
    horizon = _horizon_setting(spec)
    try:
        calibration_rows, calibration_origins = 0, 0
        if spec.task == "forecast":
            calibration_rows = min_calibration_rows(spec.horizon_buckets)
            calibration_origins = min_calibration_origins(
                spec.horizon_days, _spacing_days([t for t, _ in counts])
            )
        split = split_times(
            counts,
            spec.holdout_periods,
            spec.embargo,
            spec.max_train_rows,
            calibration_rows,
            calibration_origins,
        )
    except SplitError as exc:
        advice = [setting_advice(conn, spec) or "load more history"]
        if horizon:
            advice.append(f"shorten the horizon (--var {horizon})")
        if as_of:
            advice.append(f"train as of a later date than {as_of}")
        raise TrainingError(
            f"{spec.name}: {exc}; a {spec.horizon_days}-day label window needs more history: "
            + ", ".join(advice[:-1])
            + f" or {advice[-1]}"
        ) from None
    return split, counts


def _read(conn: Conn, spec: ModelSpec, split: TimeSplit, as_of: date | None, say: Progress) -> Windows:
    """Each window's rows, with the labels matured by ``as_of``."""
    extra = evaluation_columns(spec)

    def read(times: list[date]) -> Frame:
        return FeatureReader(conn, spec, times, extra_numeric=extra, matured_by=as_of).read()

    train, validation, test = read(split.train), read(split.validation), read(split.test)
    # The embargo keeps validation honest; a refit has no use for it, and the dates it
    # left out of training are the latest before the validation window.
    gap = read(split.gap) if spec.refit_before_test else None
    say(f"{spec.name}: {len(train):,} train, {len(validation):,} validation, {len(test):,} test rows")
    overridden = overridden_labels(
        conn,
        spec,
        [*split.train, *(split.gap if gap is not None else []), *split.validation, *split.test],
        matured_by=as_of,
    )
    if overridden:
        say(f"{spec.name}: {overridden:,} of those labels come from overrides (raw.overrides)")
    assert train.label is not None
    assert validation.label is not None
    assert test.label is not None
    # Candidates are compared on all of validation unless a forecast's window grew for its
    # intervals: no copy of the rows then.
    choosing = (
        validation
        if len(split.choosing) == len(split.validation)
        else validation.subset(validation.at(split.choosing))
    )
    return Windows(train, validation, test, gap, overridden, choosing)


#: Fewer as-of dates than this in the training window, a label of one outcome only is
#: read as young data (advice: more history) as well as a horizon to reconsider.
FEW_TRAINING_DATES = 4


def _trainable(
    spec: ModelSpec,
    split: TimeSplit,
    train: Frame,
    say: Progress,
    history_setting: Callable[[], str | None] = lambda: None,
) -> ModelSpec:
    """``spec`` as the training rows can train it: a binary model needs both outcomes
    (else a :class:`TrainingError`), and the features constant or NULL on every row are
    left out (and said). Says too when the rows look finer than the grain.
    ``history_setting`` gives the advice when a setting, not the data, keeps the history
    short (:func:`~storecast.training.history.setting_advice`)."""
    assert train.label is not None
    if spec.task == "binary" and len(np.unique(train.label)) < 2:
        horizon = _horizon_setting(spec)
        dates = len(split.train)
        # Few as-of dates with matured labels is young data (or a short history setting),
        # not a wrong horizon: say both.
        more = history_setting() or "load more history (each period matures more labels)"
        advice = [more] if dates < FEW_TRAINING_DATES else []
        advice += [f"try another horizon (--var {horizon})"] if horizon else []
        raise TrainingError(
            f"{spec.name}: every training label is {bool(train.label[0])} ({len(train):,} rows from "
            f"{dates} as-of date{'s' if dates != 1 else ''}, {split.train[0]}..{split.train[-1]}); "
            "a model needs both outcomes" + (f": {', or '.join(advice)}" if advice else "")
        )
    hint = grain_hint(spec, train)
    if hint:
        say(f"warning: {spec.name}: {hint}")
    dropped = constant_features(spec, train)
    if dropped:
        say(
            f"warning: {spec.name}: left out {', '.join(dropped)}: constant or NULL on every training row "
            "(recorded with the version; scoring leaves them out too)"
        )
        spec = without(spec, dropped)
    return spec


def _select(conn: Conn, spec: ModelSpec, windows: Windows, as_of: date | None, say: Progress) -> Selection:
    """Fit each usable candidate on the training rows and keep the best on the validation
    window's latest dates (``Windows.choosing``), or the spec's default candidate where
    the best one's gain over it is within chance (:mod:`storecast.training.selection`). A
    model of customers reads today's customers first: BG/NBD's candidates need their fit,
    and where today's customers are older than every labelled one only the candidates that
    extrapolate in age compete (the age guard)."""
    latest = latest_customers(conn, spec, as_of)
    btyd = None if latest is None else latest.btyd
    usable = [c for c in spec.candidates if c not in BTYD_ONLY or btyd is not None]
    if not usable:
        raise TrainingError(f"{spec.name}: its only candidates need {spec.btyd_columns}, which were left out")
    note = ""
    if latest is not None:
        usable, note = extrapolating_candidates(
            spec, usable, latest.ages, [windows.train, windows.validation]
        )
        note = "; ".join(filter(None, [note, fit_notes(latest)]))
        if note:
            say(f"{spec.name}: {note}")
    fitted: dict[str, Pipeline] = {}
    scores: dict[str, float] = {}
    predictions: dict[str, F64] = {}
    # Members first: a blend reuses the candidates it averages, fitted on the same rows.
    for name in sorted(usable, key=lambda candidate: candidate in BLENDS):
        pipeline = (
            fit_blend(spec, name, fitted, windows.train, btyd, say)
            if name in BLENDS
            else fit_candidate(spec, name, windows.train, btyd, say)
        )
        fitted[name] = pipeline
        predictions[name] = predict(pipeline, spec, windows.choosing)
        value = evaluate(spec, windows.choosing, predictions[name])[spec.selection_metric]
        scores[name] = float(value)
        say(f"{spec.name}: {name} {spec.selection_metric} on validation = {value:.4f}")
    best = max(scores, key=lambda k: scores[k] if m.HIGHER_IS_BETTER[spec.selection_metric] else -scores[k])
    default = spec.default_candidate
    if default is not None and default in scores and best != default:
        gain = paired_gain(
            _by_date(spec, windows.choosing, predictions[default]),
            _by_date(spec, windows.choosing, predictions[best]),
            m.HIGHER_IS_BETTER[spec.selection_metric],
        )
        judged = (
            f"{best}'s gain over the default {default} in {spec.selection_metric} on validation, {gain}, is "
            + ("beyond chance" if gain.beyond_chance else f"within chance: kept {default}")
        )
        say(f"{spec.name}: {judged}")
        note = "; ".join(filter(None, [note, judged]))
        if not gain.beyond_chance:
            best = default
    return Selection(best, fitted[best], scores, note, latest)


def _by_date(spec: ModelSpec, validation: Frame, predictions: F64) -> F64:
    """The selection metric of ``predictions`` on each validation as-of date, in date order."""
    values = []
    for day in np.unique(validation.time):
        on_day = validation.time == day
        values.append(evaluate(spec, validation.subset(on_day), predictions[on_day])[spec.selection_metric])
    return np.array(values, dtype=np.float64)


def _finish(conn: Conn, spec: ModelSpec, selection: Selection, windows: Windows, say: Progress) -> Finished:
    """The chosen candidate made ready to serve: a forecast's intervals from its validation
    residuals, then a binary model calibrated on validation, or a model that refits before
    the test window refit on every row before it; BG/NBD taken as it is held to the level
    of today's customers' recent orders."""
    pipeline, best, latest = selection.pipeline, selection.best, selection.latest
    calibration: str | None = None
    calibration_note = ""
    intervals: dict[str, Any] | None = None
    if spec.task == "forecast":
        # From models that have not seen the dates they forecast, so the residuals are out of sample.
        intervals = _conformal(spec, selection, windows, say)
    # BG/NBD taken as it is: its level held to the rate of today's customers' recent orders.
    held = latest if latest is not None and spec.recent_column is not None and best in BTYD_AS_IS else None
    if spec.task == "binary":
        # A sigmoid's log odds can be shifted to that level; an isotonic step function's cannot.
        methods = ("sigmoid",) if held is not None else ("sigmoid", "isotonic")
        pipeline, calibration, calibration_note = calibrate(
            spec, pipeline, windows.validation, windows.test, methods
        )
        if held is not None and calibration == "sigmoid":
            calibration_note += "; " + hold_to_recent_rate(conn, spec, held, pipeline)
            say(f"{spec.name}: {calibration_note}")
    elif spec.refit_before_test:
        before_test = _rows_before_test(windows)
        say(f"{spec.name}: {best} refit on {len(before_test):,} rows before the test window")
        pipeline = fit_candidate(spec, best, before_test, selection.btyd, say)

    estimator = pipeline.named_steps.get("estimator")
    if held is not None and isinstance(estimator, ExpectedSpend):
        level, calibration_note = recent_order_level(conn, spec, held)
        estimator.at_level(1.0 if level is None else level)
        say(f"{spec.name}: {calibration_note}")
    return Finished(pipeline, calibration, calibration_note, intervals)


def train_model(
    conn: Conn,
    spec: ModelSpec,
    models_dir: Path,
    as_of: date | None = None,
    progress: Progress | None = None,
    fingerprint: str | None = None,
) -> TrainResult:
    """Train, evaluate and register one model; the new version is champion only if it wins.

    With ``as_of`` only labels whose window had closed by that date are read, so a
    back-dated run sees what it would have seen on that day; the version is recorded
    as trained as of it. Raises :class:`TrainingError` naming the model and what to
    change when the data cannot train it.
    """
    say = progress or (lambda _: None)
    started = time.perf_counter()
    fingerprint = fingerprint or training_fingerprint(conn, spec, as_of)
    split, counts = _split(conn, spec, as_of)
    if split.note:
        advice = setting_advice(conn, spec)
        say(f"warning: {spec.name}: {split.note}" + (f"; for more dates, {advice}" if advice else ""))
    last = _last_period(conn)
    trained_as_of = _trained_as_of(conn, last, as_of, counts)
    partial = partial_period_hint(spec, trained_as_of, last) if last is not None else ""
    if partial:
        say(f"warning: {spec.name}: {partial}")
    say(
        f"{spec.name}: train {split.train[0]}..{split.train[-1]}, validate {split.validation[0]}..{split.validation[-1]}, "
        f"test {split.test[0]}..{split.test[-1]}" + (" (sampled)" if split.sampling else "")
    )
    windows = _read(conn, spec, split, as_of, say)
    train, test = windows.train, windows.test
    assert test.label is not None
    spec = _trainable(spec, split, train, say, lambda: setting_advice(conn, spec))
    selection = _select(conn, spec, windows, as_of, say)
    finished = _finish(conn, spec, selection, windows, say)
    pipeline = finished.pipeline

    onnx = export(pipeline, spec)
    parity_diff = parity(onnx, pipeline, spec, test.features[spec.feature_columns])
    # Judge the version by what will serve: its ONNX predictions, the same path the
    # champion is evaluated through, so an identical retrain cannot "win" on
    # float32-versus-float64 noise.
    feed = onnx_inputs(test.features, list(spec.features.numeric), list(spec.features.categorical))
    test_pred = spec.finalise(predict_onnx(onnx, spec.task, feed))
    metrics = evaluate(spec, test, test_pred, finished.intervals)
    baseline_metrics = evaluate(spec, test, BASELINES[spec.baseline](train, test))
    value = float(metrics[spec.selection_metric])
    baseline_value = float(baseline_metrics[spec.selection_metric])
    verdict = judge(conn, spec, split, metrics, baseline_value, as_of)

    seconds = time.perf_counter() - started
    record: dict[str, Any] = {
        "model_name": spec.name,
        "fingerprint": fingerprint,
        "trained_as_of": trained_as_of,
        "train_start": split.train[0],
        "train_end": split.train[-1],
        "validation_start": split.validation[0],
        "validation_end": split.validation[-1],
        "test_start": split.test[0],
        "test_end": split.test[-1],
        "train_rows": len(train),
        "validation_rows": len(windows.validation),
        "test_rows": len(test),
        "estimator": selection.best,
        "calibration": finished.calibration,
        "spec": spec.model_dump(mode="json"),
        "feature_columns": spec.feature_columns,
        "dropped_features": spec.dropped_features,
        "onnx": onnx,
        "onnx_sha256": sha256(onnx),
        "onnx_opset": OPSET,
        "explainer": export_explainer(pipeline, spec, train.features[spec.feature_columns]),
        # NaN (a metric of one class, a level band without rows) is stored as null: registry.json_safe.
        "metrics": dict(
            metrics,
            selection=selection.scores,
            selection_note=selection.note,
            calibration_note=finished.calibration_note,
            split_note=split.note,
        ),
        "baseline_metrics": baseline_metrics,
        "selection_metric": spec.selection_metric,
        "parity_max_abs_diff": parity_diff,
        "intervals": finished.intervals,
        "sampling": split.sampling,
        "overridden_labels": windows.overridden,
        "library_versions": _library_versions(),
        "training_seconds": seconds,
        "calibration_table": m.reliability_table(test.label, test_pred) if spec.task == "binary" else [],
        "drift_reference": drift.reference(
            train.features,
            list(spec.features.numeric),
            list(spec.features.categorical),
            test_pred,
            test.features,
            test.keys[spec.time_column].to_numpy(),
        ),
    }
    version = register(conn, record, verdict.promote, verdict.reason, models_dir)
    status = "champion" if verdict.promote else "candidate"
    say(f"{spec.name}: version {version} is {status}: {verdict.reason}")
    return TrainResult(
        spec=spec,
        version=version,
        status=status,
        reason=verdict.reason,
        estimator=selection.best,
        calibration=finished.calibration,
        selection_value=value,
        baseline_value=baseline_value,
        champion_value=verdict.champion_value,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        parity=parity_diff,
        seconds=seconds,
        split=split,
        dropped_features=spec.dropped_features,
        pipeline=pipeline,
        test=test,
        onnx=onnx,
    )


#: Errors that stop one model's training but not the others'.
MODEL_ERRORS: tuple[type[Exception], ...] = (TrainingError, SplitError, ParityError, FeatureError)


@dataclass
class TrainingReport:
    """Models trained in one command, those that could not be (with the reason), and those
    skipped because the data has nothing of their kind (no offers, no launches)."""

    results: list[TrainResult]
    failures: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)


def has_labels(conn: Conn, spec: ModelSpec) -> bool:
    """Whether the spec's relation exists and holds at least one row with a matured label."""
    if spec.label not in relation_columns(conn, spec.relation):
        return False
    schema, table = spec.relation.split(".", 1)
    query = sql.SQL("select exists (select from {} where {} is not null)").format(
        sql.Identifier(schema, table), sql.Identifier(spec.label)
    )
    return conn.execute(query).fetchone() == (True,)


def _empty_reason(conn: Conn, spec: ModelSpec) -> str | None:
    """The raw rows ``spec``'s relation is built from (``spec.needs``), when it is built
    and holds no rows at all: then no setting gives it labels, only those rows do."""
    if not spec.needs or not relation_columns(conn, spec.relation):
        return None
    schema, table = spec.relation.split(".", 1)
    empty = sql.SQL("select not exists (select from {})").format(sql.Identifier(schema, table))
    if conn.execute(empty).fetchone() != (True,):
        return None
    return f"{spec.relation} has no rows: it is built from {spec.needs}"


def _unlabelled_reason(conn: Conn, spec: ModelSpec) -> str:
    """Why ``spec`` has nothing to learn from: its relation's missing raw rows, or labels
    that mature on no as-of date kept (with the setting that cut them, if one did)."""
    empty = _empty_reason(conn, spec)
    if empty:
        return empty
    reason = f"{spec.relation} has no row with a {spec.label} label to learn from"
    advice = setting_advice(conn, spec)
    if advice:
        reason += f": the {spec.horizon_days}-day label matures on none of the as-of dates kept; {advice}"
    return reason


def train_many(
    conn: Conn,
    specs: list[ModelSpec],
    models_dir: Path,
    as_of: date | None = None,
    progress: Progress | None = None,
    skip_empty: bool = True,
    retrain: bool = False,
) -> TrainingReport:
    """Train each of ``specs``; a model that cannot be trained is reported, the others still train.

    With ``skip_empty`` a model with not one labelled row is skipped with the reason
    rather than failed: a retailer without offers has no offer model, one without
    launches no sell-through model. Too few labelled rows is a failure, with what to change.
    A model whose spec, feature build and matured training window are those of a
    version already registered is skipped (it would be trained again identically),
    unless ``retrain``.
    """
    say = progress or (lambda _: None)
    report = TrainingReport([], {})
    for spec in specs:
        if not has_labels(conn, spec):
            if skip_empty:
                report.skipped[spec.name] = _unlabelled_reason(conn, spec)
                say(f"{spec.name}: skipped: {report.skipped[spec.name]}")
                continue
            # A model asked for by name fails instead; an empty relation says which raw
            # rows it needs, where training would say that too few dates have matured labels.
            empty = _empty_reason(conn, spec)
            if empty:
                report.failures[spec.name] = f"{spec.name}: {empty}"
                say(f"error: {report.failures[spec.name]}")
                continue
        fingerprint = training_fingerprint(conn, spec, as_of)
        same = None if retrain else trained_with(conn, spec.name, fingerprint)
        if same is not None:
            report.skipped[spec.name] = (
                f"unchanged since version {same} (same spec, feature build and matured training rows); "
                "--retrain trains it again"
            )
            say(f"{spec.name}: skipped: {report.skipped[spec.name]}")
            continue
        try:
            report.results.append(train_model(conn, spec, models_dir, as_of, progress, fingerprint))
        except MODEL_ERRORS as exc:
            message = str(exc) if str(exc).startswith(f"{spec.name}:") else f"{spec.name}: {exc}"
            report.failures[spec.name] = message
            say(f"error: {message}")
    return report
