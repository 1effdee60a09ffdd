"""Export a fitted pipeline to ONNX and check it against scikit-learn (parity)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from storecast.training.blend import MeanRegressor
from storecast.training.btyd import register_btyd_converter
from storecast.training.categorical_trees import finalize_tree_ensembles, register_categorical_tree_converters
from storecast.training.errors import ParityError
from storecast.training.spec import ModelSpec
from storecast.training.target import LevelRateRegressor, LevelRelativeRegressor, Log1pRegressor

#: ONNX opset storecast exports with.
OPSET = 17
#: Largest tolerated ONNX-vs-scikit-learn difference, by task: absolute for
#: probabilities; relative to max(1, |prediction|) for regression and forecasts, where
#: ONNX Runtime's float32 arithmetic over dozens of scaled terms costs about 1e-4 of a
#: prediction in the thousands (0.1 % is far below any forecast's error).
PARITY_TOLERANCE: dict[str, float] = {"binary": 1e-4, "regression": 1e-3, "forecast": 1e-3}


def float32_thresholds(pipeline: Pipeline) -> Pipeline:
    """Snap every gradient-boosting split threshold down to the largest float32 <= it.

    Inputs are float32 (ONNX Runtime reads float32), and for a float32 x, ``x <= t``
    holds exactly when ``x <= floor32(t)``: scikit-learn's decisions do not change,
    and ONNX, which stores thresholds as float32, now compares against the very same
    number. Without this a float64 threshold can round onto a data value and send
    that value down the other branch in ONNX only.
    """
    for model in fitted_models(pipeline):
        for predictors in getattr(model, "_predictors", None) or []:
            for predictor in predictors:
                thresholds = predictor.nodes["num_threshold"]
                snapped = thresholds.astype(np.float32)
                above = snapped.astype(np.float64) > thresholds
                snapped[above] = np.nextafter(snapped[above], np.float32(-np.inf))
                predictor.nodes["num_threshold"] = snapped.astype(np.float64)
    return pipeline


def fitted_models(pipeline: Pipeline) -> list[Any]:
    """The fitted models that make a pipeline's prediction, seen through what wraps them: a
    calibration, a blend (its members, in order; never blends themselves, see
    ``estimators.BLENDS``) and a log1p target (the model it fits)."""
    final = pipeline.steps[-1][1]
    if isinstance(final, CalibratedClassifierCV):
        final = getattr(final.estimator, "estimator", final.estimator)
    members = final.estimators_ if isinstance(final, MeanRegressor) else [final]
    return [member.estimator_ if isinstance(member, LevelRelativeRegressor) else member for member in members]


def unwrap_frozen(pipeline: Pipeline) -> Pipeline:
    """Replace sklearn's FrozenEstimator inside a calibrated classifier by the estimator it wraps.

    FrozenEstimator only stops refitting; skl2onnx does not know it, and the model
    it wraps is what the calibrators were fitted on.
    """
    for _, step in pipeline.steps:
        if isinstance(step, CalibratedClassifierCV):
            inner = getattr(step.estimator, "estimator", step.estimator)
            step.estimator = inner
            for calibrated in step.calibrated_classifiers_:
                calibrated.estimator = inner
    return pipeline


def onnx_inputs(
    features: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> dict[str, npt.NDArray[Any]]:
    """The ONNX Runtime feed for feature rows: one (n, 1) input per column."""
    feed: dict[str, npt.NDArray[Any]] = {
        c: features[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in numeric
    }
    for c in categorical:
        feed[c] = features[c].to_numpy(dtype=object).reshape(-1, 1)
    return feed


def _has_log_link(estimator: Any) -> bool:
    """Whether ``estimator`` is a gradient-boosting regressor fitted with a log link
    (Poisson or gamma loss): skl2onnx exports its raw score, without the exp."""
    return isinstance(estimator, HistGradientBoostingRegressor) and estimator.loss in ("poisson", "gamma")


#: What an appended operator takes besides the current tensor: nothing (a unary operator such
#: as Exp), a float constant (Sub 1, Mul by the correction) or another tensor, by name.
Operand = float | str | None


def _constant(model: onnx.ModelProto, name: str, value: float) -> str:
    """Add a one-element float32 initializer to the graph; return its name."""
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([value], dtype=np.float32), name))
    return name


def _append_to_output(model: onnx.ModelProto, ops: list[tuple[str, Operand]]) -> None:
    """Route the graph's single output through ``ops`` in order: ``(op, None)`` for a unary
    operator, ``(op, c)`` for a binary one with the float constant ``c``, ``(op, "name")``
    for a binary one with the tensor ``name``."""
    output = model.graph.output[0].name
    current = f"{output}_raw"
    for node in model.graph.node:
        node.output[:] = [current if name == output else name for name in node.output]
    for i, (op, operand) in enumerate(ops):
        result = output if i == len(ops) - 1 else f"{output}_{i}_{op.lower()}"
        inputs = [current]
        if isinstance(operand, str):
            inputs.append(operand)
        elif operand is not None:
            inputs.append(_constant(model, f"{output}_{i}_constant", operand))
        model.graph.node.append(
            onnx.helper.make_node(op, inputs, [result], name=f"{output}_{i}_{op.lower()}")
        )
        current = result


def _nodes(model: onnx.ModelProto, prefix: str, steps: list[tuple[str, list[str]]]) -> str:
    """Append ``steps`` (operator, inputs), each node's output named ``<prefix>_<operator>``
    in lower case; return the last one's."""
    for op, inputs in steps:
        name = f"{prefix}_{op.lower()}"
        model.graph.node.append(onnx.helper.make_node(op, inputs, [name], name=name))
    return f"{prefix}_{steps[-1][0].lower()}"


