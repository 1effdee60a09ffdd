"""Per-row explanations: each feature's additive contribution to a model's raw score.

Definitions (the contributions and the base value always add up to the raw score):

* **Linear models** (logistic regression, ridge, GLMs): exact, ``coef_j * (t_j - mean_j)``
  for every transformed column ``t_j`` (mean over the training rows), the base value
  being the raw score of the training mean.
* **Gradient-boosted trees**: per-path contributions (Saabas): in every tree, each split
  on the row's path credits its feature with the change in the node value from the
  split node to the child the row goes to, so a tree's credits add up to its leaf
  value less its root value; the base value is the baseline plus every root value.
  The node values are the booster's own (its Newton steps, scaled by the learning
  rate). Cheaper than TreeSHAP and exact in sum; unlike TreeSHAP, the credit of a
  split depends on where it sits on the path.

The raw score is the model's output before its link function and calibration: log-odds
for classifiers (the calibrator maps it monotonically to the probability), the log of
the mean for log-link regressors, ``log1p(units)`` for a log1p target, the prediction
itself otherwise. Transformed columns are summed back to the input column they come
from (a category's one-hot columns to the category, say); BG/NBD's quantities keep
their own names (``btyd_p_alive``, ...).

At scoring, the pipeline's preprocessing runs in ONNX Runtime (the same converters as
the scoring model); the explainer's parameters travel in that ONNX file's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from storecast.training.btyd import register_btyd_converter
from storecast.training.categorical_trees import (
    input_columns,
    left_codes,
    register_categorical_tree_converters,
    seen_codes,
)
from storecast.training.export import OPSET
from storecast.training.spec import ModelSpec
from storecast.training.target import Log1pRegressor

F64 = npt.NDArray[np.float64]
METADATA_KEY = "storecast.explainer"
#: How many reasons each score row keeps.
TOP_REASONS = 3
#: Tree-row pairs traversed at once (memory, not speed, sets it).
_PAIRS_PER_BLOCK = 4_000_000


def _estimator(pipeline: Pipeline) -> Any:
    """The fitted model whose raw score is explained (inside calibration or a log1p target)."""
    final = pipeline.steps[-1][1]
    if isinstance(final, CalibratedClassifierCV):
        final = getattr(final.estimator, "estimator", final.estimator)
    if isinstance(final, Log1pRegressor):
        final = final.estimator_
    return final


def raw_score(pipeline: Pipeline, features: pd.DataFrame) -> F64:
    """scikit-learn's raw score of the explained model (see the module docstring)."""
    preprocess, model = pipeline.steps[0][1], _estimator(pipeline)
    transformed = preprocess.transform(features)
    if isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return np.asarray(model._raw_predict(transformed), dtype=np.float64).ravel()
    return np.asarray(transformed @ np.ravel(model.coef_) + np.ravel(model.intercept_)[0], dtype=np.float64)


def _groups(preprocess: ColumnTransformer) -> list[str]:
    """For every transformed column, the input column (or BG/NBD quantity) it comes from."""
    names = [""] * int(sum(s.stop - s.start for s in preprocess.output_indices_.values()))
    for name, transformer, columns in preprocess.transformers_:
        block = preprocess.output_indices_.get(name)
        if block is None or block.stop == block.start or transformer == "drop":
            continue
        inner = transformer.steps[-1][1] if isinstance(transformer, Pipeline) else transformer
        if isinstance(inner, OneHotEncoder):
            owners = [c for c, cats in zip(columns, inner.categories_, strict=True) for _ in cats]
        elif block.stop - block.start == len(columns):
            owners = list(columns)
        else:
            owners = [str(n) for n in transformer.get_feature_names_out()]
        names[block] = owners
    return names


def _tree_arrays(model: HistGradientBoostingClassifier | HistGradientBoostingRegressor) -> dict[str, Any]:
    """Every tree's nodes as flat lists: the input column of each split (undoing
    scikit-learn's reordering of categorical columns), where NaN and each category code
    go, and the node values on the scale of the raw score."""
    original = input_columns(model)
    seen = seen_codes(model)
    rate = float(model.learning_rate)
    roots: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    missing_left: list[bool] = []
    leaf: list[bool] = []
    value: list[float] = []
    categories: list[list[int]] = []  # per node: the codes that go left (categorical splits)
    for (predictor,) in model._predictors:
        offset = len(feature)
        roots.append(offset)
        for node in predictor.nodes:
            is_leaf = bool(node["is_leaf"])
            index = int(node["feature_idx"])
            leaf.append(is_leaf)
            value.append(float(node["value"]) * (1.0 if is_leaf else rate))
            feature.append(int(original[index]) if not is_leaf else 0)
            threshold.append(float(node["num_threshold"]))
            left.append(offset + int(node["left"]))
            right.append(offset + int(node["right"]))
            missing_left.append(bool(node["missing_go_to_left"]))
            members: list[int] = []
            if not is_leaf and node["is_categorical"]:
                members = sorted(left_codes(predictor, node, seen[index]))
            categories.append(members)
    baseline = float(np.ravel(model._baseline_prediction)[0])
    return {
        "roots": roots,
        "feature": feature,
        "threshold": threshold,
        "left": left,
        "right": right,
        "missing_left": missing_left,
        "leaf": leaf,
        "value": value,
        "categories": categories,
        "base": baseline + sum(value[r] for r in roots),
    }


