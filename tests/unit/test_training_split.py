"""Time-based splits: held-out windows after training, with an embargo, never overlapping."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from storecast.training.split import MAX_VALIDATION_FOLDS, SplitError, split_times, validation_folds

WEEKS = [(date(2025, 1, 6) + timedelta(weeks=i), 100) for i in range(60)]


def test_windows_are_ordered_and_disjoint() -> None:
    split = split_times(WEEKS, holdout_periods=8, embargo_days=30, max_train_rows=10**9)
    assert max(split.train) < min(split.validation) <= max(split.validation) < min(split.test)
    assert len(split.validation) == 4
    assert len(split.test) == 4
    assert not set(split.train) & set(split.validation) | set(split.train) & set(split.test)


def test_training_labels_end_before_the_held_out_period() -> None:
    split = split_times(WEEKS, holdout_periods=8, embargo_days=90, max_train_rows=10**9)
    assert max(split.train) + timedelta(days=90) <= min(split.validation)
    assert split.train[-1] == date(2025, 1, 6) + timedelta(weeks=39)
    # What the embargo left out sits between the windows, for a refit before the test window.
    assert split.gap == [date(2025, 1, 6) + timedelta(weeks=w) for w in range(40, 52)]
    assert sorted([*split.train, *split.gap, *split.validation, *split.test]) == [t for t, _ in WEEKS]


def test_large_training_windows_are_thinned_and_the_sampling_recorded() -> None:
    split = split_times(WEEKS, holdout_periods=8, embargo_days=0, max_train_rows=1_000)
    assert sum(100 for _ in split.train) <= 1_000
    assert split.train[-1] == WEEKS[51][0]  # the most recent training week is always kept
    assert WEEKS[52][0] in split.validation  # and never a held-out one, even without an embargo
    assert split.gap == []  # weeks thinned out by sampling are not a gap
    assert split.sampling["time_values_available"] == 52
    assert split.sampling["rows_kept"] == 100 * len(split.train)


def test_too_little_history_is_a_clear_error() -> None:
    with pytest.raises(SplitError, match="2 time values have matured labels; need at least 3"):
        split_times(WEEKS[:2], holdout_periods=8, embargo_days=0, max_train_rows=10)
    with pytest.raises(SplitError, match="1 time value has matured labels; need at least 3"):
        split_times(WEEKS[:1], holdout_periods=8, embargo_days=0, max_train_rows=10)


def test_a_short_history_holds_out_half_of_it_and_says_so() -> None:
    # Five values cannot hold eight out: the latest two are held out, one validates, one tests.
    split = split_times(WEEKS[:5], holdout_periods=8, embargo_days=0, max_train_rows=10**9)
    assert split.train == [t for t, _ in WEEKS[:3]]
    assert split.validation == [WEEKS[3][0]]
    assert split.test == [WEEKS[4][0]]
    assert (
        "only 5 time values have matured labels: 2 were held out instead of holdout_periods=8" in split.note
    )
    # Seven values hold out three; an embargo too long for them is shortened as well, and both are said.
    both = split_times(WEEKS[:7], holdout_periods=8, embargo_days=365, max_train_rows=10**9)
    assert both.validation == [WEEKS[4][0]]
    assert both.test == [WEEKS[5][0], WEEKS[6][0]]
    assert both.train == [WEEKS[0][0], WEEKS[1][0]]
    assert "3 were held out" in both.note
    assert "shortened to 21 days" in both.note


def test_an_embargo_longer_than_the_history_is_shortened_and_said() -> None:
    # 12 weekly values, 8 held out: a 365-day embargo would leave nothing to train on.
    split = split_times(WEEKS[:12], holdout_periods=8, embargo_days=365, max_train_rows=10**9)
    assert split.train == [WEEKS[0][0], WEEKS[1][0]]  # the earlier half of the four before
    assert split.gap == [WEEKS[2][0], WEEKS[3][0]]
    assert split.validation[0] == WEEKS[4][0]
    assert "shortened to 21 days" in split.note
    assert "somewhat optimistic" in split.note
    # One value before the held-out period still trains.
    single = split_times(WEEKS[:9], holdout_periods=8, embargo_days=365, max_train_rows=10**9)
    assert single.train == [WEEKS[0][0]]
    assert single.gap == []
    assert "shortened to 7 days" in single.note
    # An embargo the history allows is kept, and nothing is said.
    assert split_times(WEEKS, holdout_periods=8, embargo_days=90, max_train_rows=10**9).note == ""


def test_a_small_panels_validation_window_grows_to_hold_enough_rows() -> None:
    # 100 rows a week: 4 validation weeks hold 400; 700 need 7, and the test window keeps its 4.
    split = split_times(
        WEEKS, holdout_periods=8, embargo_days=0, max_train_rows=10**9, min_validation_rows=700
    )
    assert split.validation == [t for t, _ in WEEKS[49:56]]
    assert split.test == [t for t, _ in WEEKS[56:]]
    assert split.train == [t for t, _ in WEEKS[:49]]
    # Never more than a quarter of the 56 weeks before the test window: training keeps the rest.
    capped = split_times(
        WEEKS, holdout_periods=8, embargo_days=0, max_train_rows=10**9, min_validation_rows=10**6
    )
    assert len(capped.validation) == 14
    assert capped.test == split.test
    # Enough rows already: the window is holdout_periods' half, as without the minimum.
    assert split_times(WEEKS, 8, 0, 10**9, min_validation_rows=400).validation == [t for t, _ in WEEKS[52:56]]


def test_the_validation_window_holds_the_origins_asked_for_within_its_share() -> None:
    # Rows enough in two weeks, but eleven origins asked for: eleven validate, the test keeps its 4.
    split = split_times(WEEKS, 8, 0, 10**9, min_validation_rows=200, min_validation_values=11)
    assert split.validation == [t for t, _ in WEEKS[45:56]]
    assert split.test == [t for t, _ in WEEKS[56:]]
    assert split.train == [t for t, _ in WEEKS[:45]]
    # Never more than a quarter of the 56 weeks before the test window.
    assert len(split_times(WEEKS, 8, 0, 10**9, min_validation_values=40).validation) == 14
    # Fewer asked for than holdout_periods' half: the half.
    assert len(split_times(WEEKS, 8, 0, 10**9, min_validation_values=2).validation) == 4
    # Candidates are compared on the window as long as it would be without the origins asked
    # for: its latest 4 weeks here, the whole window where nothing was asked.
    assert split.choosing == [t for t, _ in WEEKS[52:56]]
    grown = split_times(WEEKS, 8, 0, 10**9, min_validation_rows=700)
    assert grown.choosing == grown.validation


def test_validation_folds_are_consecutive_and_each_at_least_a_horizon_long() -> None:
    eleven = [t for t, _ in WEEKS[:11]]
    folds = validation_folds(eleven, horizon_periods=4)
    assert [len(fold) for fold in folds] == [6, 5]
    assert [t for fold in folds for t in fold] == eleven
    # A window shorter than two horizons is one fold: a model fitted a horizon before
    # a short second fold would be hardly fresher than the first one's.
    assert validation_folds(eleven[:7], horizon_periods=4) == [eleven[:7]]
    assert validation_folds(eleven[:1], horizon_periods=0) == [eleven[:1]]
    long = [t for t, _ in WEEKS[:40]]
    assert len(validation_folds(long, horizon_periods=4)) == MAX_VALIDATION_FOLDS
