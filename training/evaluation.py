"""A version's predictions on a window of rows, and the metrics its task is judged by."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.pipeline import Pipeline

from storecast.training import metrics as m
from storecast.training.data import Frame
from storecast.training.export import predict_sklearn
from storecast.training.intervals import keyed_bounds
from storecast.training.spec import ModelSpec

F64 = npt.NDArray[np.float64]


def predict(pipeline: Pipeline, spec: ModelSpec, frame: Frame) -> F64:
    """scikit-learn's predictions for ``frame``'s rows, as the spec serves them (a
    probability, or a non-negative count or amount)."""
    return spec.finalise(predict_sklearn(pipeline, spec.task, frame.features[spec.feature_columns]))


def evaluate(
    spec: ModelSpec, frame: Frame, predictions: F64, intervals: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The task's metrics of ``predictions`` against ``frame``'s labels: classification and
    ranking for a binary model, errors for a regression, and for a forecast its errors
    against seasonal naive by horizon, with interval coverage when ``intervals`` are given."""
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
        else keyed_bounds(
            intervals,
            predictions,
            horizon,
            spec.horizon_buckets,
            frame.keys,
            spec.series_keys,
            interval_width(spec, frame),
        )
    )
    return m.forecast_metrics(y, predictions, naive, horizon, spec.horizon_buckets, ranges)


def evaluation_columns(spec: ModelSpec) -> list[str]:
    """Columns read besides a version's features: a forecast's metrics and baseline read the
    horizon and the seasonal naive forecast (MASE's scale), whatever the version uses, and
    its intervals the width column."""
    return ["horizon", "units_seasonal_naive", *width_columns(spec)] if spec.task == "forecast" else []


def width_columns(spec: ModelSpec) -> list[str]:
    """The spec's interval width column as a list of columns to read (none without one)."""
    return [] if spec.interval_width_column is None else [spec.interval_width_column]


def interval_width(spec: ModelSpec, frame: Frame) -> F64 | None:
    """Each row's value of the spec's interval width column, where it names one."""
    column = spec.interval_width_column
    return None if column is None else frame.features[column].to_numpy(dtype=np.float64)
