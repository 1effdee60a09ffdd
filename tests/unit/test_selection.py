"""Keeping a default candidate unless another beats it on validation beyond chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from storecast.training.selection import MIN_DATES, paired_gain
from tests.unit.specs import spec_for


def test_a_small_steady_gain_over_many_dates_is_beyond_chance() -> None:
    default = np.array([0.50, 0.52, 0.49, 0.51, 0.50, 0.53])
    gain = paired_gain(default, default - 0.01 + np.array([0.001, -0.001, 0.0, 0.001, -0.001, 0.0]), False)
    assert gain.mean == pytest.approx(0.01)
    assert gain.dates == 6
    assert gain.beyond_chance


def test_a_larger_mean_gain_that_swings_from_date_to_date_is_within_chance() -> None:
    default = np.full(6, 0.5)
    # The other wins by 0.1 on half the dates and loses by 0.06 on the rest: mean +0.02.
    other = default - np.array([0.1, -0.06, 0.1, -0.06, 0.1, -0.06])
    gain = paired_gain(default, other, False)
    assert gain.mean == pytest.approx(0.02)
    assert not gain.beyond_chance


def test_higher_is_better_metrics_gain_the_other_way() -> None:
    default = np.array([0.70, 0.72, 0.71, 0.69])
    assert paired_gain(default, default + 0.02, True).beyond_chance
    assert not paired_gain(default, default - 0.02, True).beyond_chance
    assert paired_gain(default, default - 0.02, False).beyond_chance


def test_too_few_dates_keep_the_default_whatever_the_gain() -> None:
    default = np.linspace(0.5, 0.6, MIN_DATES - 1)
    gain = paired_gain(default, default - 0.2, False)
    assert gain.mean == pytest.approx(0.2)
    assert not gain.beyond_chance
    one = paired_gain(np.array([0.5]), np.array([0.1]), False)
    assert math.isnan(one.standard_error)
    assert "over 1 date" in str(one)
    assert not one.beyond_chance


def test_dates_without_a_metric_are_left_out() -> None:
    gain = paired_gain(np.array([0.5, np.nan, 0.5, 0.5]), np.array([0.4, 0.4, 0.41, 0.39]), False)
    assert gain.dates == 3


def test_a_default_candidate_must_be_one_of_the_candidates() -> None:
    with pytest.raises(
        ValidationError, match="default_candidate 'hist_gradient_boosting_blend' must be one of"
    ):
        spec_for(
            "forecast",
            ["horizon", "level"],
            ["hist_gradient_boosting_log1p"],
            default_candidate="hist_gradient_boosting_blend",
        )
