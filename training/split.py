"""Time-based split of matured rows into train, validation and test windows (never random)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

#: Held-out time values when history is short: one validates, one tests.
MIN_HELD_OUT = 2
#: A validation window grown to hold ``min_validation_rows`` stops at this share of the
#: time values before the test window, so that training keeps most of the history.
MAX_VALIDATION_SHARE = 0.25
#: A forecast's validation window is forecast in at most this many consecutive folds, each
#: by a model fitted up to the fold's start (less the embargo): see :func:`validation_folds`.
MAX_VALIDATION_FOLDS = 2


class SplitError(ValueError):
    """Too little history to hold out and still train."""


@dataclass(frozen=True)
class TimeSplit:
    """Time values of each window; ``sampling`` records what was left out to bound memory.

    ``gap`` holds the values between training and the held-out window, left out of
    training by the embargo only: a refit before the test window uses them. ``choosing``
    holds the latest validation values, those candidates are compared on: the window
    as long as it would be without ``min_validation_values`` (a forecast's intervals want
    more origins than the choice of a candidate does, and the earlier ones are forecast
    by a model further from its last training week than the one that will forecast).
    ``note``
    says when the held-out period or the embargo had to be shortened (and why), else
    it is empty.
    """

    train: list[date]
    validation: list[date]
    test: list[date]
    sampling: dict[str, object] = field(default_factory=dict)
    gap: list[date] = field(default_factory=list)
    note: str = ""
    choosing: list[date] = field(default_factory=list)


def split_times(
    counts: list[tuple[date, int]],
    holdout_periods: int,
    embargo_days: int,
    max_train_rows: int,
    min_validation_rows: int = 0,
    min_validation_values: int = 0,
) -> TimeSplit:
    """Split time values (oldest first, with their row counts).

    The latest ``holdout_periods`` values are held out: the earlier half validates
    (model selection, calibration, intervals), the later half tests (reported
    metrics, baseline and champion comparison). With too few values for that, the
    latest half are held out (two at least), said in ``note``. Training uses values
    at least ``embargo_days`` before the first held-out one, so no training label window
    reaches into the held-out period. When that leaves no training value (a label
    window as long as the matured history, e.g. 181 days ahead on a year of orders),
    the earlier half of the values before the held-out period train and the embargo is
    what remains, said in ``note``: overlapping label windows make held-out scores
    somewhat optimistic, which is better than no model. When training would exceed
    ``max_train_rows``, evenly spaced time values are kept and the rest recorded.

    When the validation values hold fewer than ``min_validation_rows`` rows (a small
    panel: 7 series x 2 weeks), earlier values join the validation window until they
    do, up to :data:`MAX_VALIDATION_SHARE` of the values before the test window; the
    test window keeps its length. It also holds at least ``min_validation_values`` time
    values, within the same share (a large panel's two validation weeks hold rows enough,
    but only two draws of what every series shares in a week).
    """
    times = [t for t, _ in counts]
    if len(times) < MIN_HELD_OUT + 1:
        raise SplitError(
            f"{len(times)} time value{' has' if len(times) == 1 else 's have'} matured labels; "
            f"need at least {MIN_HELD_OUT + 1} "
            "(one to train, one to validate, one to test)"
        )
    notes: list[str] = []
    held = holdout_periods
    if len(times) < holdout_periods + 1:
        # Hold out half of what there is rather than refuse: a short history still
        # gets a model, and fewer held-out dates make its scores noisier, which is said.
        held = max(len(times) // 2, MIN_HELD_OUT)
        notes.append(
            f"only {len(times)} time values have matured labels: {held} were held out instead of "
            f"holdout_periods={holdout_periods}, so held-out scores rest on fewer dates"
        )
    rows = dict(counts)
    tested = held - held // 2
    before_test = [rows[t] for t in times[:-tested]]
    validating = _validation_length(before_test, held // 2, min_validation_values, min_validation_rows)
    choosing = _validation_length(before_test, held // 2, 0, min_validation_rows)
    held_out = times[-(validating + tested) :]
    validation, test = held_out[:validating], held_out[validating:]
    cutoff = held_out[0] - timedelta(days=embargo_days)
    if not any(t <= cutoff for t in times):
        # len(times) > held, so at least one value precedes the held-out period.
        before = [t for t in times if t < held_out[0]]
        cutoff = before[max(len(before) // 2, 1) - 1]
        notes.append(
            f"every matured time value is within the {embargo_days}-day embargo of the held-out period "
            f"starting {held_out[0]}: the embargo was shortened to {(held_out[0] - cutoff).days} days "
            f"(training on the earlier half of the {len(before)} values before it), so training and "
            "held-out label windows overlap and held-out scores are somewhat optimistic"
        )
    note = "; ".join(notes)
    train = [t for t in times if t < held_out[0] and t <= cutoff]
    gap = [t for t in times if cutoff < t < held_out[0]]
    total = sum(rows[t] for t in train)
    sampling: dict[str, object] = {}
    if total > max_train_rows:
        keep_every = -(-total // max_train_rows)  # ceil
        kept = train[::-1][::keep_every][::-1]
        sampling = {
            "reason": f"{total} training rows exceed max_train_rows={max_train_rows}",
            "kept_every_nth_time_value": keep_every,
            "time_values_kept": len(kept),
            "time_values_available": len(train),
            "rows_kept": sum(rows[t] for t in kept),
        }
        train = kept
    return TimeSplit(
        train=train,
        validation=validation,
        test=test,
        sampling=sampling,
        gap=gap,
        note=note,
        choosing=validation[-choosing:],
    )


def _validation_length(rows_before_test: list[int], least: int, min_values: int, min_rows: int) -> int:
    """How many of the latest values before the test window validate: ``least``, or more
    until they are ``min_values`` and hold ``min_rows`` rows, or reach
    :data:`MAX_VALIDATION_SHARE` of them."""
    most = max(int(len(rows_before_test) * MAX_VALIDATION_SHARE), least)
    length = max(least, min(min_values, most))
    while length < most and sum(rows_before_test[-length:]) < min_rows:
        length += 1
    return length


def validation_folds(validation: list[date], horizon_periods: int) -> list[list[date]]:
    """The validation time values in consecutive folds (oldest first), each to be forecast
    by a model fitted on the values up to its start less the embargo.

    One model fitted before the whole window forecasts its latest values from further
    back than the refit model will forecast from: on a long window (a forecast's, grown for
    its intervals) its misses there come out larger, and so do the intervals. Each fold
    holds one horizon's values at least (a model is a horizon older than its fold's first
    value whatever the fold's length, so shorter folds buy little), up to
    :data:`MAX_VALIDATION_FOLDS` of them, the earlier folds the longer.
    """
    count = max(1, min(MAX_VALIDATION_FOLDS, len(validation) // max(horizon_periods, 1)))
    size, longer = divmod(len(validation), count)
    folds, start = [], 0
    for fold in range(count):
        end = start + size + (fold < longer)
        folds.append(validation[start:end])
        start = end
    return folds
