"""Whether a new version replaces the champion: judged on the same test window, through the
ONNX path that serves, with a forecast's bias held to the spec's limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from storecast.db import Conn
from storecast.training import metrics as m
from storecast.training.data import FeatureReader
from storecast.training.evaluation import evaluate, evaluation_columns
from storecast.training.export import onnx_inputs, predict_onnx
from storecast.training.registry import champion
from storecast.training.spec import ModelSpec, stored_spec
from storecast.training.split import TimeSplit


@dataclass(frozen=True)
class Verdict:
    """Whether the new version is promoted, why (stored with it), and the champion's value
    of the selection metric on the same test window (None without a champion, or when it
    could not be evaluated)."""

    promote: bool
    reason: str
    champion_value: float | None = None


def judge(
    conn: Conn,
    spec: ModelSpec,
    split: TimeSplit,
    metrics: dict[str, Any],
    baseline_value: float,
    as_of: date | None = None,
) -> Verdict:
    """Judge a new version by its test-window ``metrics`` against the current champion's
    on the same rows (read with the champion's own features, scored by its ONNX graph).

    The first version is promoted, and said not to beat the baseline when it does not:
    something must serve, but no one should take it for a working model. A version whose
    |bias| exceeds ``spec.max_champion_bias`` is not promoted over a champion within it.
    A champion that cannot even be evaluated is replaced, with the reason.
    """
    value = float(metrics[spec.selection_metric])
    current = champion(conn, spec.name)
    if current is None:
        reason = "first version of this model"
        if not m.better(spec.selection_metric, value, baseline_value):
            reason += (
                f"; it does NOT beat the {spec.baseline} baseline on its test window "
                f"({spec.selection_metric} {value:.4f} against {baseline_value:.4f})"
            )
        return Verdict(True, reason)
    try:
        champ_spec = stored_spec(current.spec)
        champ_test = FeatureReader(
            conn,
            spec,
            split.test,
            numeric=champ_spec.features.numeric,
            categorical=champ_spec.features.categorical,
            extra_numeric=evaluation_columns(spec),
            matured_by=as_of,
        ).read()
        feed = onnx_inputs(
            champ_test.features, list(champ_spec.features.numeric), list(champ_spec.features.categorical)
        )
        champ_metrics = evaluate(
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
        return Verdict(promote, reason, champion_value)
    except Exception as exc:  # a champion that cannot even be evaluated is replaced
        return Verdict(True, f"champion v{current.version} could not be evaluated: {exc}")
