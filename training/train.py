"""Train one model from its spec: split by time, fit and select, calibrate, export, register."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from psycopg import sql
from psycopg.rows import class_row
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

from storecast.db import Conn
from storecast.training import drift
from storecast.training import metrics as m
from storecast.training.baselines import BASELINES
from storecast.training.blend import MeanRegressor
from storecast.training.btyd import BTYDFeatures, ExpectedSpend
from storecast.training.customers import (
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
    relation_columns,
    time_counts,
)
from storecast.training.errors import FeatureError, ParityError, TrainingError
from storecast.training.estimators import BLENDS, BTYD_AS_IS, BTYD_ONLY, make_pipeline
from storecast.training.explain import export_explainer
from storecast.training.export import (
    OPSET,
    export,
    float32_thresholds,
    onnx_inputs,
    parity,
    predict_onnx,
    predict_sklearn,
    sha256,
)
from storecast.training.fingerprint import trained_with, training_fingerprint
from storecast.training.grain import LastPeriod, grain_hint, partial_period_hint
from storecast.training.intervals import fit as fit_intervals
from storecast.training.intervals import keyed_bounds, min_calibration_rows, series_names
from storecast.training.registry import champion, register
from storecast.training.spec import Features, ModelSpec, stored_spec
from storecast.training.split import SplitError, TimeSplit, split_times

F64 = npt.NDArray[np.float64]
Progress = Callable[[str], None]


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


def _predict(pipeline: Pipeline, spec: ModelSpec, frame: Frame) -> F64:
    return spec.finalise(predict_sklearn(pipeline, spec.task, frame.features[spec.feature_columns]))


def _evaluate(
    spec: ModelSpec, frame: Frame, predictions: F64, intervals: dict[str, Any] | None = None
) -> dict[str, Any]:
    assert frame.label is not None
    y = frame.label
    if spec.task == "binary":
        out: dict[str, Any] = m.binary_metrics(y, predictions)
        if spec.group_column:
            groups = frame.keys[spec.group_column].to_numpy(dtype=np.int64)
            out.update(m.ranking_metrics(y, predictions, groups, spec.top_k))
        return out
    if spec.task == "regression":
        return m.regression_metrics(y, predictions)
    naive = frame.features["units_seasonal_naive"].to_numpy(dtype=float)
    horizon = frame.features["horizon"].to_numpy(dtype=float)
    ranges = (
        None
        if intervals is None
        else keyed_bounds(intervals, predictions, horizon, spec.horizon_buckets, frame.keys, spec.series_keys)
    )
    return m.forecast_metrics(y, predictions, naive, horizon, spec.horizon_buckets, ranges)


def _evaluation_columns(spec: ModelSpec) -> list[str]:
    """Columns read besides a version's features: a forecast's metrics and baseline read the
    horizon and the seasonal naive forecast (MASE's scale), whatever the version uses."""
    return ["horizon", "units_seasonal_naive"] if spec.task == "forecast" else []


def _fit(
    spec: ModelSpec, name: str, train: Frame, btyd: BTYDFeatures | None = None, say: Progress | None = None
) -> Pipeline:
    """Fit candidate ``name`` on ``train``. A solver that stops at its iteration limit is
    said in one line (sklearn's advice to raise ``max_iter`` is not a setting a user has):
    the candidate is still judged on validation like the rest."""
    assert train.label is not None
    data = train
    if spec.task == "binary" and spec.class_balance.policy == "downsample_negatives":
        # Keeping a share of the negatives speeds up fitting on rare positives; the
        # calibration on the (untouched) validation window undoes the shift in rates.
        rng = np.random.default_rng(0)
        keep = (train.label == 1) | (rng.random(len(train)) < spec.class_balance.negative_rate)
        data = train.subset(keep)
    pipeline = make_pipeline(spec, name, btyd)
    assert data.label is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipeline.fit(data.features[spec.feature_columns], data.label)
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if say and any(issubclass(w.category, ConvergenceWarning) for w in caught):
        say(f"{spec.name}: {name} stopped at its solver's iteration limit before converging")
    return float32_thresholds(pipeline)


def _fit_blend(
    spec: ModelSpec,
    name: str,
    fitted: dict[str, Pipeline],
    train: Frame,
    btyd: BTYDFeatures | None = None,
    say: Progress | None = None,
) -> Pipeline:
    """Blend ``name`` of its members fitted on ``train``, reusing those in ``fitted`` (fitted
    on the same rows as candidates of their own). The members take the same input, so their
    preprocessing, fitted on the same rows, is one and the same: the first one's serves."""
    members = [
        fitted[member] if member in fitted else _fit(spec, member, train, btyd, say)
        for member in BLENDS[name]
    ]
    blend = MeanRegressor.of_fitted(
        [(member, p.named_steps["estimator"]) for member, p in zip(BLENDS[name], members, strict=True)]
    )
    return Pipeline([("preprocess", members[0].named_steps["preprocess"]), ("estimator", blend)])


def _calibrator(estimator: Any, method: str, x: Any, y: npt.ArrayLike) -> CalibratedClassifierCV:
    """One calibrator fitted on the rows ``x``, ``y`` around the frozen, already fitted model."""
    with warnings.catch_warnings():
        # The frozen model is not refit per fold, so sklearn's warning about small folds
        # (it still splits the rows to fit the calibrator) does not apply.
        warnings.filterwarnings("ignore", message="The least populated class in y", category=UserWarning)
        return CalibratedClassifierCV(FrozenEstimator(estimator), method=method, ensemble=False).fit(x, y)


def _calibrate(
    spec: ModelSpec,
    pipeline: Pipeline,
    validation: Frame,
    test: Frame,
    methods: tuple[str, ...] = ("sigmoid", "isotonic"),
) -> tuple[Pipeline, str | None, str]:
    """Calibrate on the validation window: of ``methods`` (sigmoid, isotonic) the one with
    the lower Brier score on the later half of it, provided the ONNX export matches
    scikit-learn."""
    assert validation.label is not None
    y = validation.label
    if len(np.unique(y)) < 2:
        return pipeline, None, "not calibrated: the validation window has a single class"
    preprocess, estimator = pipeline.named_steps["preprocess"], pipeline.named_steps["estimator"]
    x = preprocess.transform(validation.features[spec.feature_columns])
    middle = np.sort(validation.time)[len(validation.time) // 2]
    early, late = validation.time < middle, validation.time >= middle
    scores: dict[str, float] = {}
    for method in methods:
        if len(np.unique(y[early])) == 2 and late.any():
            trial = _calibrator(estimator, method, x[early], y[early])
            scores[method] = float(brier_score_loss(y[late], trial.predict_proba(x[late])[:, 1]))
    ranked = sorted(scores, key=lambda k: scores[k]) or [methods[0]]
    notes = []
    for method in ranked:
        calibrated = _calibrator(estimator, method, x, y)
        candidate = Pipeline([("preprocess", preprocess), ("calibrate", calibrated)])
        try:
            parity(export(candidate, spec), candidate, spec, test.features[spec.feature_columns])
        except ParityError as exc:
            notes.append(f"{method} rejected: {exc}")
            continue
        brier = ", ".join(f"{k} {v:.5f}" for k, v in scores.items())
        return (
            candidate,
            method,
            "; ".join([f"{method} (Brier on the later validation half: {brier})", *notes]),
        )
    raise ParityError("; ".join(notes))


def _conformal(spec: ModelSpec, pipeline: Pipeline, validation: Frame) -> dict[str, Any]:
    """Split-conformal intervals from the validation residuals, their width following the level."""
    assert validation.label is not None
    return fit_intervals(
        validation.label,
        _predict(pipeline, spec, validation),
        validation.features["horizon"].to_numpy(dtype=float),
        validation.time,
        spec.horizon_buckets,
        spec.interval_levels,
        series_names(validation.keys, spec.series_keys),
    )


def _library_versions() -> dict[str, str]:
    return {p: package_version(p) for p in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")}


def _constant_features(spec: ModelSpec, train: Frame) -> list[str]:
    """Spec features that carry no information on the training rows: NULL on every row,
    or one value on every row (one product, no offers, a single store format)."""
    dropped = []
    for column in spec.features.numeric:
        values = train.features[column].to_numpy(dtype=float)
        observed = values[~np.isnan(values)]
        if not len(observed) or (len(observed) == len(values) and observed.min() == observed.max()):
            dropped.append(column)
    dropped += [c for c in spec.features.categorical if train.features[c].nunique(dropna=False) <= 1]
    return dropped


def _without(spec: ModelSpec, dropped: list[str]) -> ModelSpec:
    """``spec`` with ``dropped`` features left out (and recorded)."""
    numeric = [c for c in spec.features.numeric if c not in dropped]
    if not numeric:
        raise TrainingError(
            f"{spec.name}: every numeric feature is constant or NULL on the training rows "
            f"({', '.join(dropped)}); load more varied history"
        )
    features = Features(
        numeric=numeric,
        categorical=[c for c in spec.features.categorical if c not in dropped],
        native_only=[c for c in spec.features.native_only if c not in dropped],
    )
    # A level that carries nothing is no level to forecast against.
    level = None if spec.level_column in dropped else spec.level_column
    return spec.model_copy(update={"features": features, "dropped_features": dropped, "level_column": level})


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
    counts = time_counts(conn, spec, matured_by=as_of)
    horizon = f"{spec.horizon_var}, now {spec.horizon_days // spec.period_days}" if spec.horizon_var else ""
    try:
        calibration_rows = min_calibration_rows(spec.horizon_buckets) if spec.task == "forecast" else 0
        split = split_times(counts, spec.holdout_periods, spec.embargo, spec.max_train_rows, calibration_rows)
    except SplitError as exc:
        advice = ["load more history"]
        if horizon:
            advice.append(f"shorten the horizon (--var {horizon})")
        if as_of:
            advice.append(f"train as of a later date than {as_of}")
        raise TrainingError(
            f"{spec.name}: {exc}; a {spec.horizon_days}-day label window needs more history: "
            + ", ".join(advice[:-1])
            + f" or {advice[-1]}"
        ) from None
    if split.note:
        say(f"warning: {spec.name}: {split.note}")
    last = _last_period(conn)
    trained_as_of = _trained_as_of(conn, last, as_of, counts)
    partial = partial_period_hint(spec, trained_as_of, last) if last is not None else ""
    if partial:
        say(f"warning: {spec.name}: {partial}")
    say(
        f"{spec.name}: train {split.train[0]}..{split.train[-1]}, validate {split.validation[0]}..{split.validation[-1]}, "
        f"test {split.test[0]}..{split.test[-1]}" + (" (sampled)" if split.sampling else "")
    )
    extra = _evaluation_columns(spec)
    train = FeatureReader(conn, spec, split.train, extra_numeric=extra, matured_by=as_of).read()
    validation = FeatureReader(conn, spec, split.validation, extra_numeric=extra, matured_by=as_of).read()
    test = FeatureReader(conn, spec, split.test, extra_numeric=extra, matured_by=as_of).read()
    # The embargo keeps validation honest; a refit has no use for it, and the dates it
    # left out of training are the latest before the validation window.
    gap = (
        FeatureReader(conn, spec, split.gap, extra_numeric=extra, matured_by=as_of).read()
        if spec.refit_before_test
        else None
    )
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
    if spec.task == "binary" and len(np.unique(train.label)) < 2:
        raise TrainingError(
            f"{spec.name}: every training label is {bool(train.label[0])} ({len(train):,} rows, "
            f"{split.train[0]}..{split.train[-1]}); a model needs both outcomes"
            + (f": try another horizon (--var {horizon})" if horizon else "")
        )
    hint = grain_hint(spec, train)
    if hint:
        say(f"warning: {spec.name}: {hint}")
    dropped = _constant_features(spec, train)
    if dropped:
        say(
            f"warning: {spec.name}: left out {', '.join(dropped)}: constant or NULL on every training row "
            "(recorded with the version; scoring leaves them out too)"
        )
        spec = _without(spec, dropped)

    latest = latest_customers(conn, spec, as_of)
    btyd = None if latest is None else latest.btyd
    scored: dict[str, tuple[float, Pipeline]] = {}
    usable = [c for c in spec.candidates if c not in BTYD_ONLY or btyd is not None]
    if not usable:
        raise TrainingError(f"{spec.name}: its only candidates need {spec.btyd_columns}, which were left out")
    selection_note = ""
    if latest is not None:
        usable, selection_note = extrapolating_candidates(spec, usable, latest.ages, [train, validation])
        selection_note = "; ".join(filter(None, [selection_note, fit_notes(latest)]))
        if selection_note:
            say(f"{spec.name}: {selection_note}")
    fitted: dict[str, Pipeline] = {}
    # Members first: a blend reuses the candidates it averages, fitted on the same rows.
    for name in sorted(usable, key=lambda candidate: candidate in BLENDS):
        pipeline = (
            _fit_blend(spec, name, fitted, train, btyd, say)
            if name in BLENDS
            else _fit(spec, name, train, btyd, say)
        )
        fitted[name] = pipeline
        value = _evaluate(spec, validation, _predict(pipeline, spec, validation))[spec.selection_metric]
        scored[name] = (float(value), pipeline)
        say(f"{spec.name}: {name} {spec.selection_metric} on validation = {value:.4f}")
    best = max(
        scored, key=lambda k: scored[k][0] if m.HIGHER_IS_BETTER[spec.selection_metric] else -scored[k][0]
    )
    pipeline = scored[best][1]

    calibration: str | None = None
    calibration_note = ""
    intervals: dict[str, Any] | None = None
    if spec.task == "forecast":
        # From the model that has not seen the validation window, so the residuals are out of sample.
        intervals = _conformal(spec, pipeline, validation)
    # BG/NBD taken as it is: its level held to the rate of today's customers' recent orders.
    held = latest if latest is not None and spec.recent_column is not None and best in BTYD_AS_IS else None
    if spec.task == "binary":
        # A sigmoid's log odds can be shifted to that level; an isotonic step function's cannot.
        methods = ("sigmoid",) if held is not None else ("sigmoid", "isotonic")
        pipeline, calibration, calibration_note = _calibrate(spec, pipeline, validation, test, methods)
        if held is not None and calibration == "sigmoid":
            calibration_note += "; " + hold_to_recent_rate(conn, spec, held, pipeline)
            say(f"{spec.name}: {calibration_note}")
    elif spec.refit_before_test:
        assert gap is not None
        # An empty read has no label and default dtypes: left out rather than concatenated.
        parts = [part for part in (train, gap, validation) if len(part)]
        before_test = Frame(
            keys=pd.concat([p.keys for p in parts], ignore_index=True),
            features=pd.concat([p.features for p in parts], ignore_index=True),
            label=np.concatenate([p.label for p in parts if p.label is not None]),
            time=np.concatenate([p.time for p in parts]),
        )
        say(f"{spec.name}: {best} refit on {len(before_test):,} rows before the test window")
        pipeline = _fit(spec, best, before_test, btyd, say)

    estimator = pipeline.named_steps.get("estimator")
    if held is not None and isinstance(estimator, ExpectedSpend):
        level, calibration_note = recent_order_level(conn, spec, held)
        estimator.at_level(1.0 if level is None else level)
        say(f"{spec.name}: {calibration_note}")

    onnx = export(pipeline, spec)
    parity_diff = parity(onnx, pipeline, spec, test.features[spec.feature_columns])
    # Judge the version by what will serve: its ONNX predictions, the same path the
    # champion is evaluated through below, so an identical retrain cannot "win" on
    # float32-versus-float64 noise.
    feed = onnx_inputs(test.features, list(spec.features.numeric), list(spec.features.categorical))
    test_pred = spec.finalise(predict_onnx(onnx, spec.task, feed))
    metrics = _evaluate(spec, test, test_pred, intervals)
    baseline_metrics = _evaluate(spec, test, BASELINES[spec.baseline](train, test))

    value, baseline_value = (
        float(metrics[spec.selection_metric]),
        float(baseline_metrics[spec.selection_metric]),
    )
    current = champion(conn, spec.name)
    champion_value: float | None = None
    if current is None:
        promote, reason = True, "first version of this model"
        if not m.better(spec.selection_metric, value, baseline_value):
            # Something must serve, but no one should take it for a working model.
            reason += (
                f"; it does NOT beat the {spec.baseline} baseline on its test window "
                f"({spec.selection_metric} {value:.4f} against {baseline_value:.4f})"
            )
    else:
        try:
            champ_spec = stored_spec(current.spec)
            champ_test = FeatureReader(
                conn,
                spec,
                split.test,
                numeric=champ_spec.features.numeric,
                categorical=champ_spec.features.categorical,
                extra_numeric=_evaluation_columns(spec),
                matured_by=as_of,
            ).read()
            feed = onnx_inputs(
                champ_test.features, list(champ_spec.features.numeric), list(champ_spec.features.categorical)
            )
            champ_metrics = _evaluate(
                spec, champ_test, spec.finalise(predict_onnx(current.onnx, spec.task, feed)), None
            )
            champion_value = float(champ_metrics[spec.selection_metric])
            promote = m.better(spec.selection_metric, value, champion_value)
            verdict = "beats" if promote else "does not beat"
            reason = (
                f"{spec.selection_metric} {value:.4f} {verdict} champion v{current.version} ({champion_value:.4f}) "
                f"on the test window {split.test[0]}..{split.test[-1]}"
            )
            limit = spec.max_champion_bias
            if promote and limit is not None:
                bias, champion_bias = float(metrics["bias"]), float(champ_metrics["bias"])
                if abs(bias) > limit >= abs(champion_bias):
                    promote = False
                    reason += (
                        f", but its bias {bias:+.3f} is outside ±{limit} where the champion's "
                        f"({champion_bias:+.3f}) is within: kept as a candidate (promote it by hand if wanted)"
                    )
        except Exception as exc:  # a champion that cannot even be evaluated is replaced
            promote, reason = True, f"champion v{current.version} could not be evaluated: {exc}"

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
        "validation_rows": len(validation),
        "test_rows": len(test),
        "estimator": best,
        "calibration": calibration,
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
            selection={k: v for k, (v, _) in scored.items()},
            selection_note=selection_note,
            calibration_note=calibration_note,
            split_note=split.note,
        ),
        "baseline_metrics": baseline_metrics,
        "selection_metric": spec.selection_metric,
        "parity_max_abs_diff": parity_diff,
        "intervals": intervals,
        "sampling": split.sampling,
        "overridden_labels": overridden,
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
    version = register(conn, record, promote, reason, models_dir)
    status = "champion" if promote else "candidate"
    say(f"{spec.name}: version {version} is {status}: {reason}")
    return TrainResult(
        spec=spec,
        version=version,
        status=status,
        reason=reason,
        estimator=best,
        calibration=calibration,
        selection_value=value,
        baseline_value=baseline_value,
        champion_value=champion_value,
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
        if skip_empty and not has_labels(conn, spec):
            report.skipped[spec.name] = f"{spec.relation} has no row with a {spec.label} label to learn from"
            say(f"{spec.name}: skipped: {report.skipped[spec.name]}")
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
