"""Whether a new version replaces the champion (``training.champion.judge``), judged against
the trained demand champion on its own test window: the metric decides, a lean beyond the
spec's bias limit does not replace a champion within it, a champion that cannot be
evaluated is replaced, and a first version says when it does not beat its baseline."""

from __future__ import annotations

import pytest

from storecast.db import Conn
from storecast.training.champion import Verdict, judge
from storecast.training.train import TrainResult


def _judge(conn: Conn, result: TrainResult, value: float, bias: float = 0.0, **update: object) -> Verdict:
    """The verdict on a version of ``result``'s model whose test-window metric is ``value``
    and bias ``bias``, its spec changed by ``update``."""
    spec = result.spec.model_copy(update=update)
    metrics = {spec.selection_metric: value, "bias": bias}
    return judge(conn, spec, result.split, metrics, result.baseline_value)


def test_the_champion_is_scored_on_the_same_test_window_and_replaced_only_by_a_better_metric(
    conn: Conn, trained: dict[str, TrainResult]
) -> None:
    demand = trained["demand"]
    assert demand.spec.selection_metric == "wape_bias"  # lower is better
    worse = _judge(conn, demand, demand.selection_value * 2 + 1)
    # The champion's ONNX graph on the rows it was judged on at training gives the same value.
    assert worse.champion_value == pytest.approx(demand.selection_value, rel=1e-6)
    assert not worse.promote
    assert f"does not beat champion v{demand.version}" in worse.reason
    better = _judge(conn, demand, demand.selection_value / 2)
    assert better.promote
    assert f"beats champion v{demand.version}" in better.reason
    assert f"on the test window {demand.split.test[0]}..{demand.split.test[-1]}" in better.reason


def test_a_better_version_leaning_past_the_bias_limit_does_not_replace_a_champion_within_it(
    conn: Conn, trained: dict[str, TrainResult]
) -> None:
    demand = trained["demand"]
    # A limit the champion's test-window bias is surely within (it leans a few per cent).
    limit = 10.0
    leaning = _judge(conn, demand, demand.selection_value / 2, bias=limit + 1, max_champion_bias=limit)
    assert not leaning.promote
    assert f"but its bias +{limit + 1:.3f} is outside ±{limit}" in leaning.reason
    assert "kept as a candidate" in leaning.reason
    within = _judge(conn, demand, demand.selection_value / 2, bias=-(limit - 1), max_champion_bias=limit)
    assert within.promote
    unlimited = _judge(conn, demand, demand.selection_value / 2, bias=limit + 1, max_champion_bias=None)
    assert unlimited.promote


def test_a_champion_that_cannot_be_evaluated_is_replaced_saying_why(
    conn: Conn, trained: dict[str, TrainResult]
) -> None:
    demand = trained["demand"]
    verdict = _judge(conn, demand, demand.selection_value * 2 + 1, relation="features.no_such_relation")
    assert verdict.promote
    assert verdict.reason.startswith(f"champion v{demand.version} could not be evaluated: ")
    assert verdict.champion_value is None


def test_a_first_version_is_promoted_and_says_when_it_does_not_beat_its_baseline(
    conn: Conn, trained: dict[str, TrainResult]
) -> None:
    demand = trained["demand"]
    beating = _judge(conn, demand, demand.baseline_value / 2, name="demand_without_a_champion")
    assert beating == Verdict(True, "first version of this model")
    losing = _judge(conn, demand, demand.baseline_value * 2 + 1, name="demand_without_a_champion")
    assert losing.promote
    assert losing.reason.startswith(
        "first version of this model; it does NOT beat the seasonal_naive baseline"
    )