def _parameters(pipeline: Pipeline, spec: ModelSpec, train: pd.DataFrame) -> dict[str, Any]:
    preprocess, model = pipeline.steps[0][1], _estimator(pipeline)
    groups = _groups(preprocess)
    if isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return {"kind": "trees", "groups": groups, **_tree_arrays(model)}
    coef = np.ravel(model.coef_).astype(np.float64)
    mean = np.asarray(preprocess.transform(train[spec.feature_columns]), dtype=np.float64).mean(axis=0)
    return {
        "kind": "linear",
        "groups": groups,
        "coef": coef.tolist(),
        "mean": mean.tolist(),
        "base": float(np.ravel(model.intercept_)[0] + coef @ mean),
    }


def export_explainer(pipeline: Pipeline, spec: ModelSpec, train: pd.DataFrame) -> bytes:
    """The pipeline's preprocessing as ONNX (one output: the transformed columns), with
    the explainer's parameters in its metadata. ``train`` gives a linear model's means."""
    register_btyd_converter()
    register_categorical_tree_converters()
    types = [(c, FloatTensorType([None, 1])) for c in spec.features.numeric]
    types += [(c, StringTensorType([None, 1])) for c in spec.features.categorical]
    model = to_onnx(pipeline.steps[0][1], initial_types=types, target_opset=OPSET)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(_parameters(pipeline, spec, train))
    return bytes(model.SerializeToString())


@dataclass
class Explainer:
    """A loaded explainer: the preprocessing session and the parameters."""

    session: ort.InferenceSession
    parameters: dict[str, Any]

    @classmethod
    def load(cls, onnx_bytes: bytes) -> Explainer:
        """Load an explainer written by :func:`export_explainer` (single-threaded, like scoring)."""
        meta = {p.key: p.value for p in onnx.load_from_string(onnx_bytes).metadata_props}
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        return cls(session, json.loads(meta[METADATA_KEY]))

    @property
    def base(self) -> float:
        """The base value: the raw score before any feature's contribution."""
        return float(self.parameters["base"])

    @property
    def names(self) -> list[str]:
        """The names contributions are reported under, in :meth:`contributions`' column order."""
        return list(dict.fromkeys(self.parameters["groups"]))

    def transformed(self, feed: dict[str, npt.NDArray[Any]]) -> F64:
        """The transformed columns the model reads, from ONNX Runtime."""
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float64)

    def contributions(self, feed: dict[str, npt.NDArray[Any]]) -> F64:
        """Each row's contribution per name of :attr:`names`; with :attr:`base` they add up
        to the raw score."""
        columns = self.transformed(feed)
        p = self.parameters
        if p["kind"] == "linear":
            per_column = (columns - np.asarray(p["mean"])) * np.asarray(p["coef"])
        else:
            per_column = _path_contributions(columns, p)
        names = self.names
        owner = np.array([names.index(g) for g in p["groups"]])
        summed = np.zeros((len(columns), len(names)))
        for j in range(per_column.shape[1]):
            summed[:, owner[j]] += per_column[:, j]
        return summed


def _path_contributions(columns: F64, p: dict[str, Any]) -> F64:
    """Per-path contributions of every tree, summed (see the module docstring)."""
    feature = np.asarray(p["feature"], dtype=np.int64)
    threshold = np.asarray(p["threshold"], dtype=np.float64)
    children = np.stack([np.asarray(p["right"]), np.asarray(p["left"])])  # [go_left] -> child
    missing_left = np.asarray(p["missing_left"], dtype=bool)
    leaf = np.asarray(p["leaf"], dtype=bool)
    value = np.asarray(p["value"], dtype=np.float64)
    categorical = np.array([bool(c) for c in p["categories"]])
    goes_left = np.zeros((len(feature), 256), dtype=bool)  # by node and category code
    for i, members in enumerate(p["categories"]):
        goes_left[i, members] = True
    roots = np.asarray(p["roots"], dtype=np.int64)
    n = len(columns)
    out = np.zeros_like(columns)
    per_block = max(1, _PAIRS_PER_BLOCK // max(n, 1))
    for start in range(0, len(roots), per_block):
        block = roots[start : start + per_block]
        node = np.repeat(block, n)
        row = np.tile(np.arange(n), len(block))
        active = ~leaf[node]
        while active.any():
            pairs = np.flatnonzero(active)
            at, rows = node[pairs], row[pairs]
            x = columns[rows, feature[at]]
            missing = np.isnan(x)
            code = np.clip(np.where(missing, 0, x), 0, 255).astype(np.int64)
            left = np.where(
                missing,
                missing_left[at],
                np.where(categorical[at], goes_left[at, code], x <= threshold[at]),
            )
            child = children[left.astype(np.int64), at]
            np.add.at(out, (rows, feature[at]), value[child] - value[at])
            node[pairs] = child
            active[pairs] = ~leaf[child]
    return out


def reasons(contributions: F64, names: list[str], values: pd.DataFrame, top: int = TOP_REASONS) -> list[str]:
    """Each row's ``top`` largest contributions by size, as JSON arrays of
    ``{feature, value, contribution, direction}`` (``value`` as the model read it: the
    input column's value, or for a BG/NBD quantity, null)."""
    order = np.argsort(-np.abs(contributions), axis=1)[:, :top]
    present = [n in values.columns for n in names]
    cells: list[list[Any]] = [
        values[n].tolist() if ok else [None] * len(values) for n, ok in zip(names, present, strict=True)
    ]
    out: list[str] = []
    for i, picks in enumerate(order):
        items = []
        for j in picks:
            c = float(contributions[i, j])
            if c == 0.0:
                continue
            v = cells[j][i]
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            elif isinstance(v, np.generic):
                v = v.item()
            items.append(
                {
                    "feature": names[j],
                    "value": v,
                    "contribution": round(c, 6),
                    "direction": "up" if c > 0 else "down",
                }
            )
        out.append(json.dumps(items, default=str))
    return out
