"""The demo says plainly which champions do not beat their baseline, with the figures."""

from __future__ import annotations

from datetime import date

from storecast.render import out, print_champion_scores
from storecast.training.registry import ChampionScore

AS_OF = date(2026, 11, 1)


def test_a_champion_worse_than_its_baseline_is_named_with_the_figures() -> None:
    scores = [
        ChampionScore("demand", 1, "wape_bias", 1.01, "seasonal_naive", 0.98, "poisson_glm", AS_OF),
        ChampionScore("purchase_30d", 2, "roc_auc", 0.90, "recency_rule", 0.80, "bg_nbd", AS_OF),
    ]
    assert [s.beats_baseline for s in scores] == [False, True]
    with out.capture() as captured:
        print_champion_scores(scores)
    text = " ".join(captured.get().split())
    assert "demand v1 does not beat the seasonal_naive baseline on its own test window" in text
    assert "(wape_bias 1.0100 against 0.9800)" in text
    assert "purchase_30d v2 does not beat" not in text
    assert text.count("does NOT beat it") == 1