def _log1p_level(model: onnx.ModelProto, column: str) -> str:
    """Add nodes computing :func:`storecast.training.target.log1p_level` of the graph input
    ``column`` (missing or negative counts as 0); return the result's name."""
    zero = _constant(model, f"{column}_level_zero", 0.0)
    one = _constant(model, f"{column}_level_one", 1.0)
    steps = [
        ("IsNaN", [column]),
        ("Where", [f"{column}_level_isnan", zero, column]),
        ("Max", [f"{column}_level_where", zero]),
        ("Add", [f"{column}_level_max", one]),
        ("Log", [f"{column}_level_add"]),
    ]
    return _nodes(model, f"{column}_level", steps)


def _plus_lift(model: onnx.ModelProto, level: str | None, column: str) -> str:
    """Add nodes computing :func:`storecast.training.target.log_lift` of the graph input
    ``column`` (missing counts as 0) plus the tensor ``level`` if there is one; return the
    result's name."""
    zero = _constant(model, f"{column}_lift_zero", 0.0)
    steps = [("IsNaN", [column]), ("Where", [f"{column}_lift_isnan", zero, column])]
    if level is not None:
        steps.append(("Add", [f"{column}_lift_where", level]))
    return _nodes(model, f"{column}_lift", steps)


def _output_ops(estimator: Any, level: str | None = None) -> list[tuple[str, Operand]]:
    """The operators that turn the converted model's output into the prediction; ``level``
    names the tensor of a :class:`LevelRelativeRegressor`'s level term, if it has one (a
    :class:`LevelRateRegressor` wraps a log-link model: its raw score plus the level, then Exp)."""
    if isinstance(estimator, Log1pRegressor):
        return [
            *_output_ops(estimator.estimator_),
            *([("Add", level)] if level is not None else []),
            ("Exp", None),
            ("Sub", 1.0),
            ("Mul", estimator.correction_),
        ]
    if isinstance(estimator, LevelRateRegressor):
        # The wrapped model's raw score (its log) plus the offset, then its Exp.
        return [*([("Add", level)] if level is not None else []), ("Exp", None)]
    return [("Exp", None)] if _has_log_link(estimator) else []


