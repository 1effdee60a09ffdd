"""Time-based split of matured rows into train, validation and test windows (never random)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta


class SplitError(ValueError):
    """Too little history to hold out and still train."""


@dataclass(frozen=True)
class TimeSplit:
    """Time values of each window; ``sampling`` records what was left out to bound memory.

    ``gap`` holds the values between training and the held-out window, left out of
    training by the embargo only: a refit before the test window uses them. ``note``
    says when the embargo had to be shortened (and why), else it is empty.
    """

    train: list[date]
    validation: list[date]
    test: list[date]
    sampling: dict[str, object] = field(default_factory=dict)
    gap: list[date] = field(default_factory=list)
    note: str = ""


def split_times(
    counts: list[tuple[date, int]], holdout_periods: int, embargo_days: int, max_train_rows: int
) -> TimeSplit:
    """Split time values (oldest first, with their row counts).

    The latest ``holdout_periods`` values are held out: the earlier half validates
    (model selection, calibration, intervals), the later half tests (reported
    metrics, baseline and champion comparison). Training uses values at least
    ``embargo_days`` before the first held-out one, so no training label window
    reaches into the held-out period. When that leaves no training value (a label
    window as long as the matured history, e.g. 181 days ahead on a year of orders),
    the earlier half of the values before the held-out period train and the embargo is
    what remains, said in ``note``: overlapping label windows make held-out scores
    somewhat optimistic, which is better than no model. When training would exceed
    ``max_train_rows``, evenly spaced time values are kept and the rest recorded.
    """
    times = [t for t, _ in counts]
    if len(times) < holdout_periods + 1:
        raise SplitError(
            f"{len(times)} time values have matured labels; need more than holdout_periods={holdout_periods}"
        )
    held_out = times[-holdout_periods:]
    half = holdout_periods // 2
    validation, test = held_out[:half], held_out[half:]
    cutoff = held_out[0] - timedelta(days=embargo_days)
    note = ""
    if not any(t <= cutoff for t in times):
        # len(times) > holdout_periods, so at least one value precedes the held-out period.
        before = [t for t in times if t < held_out[0]]
        cutoff = before[max(len(before) // 2, 1) - 1]
        note = (
            f"every matured time value is within the {embargo_days}-day embargo of the held-out period "
            f"starting {held_out[0]}: the embargo was shortened to {(held_out[0] - cutoff).days} days "
            f"(training on the earlier half of the {len(before)} values before it), so training and "
            "held-out label windows overlap and held-out scores are somewhat optimistic"
        )
    train = [t for t in times if t < held_out[0] and t <= cutoff]
    gap = [t for t in times if cutoff < t < held_out[0]]
    rows = dict(counts)
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
    return TimeSplit(train=train, validation=validation, test=test, sampling=sampling, gap=gap, note=note)
