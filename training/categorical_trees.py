"""Native categorical splits for gradient boosting, and their export to ONNX.

Gradient boosting can split on a category directly ("store in {3, 17, 40}") instead of
on one-hot columns, which lets a global model learn a level per store and per product
(the keys of a demand panel) without a column per key. scikit-learn's
``HistGradientBoostingRegressor`` takes categories as codes ``0..max_bins-1``;
:class:`CategoryCodes` gives the most frequent categories of each column those codes and
every other value (rarer, or unseen in training) NaN, which the trees treat as missing.

skl2onnx 1.20 exports such a model without error but with wrong predictions (it reads a
categorical split as a numeric threshold). :func:`register_categorical_tree_converters`
teaches it both parts: the codes as one ``LabelEncoder`` per column, and the trees as
``ai.onnx.ml`` ``TreeEnsemble`` (opset 5), whose ``BRANCH_MEMBER`` mode tests set
membership. A model without categorical splits keeps skl2onnx's own converter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingRegressor

#: Codes per column: scikit-learn's gradient boosting takes at most ``max_bins`` (255)
#: categories, codes ``0..254``; the rest of a column's values become missing.
MAX_CATEGORIES = 255
#: ``ai.onnx.ml`` opset of the ``TreeEnsemble`` operator (the first with set membership),
#: and the ONNX IR version that goes with it.
TREE_ENSEMBLE_OPSET = 5
TREE_ENSEMBLE_IR_VERSION = 10
#: skl2onnx 1.20 refuses ``ai.onnx.ml`` opset 5, so the converter writes the operator in
#: this placeholder domain and :func:`finalize_tree_ensembles` moves it after conversion.
_PENDING_DOMAIN = "storecast.pending"
_BRANCH_LEQ, _BRANCH_MEMBER = 0, 6


class CategoryCodes(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Each column's ``max_categories`` most frequent values as codes 0, 1, ... (most
    frequent first, ties by value); any other value as NaN. Values are compared as text."""

    def __init__(self, max_categories: int = MAX_CATEGORIES) -> None:
        self.max_categories = max_categories

    def fit(self, features: Any, y: Any = None) -> CategoryCodes:
        """Learn the codes of each column."""
        frame = pd.DataFrame(features)
        self.categories_: list[list[str]] = []
        for column in frame.columns:
            counts = frame[column].astype(str).value_counts()
            ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            self.categories_.append([str(value) for value, _ in ranked[: self.max_categories]])
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, features: Any) -> npt.NDArray[np.float64]:
        """Codes as floats, NaN for values without one."""
        frame = pd.DataFrame(features)
        codes = np.full(frame.shape, np.nan)
        for j, categories in enumerate(self.categories_):
            lookup = pd.Index(categories)
            found = lookup.get_indexer(pd.Index(frame.iloc[:, j].astype(str)))
            codes[:, j] = np.where(found >= 0, found, np.nan)
        return codes

    def get_feature_names_out(self, input_features: Any = None) -> npt.NDArray[np.object_]:
        """The input column names (one code per column)."""
        names = (
            input_features if input_features is not None else [f"x{j}" for j in range(self.n_features_in_)]
        )
        return np.asarray(list(names), dtype=object)


def _bitset_members(bitset: npt.NDArray[np.uint32]) -> set[int]:
    """The values whose bit is set in a scikit-learn bitset (8 x 32 bits)."""
    return {
        32 * word + bit for word in range(len(bitset)) for bit in range(32) if (int(bitset[word]) >> bit) & 1
    }


def input_columns(model: HistGradientBoostingRegressor) -> npt.NDArray[np.int64]:
    """For each feature index the trees split on, the input column it is: scikit-learn
    puts the categorical columns first."""
    categorical = getattr(model, "is_categorical_", None)
    if categorical is None or not np.any(categorical):
        return np.arange(int(model.n_features_in_))
    return np.asarray(np.r_[np.flatnonzero(categorical), np.flatnonzero(~categorical)], dtype=np.int64)


def _seen_codes(model: HistGradientBoostingRegressor) -> dict[int, set[int]]:
    """The category codes seen in training, by the trees' feature index."""
    if getattr(model, "is_categorical_", None) is None or not np.any(model.is_categorical_):
        return {}
    known_bitsets, feature_map = model._bin_mapper.make_known_categories_bitsets()
    return {
        int(f): _bitset_members(known_bitsets[feature_map[f]])
        for f in np.flatnonzero(model._bin_mapper.is_categorical_)
    }


def _left_codes(predictor: Any, node: Any, seen: set[int]) -> set[int]:
    """The codes a categorical split sends left: its left categories, plus every code
    the trees never saw when missing values go left (scikit-learn treats those as missing)."""
    members = _bitset_members(predictor.raw_left_cat_bitsets[node["bitset_idx"]])
    if node["missing_go_to_left"]:
        members |= set(range(256)) - seen
    return members


