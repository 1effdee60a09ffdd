"""The level BG/NBD is held to: the recent rate of orders, at most 1."""

from __future__ import annotations

from storecast.training.customers import MAX_RECENT_LEVEL, held_level


def test_a_cohort_ordering_less_than_expected_is_taken_at_its_word() -> None:
    assert held_level(0.62) == (0.62, "")
    assert held_level(MAX_RECENT_LEVEL) == (MAX_RECENT_LEVEL, "")


def test_a_cohort_ordering_more_than_expected_is_held_at_one() -> None:
    level, note = held_level(1.185)
    assert level == MAX_RECENT_LEVEL == 1.0
    assert note.startswith("; held at 1: ")
    assert "season" in note