def _side_by_side(members: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One graph running ``members`` over their shared inputs, its output their outputs' mean."""
    model = onnx.ModelProto()
    model.CopyFrom(members[0])
    output = model.graph.output[0].name
    for field in (model.graph.node, model.graph.initializer, model.graph.value_info):
        del field[:]
    outputs = []
    for i, member in enumerate(members):
        # Every name but the inputs' gets the member's prefix, so the graphs cannot collide.
        graph = onnx.compose.add_prefix_graph(member.graph, f"member{i}_", rename_inputs=False)
        model.graph.node.extend(graph.node)
        model.graph.initializer.extend(graph.initializer)
        outputs.append(graph.output[0].name)
        for entry in member.opset_import:
            known = [o for o in model.opset_import if o.domain == entry.domain]
            if known:
                known[0].version = max(known[0].version, entry.version)
            else:
                model.opset_import.add(domain=entry.domain, version=entry.version)
        model.ir_version = max(model.ir_version, member.ir_version)
    share = _constant(model, f"{output}_member_share", 1.0 / len(members))
    model.graph.node.extend(
        [
            onnx.helper.make_node("Sum", outputs, [f"{output}_sum"], name=f"{output}_sum"),
            onnx.helper.make_node("Mul", [f"{output}_sum", share], [output], name=f"{output}_mean"),
        ]
    )
    return model


def _to_onnx(pipeline: Pipeline, spec: ModelSpec) -> onnx.ModelProto:
    """The pipeline as an ONNX model (see :func:`export`)."""
    types = [(c, FloatTensorType([None, 1])) for c in spec.features.numeric]
    types += [(c, StringTensorType([None, 1])) for c in spec.features.categorical]
    options = {id(pipeline): {"zipmap": False}} if spec.task == "binary" else None
    register_btyd_converter()
    register_categorical_tree_converters()
    final = pipeline.steps[-1][1]
    if isinstance(final, MeanRegressor):
        preprocess = pipeline.steps[:-1]
        return _side_by_side(
            [_to_onnx(Pipeline([*preprocess, ("member", m)]), spec) for m in final.estimators_]
        )
    convertible = pipeline
    if isinstance(final, LevelRelativeRegressor):
        # skl2onnx converts the wrapped model; the back-transform and scale follow as operators.
        convertible = Pipeline([*pipeline.steps[:-1], (pipeline.steps[-1][0], final.estimator_)])
    model: onnx.ModelProto = to_onnx(
        unwrap_frozen(convertible), initial_types=types, target_opset=OPSET, options=options
    )
    finalize_tree_ensembles(model)
    level = None
    if isinstance(final, LevelRelativeRegressor) and final.level_index is not None:
        level = _log1p_level(model, spec.features.numeric[final.level_index])
    if isinstance(final, LevelRelativeRegressor) and final.lift_index is not None:
        level = _plus_lift(model, level, spec.features.numeric[final.lift_index])
    ops = _output_ops(final, level)
    if ops:
        _append_to_output(model, ops)
    return model


def export(pipeline: Pipeline, spec: ModelSpec) -> bytes:
    """The whole pipeline (preprocessing, estimator, calibration) as ONNX bytes."""
    return bytes(_to_onnx(pipeline, spec).SerializeToString())


def run_session(
    session: ort.InferenceSession, task: str, feed: dict[str, npt.NDArray[Any]]
) -> npt.NDArray[np.float64]:
    """Run a loaded model: the positive-class probability, or the prediction."""
    outputs = session.run(None, feed)
    if task == "binary":
        return np.asarray(outputs[1], dtype=np.float64)[:, 1]
    return np.asarray(outputs[0], dtype=np.float64).ravel()


def predict_onnx(
    onnx_bytes: bytes, spec_task: str, feed: dict[str, npt.NDArray[Any]]
) -> npt.NDArray[np.float64]:
    """Load and run an exported model once (see :func:`run_session`)."""
    return run_session(ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"]), spec_task, feed)


def predict_sklearn(pipeline: Pipeline, task: str, features: pd.DataFrame) -> npt.NDArray[np.float64]:
    """scikit-learn's prediction, in the same form as :func:`predict_onnx`."""
    if task == "binary":
        return np.asarray(pipeline.predict_proba(features)[:, 1], dtype=np.float64)
    return np.asarray(pipeline.predict(features), dtype=np.float64)


def parity(onnx_bytes: bytes, pipeline: Pipeline, spec: ModelSpec, features: pd.DataFrame) -> float:
    """Largest difference between ONNX Runtime and scikit-learn on ``features``.

    Raises
    ------
    ParityError
        Above :data:`PARITY_TOLERANCE` for the spec's task.
    """
    feed = onnx_inputs(features, list(spec.features.numeric), list(spec.features.categorical))
    onnx_pred = predict_onnx(onnx_bytes, spec.task, feed)
    sk_pred = predict_sklearn(pipeline, spec.task, features)
    difference = np.abs(onnx_pred - sk_pred)
    scaled = difference if spec.task == "binary" else difference / np.maximum(1.0, np.abs(sk_pred))
    worst = float(scaled.max()) if len(scaled) else 0.0
    tolerance = PARITY_TOLERANCE[spec.task]
    if worst > tolerance:
        kind = "absolute" if spec.task == "binary" else "relative"
        raise ParityError(
            f"{spec.name}: ONNX and scikit-learn differ by up to {worst:.3g} ({kind}; tolerance {tolerance})"
        )
    return float(difference.max()) if len(difference) else 0.0


def sha256(data: bytes) -> str:
    """Hex SHA-256 of the ONNX bytes."""
    return hashlib.sha256(data).hexdigest()