def tree_ensemble_attributes(
    model: HistGradientBoostingRegressor, leaf_numbers: bool = False
) -> dict[str, Any]:
    """``TreeEnsemble`` attributes reproducing ``model``'s raw prediction, less its baseline;
    with ``leaf_numbers``, one output per tree instead: the number of the leaf the row
    reaches (leaves counted in node order within each tree), for the explainer.

    scikit-learn sends a row left when its code is among the split's left categories;
    right when it is another category seen in training; and where missing values go
    (``missing_go_to_left``) when it is NaN or a category the trees never saw. So the
    ``BRANCH_MEMBER`` set is the left categories, plus every unseen code when missing
    values go left; NaN follows ``missing_value_tracks_true`` as in a numeric split.
    """
    # scikit-learn encodes the categorical columns once more (OrdinalEncoder, in sorted
    # order) and puts them first; with codes 0..n-1 that encoding is the identity.
    encoder = model._preprocessor.named_transformers_["encoder"] if model._preprocessor else None
    for categories in encoder.categories_ if encoder else []:
        codes = np.asarray(categories, dtype=np.float64)
        codes = codes[~np.isnan(codes)]
        if not np.array_equal(codes, np.arange(len(codes))):
            raise NotImplementedError(
                "categorical features must arrive as codes 0..n-1, each seen in training (CategoryCodes)"
            )
    original = input_columns(model)
    seen = _seen_codes(model)
    modes: list[int] = []
    feature_ids: list[int] = []
    splits: list[float] = []
    true_ids: list[int] = []
    true_leaf: list[int] = []
    false_ids: list[int] = []
    false_leaf: list[int] = []
    missing_true: list[int] = []
    membership: list[float] = []
    leaf_weights: list[float] = []
    leaf_trees: list[int] = []
    roots: list[int] = []
    for tree, (predictor,) in enumerate(model._predictors):
        nodes = predictor.nodes
        leaf_index: dict[int, int] = {}
        node_index: dict[int, int] = {}
        for i, node in enumerate(nodes):
            if node["is_leaf"]:
                leaf_index[i] = len(leaf_weights) + len(leaf_index)
            else:
                node_index[i] = len(modes) + len(node_index)
        if leaf_numbers:
            leaf_weights.extend(float(k) for k in range(len(leaf_index)))
        else:
            leaf_weights.extend(float(nodes[i]["value"]) for i in leaf_index)
        leaf_trees.extend([tree] * len(leaf_index))
        if nodes[0]["is_leaf"]:
            # A tree that never split: one always-true test leading to its only leaf.
            roots.append(len(modes))
            modes.append(_BRANCH_LEQ)
            feature_ids.append(0)
            splits.append(np.inf)
            true_ids.append(leaf_index[0])
            false_ids.append(leaf_index[0])
            true_leaf.append(1)
            false_leaf.append(1)
            missing_true.append(1)
            continue
        roots.append(node_index[0])
        for i in node_index:
            node = nodes[i]
            feature = int(node["feature_idx"])
            feature_ids.append(int(original[feature]))
            missing_true.append(int(node["missing_go_to_left"]))
            if node["is_categorical"]:
                members = _left_codes(predictor, node, seen[feature])
                modes.append(_BRANCH_MEMBER)
                splits.append(np.nan)
                membership.extend([*map(float, sorted(members)), np.nan])
            else:
                modes.append(_BRANCH_LEQ)
                splits.append(float(node["num_threshold"]))
            for child, ids, is_leaf in (
                (node["left"], true_ids, true_leaf),
                (node["right"], false_ids, false_leaf),
            ):
                child = int(child)
                ids.append(leaf_index[child] if child in leaf_index else node_index[child])
                is_leaf.append(int(child in leaf_index))
    from onnx import numpy_helper

    def floats(values: list[float]) -> Any:
        return numpy_helper.from_array(np.asarray(values, dtype=np.float32))

    attributes: dict[str, Any] = {
        "aggregate_function": 1,  # SUM
        "post_transform": 0,  # NONE
        "n_targets": len(roots) if leaf_numbers else 1,
        "tree_roots": roots,
        "nodes_modes": numpy_helper.from_array(np.asarray(modes, dtype=np.uint8)),
        "nodes_featureids": feature_ids,
        "nodes_splits": floats(splits),
        "nodes_truenodeids": true_ids,
        "nodes_trueleafs": true_leaf,
        "nodes_falsenodeids": false_ids,
        "nodes_falseleafs": false_leaf,
        "nodes_missing_value_tracks_true": missing_true,
        "leaf_targetids": leaf_trees if leaf_numbers else [0] * len(leaf_weights),
        "leaf_weights": floats(leaf_weights),
    }
    if membership:
        attributes["membership_values"] = floats(membership)
    return attributes


