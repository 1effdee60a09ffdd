"""Spec features that carry nothing on the training rows, left out of the version (and
recorded with it, so scoring leaves them out too)."""

from __future__ import annotations

import numpy as np

from storecast.training.data import Frame
from storecast.training.errors import TrainingError
from storecast.training.spec import OFFSET_COLUMNS, Features, ModelSpec


def constant_features(spec: ModelSpec, train: Frame) -> list[str]:
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


def without(spec: ModelSpec, dropped: list[str]) -> ModelSpec:
    """``spec`` with ``dropped`` features left out (and recorded). Raises
    :class:`TrainingError` when no numeric feature is left."""
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
    # A level (or lift) that carries nothing is no offset to forecast against.
    offsets = {field: None for field in OFFSET_COLUMNS if getattr(spec, field) in dropped}
    return spec.model_copy(update={"features": features, "dropped_features": dropped, **offsets})