def _has_categorical_splits(model: HistGradientBoostingRegressor) -> bool:
    return model.is_categorical_ is not None and bool(np.any(model.is_categorical_))


def _regressor_converter(scope: Any, operator: Any, container: Any) -> None:
    """Gradient boosting with categorical features as ``TreeEnsemble`` + its baseline;
    without them, skl2onnx's own converter."""
    from onnx import TensorProto
    from skl2onnx.operator_converters.random_forest import convert_sklearn_random_forest_regressor_converter

    model = operator.raw_operator
    if not _has_categorical_splits(model):
        convert_sklearn_random_forest_regressor_converter(scope, operator, container)
        return
    if model.n_trees_per_iteration_ != 1:
        raise NotImplementedError("categorical gradient boosting with several outputs")
    trees = scope.get_unique_variable_name("categorical_trees")
    container.add_node(
        "TreeEnsemble",
        operator.inputs[0].full_name,
        trees,
        op_domain=_PENDING_DOMAIN,
        op_version=1,
        name=scope.get_unique_operator_name("TreeEnsemble"),
        **tree_ensemble_attributes(model),
    )
    baseline = scope.get_unique_variable_name("baseline")
    container.add_initializer(
        baseline, TensorProto.FLOAT, [1], [float(np.ravel(model._baseline_prediction)[0])]
    )
    container.add_node(
        "Add", [trees, baseline], operator.outputs[0].full_name, name=scope.get_unique_operator_name("Add")
    )


def _codes_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([None, len(operator.raw_operator.categories_)])


def _codes_converter(scope: Any, operator: Any, container: Any) -> None:
    """One ``LabelEncoder`` (text -> code, NaN by default) per column, concatenated."""
    from onnx import TensorProto

    encoder = operator.raw_operator
    source = operator.inputs[0].full_name
    columns = []
    for j, categories in enumerate(encoder.categories_):
        index = scope.get_unique_variable_name("category_column")
        container.add_initializer(index, TensorProto.INT64, [1], [j])
        column = scope.get_unique_variable_name("category_text")
        container.add_node(
            "Gather", [source, index], column, axis=1, name=scope.get_unique_operator_name("Gather")
        )
        code = scope.get_unique_variable_name("category_code")
        container.add_node(
            "LabelEncoder",
            column,
            code,
            op_domain="ai.onnx.ml",
            op_version=2,
            name=scope.get_unique_operator_name("LabelEncoder"),
            keys_strings=list(categories),
            values_floats=[float(k) for k in range(len(categories))],
            default_float=float("nan"),
        )
        columns.append(code)
    container.add_node(
        "Concat",
        columns,
        operator.outputs[0].full_name,
        axis=1,
        name=scope.get_unique_operator_name("Concat"),
    )


def pending_tree_ensemble(inputs: list[str], outputs: list[str], attributes: dict[str, Any]) -> Any:
    """A ``TreeEnsemble`` node for a graph built by hand, in the placeholder domain that
    :func:`finalize_tree_ensembles` moves into ``ai.onnx.ml`` opset 5."""
    from onnx import helper

    return helper.make_node("TreeEnsemble", inputs, outputs, domain=_PENDING_DOMAIN, **attributes)


def finalize_tree_ensembles(model: Any) -> None:
    """Move the converter's ``TreeEnsemble`` nodes (if any) into ``ai.onnx.ml`` opset 5."""
    nodes = [node for node in model.graph.node if node.domain == _PENDING_DOMAIN]
    if not nodes:
        return
    for node in nodes:
        node.domain = "ai.onnx.ml"
    imports = [o for o in model.opset_import if o.domain != _PENDING_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(imports)
    ml = [o for o in model.opset_import if o.domain == "ai.onnx.ml"]
    if ml:
        ml[0].version = max(ml[0].version, TREE_ENSEMBLE_OPSET)
    else:
        model.opset_import.add(domain="ai.onnx.ml", version=TREE_ENSEMBLE_OPSET)
    model.ir_version = max(model.ir_version, TREE_ENSEMBLE_IR_VERSION)


def register_categorical_tree_converters() -> None:
    """Teach skl2onnx :class:`CategoryCodes` and categorical gradient boosting (idempotent)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.shape_calculators.linear_regressor import calculate_linear_regressor_output_shapes

    update_registered_converter(CategoryCodes, "StorecastCategoryCodes", _codes_shape, _codes_converter)
    update_registered_converter(
        HistGradientBoostingRegressor,
        "SklearnHistGradientBoostingRegressor",
        calculate_linear_regressor_output_shapes,
        _regressor_converter,
        options={"raw_scores": [True, False]},
    )
