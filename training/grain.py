"""What the data says about the demand grain: weekly data forecast by day."""

from __future__ import annotations

import numpy as np

from storecast.config import WEEKDAYS
from storecast.training.data import Frame
from storecast.training.spec import ModelSpec

#: Dates with sales, all on one weekday, before the data counts as weekly.
MIN_DATES = 8


def weekly_data_hint(spec: ModelSpec, frame: Frame) -> str:
    """At daily grain, a hint when every sale in ``frame`` (training rows, with their
    ``horizon``) is dated on one weekday on at least :data:`MIN_DATES` dates: weekly data
    forecast by day puts each week's sales on one day and zero on the six others. Names
    the settings to change; empty otherwise."""
    if spec.task != "forecast" or spec.period_days != 1 or frame.label is None or not len(frame):
        return ""
    horizon = frame.features["horizon"].to_numpy(dtype=np.int64)
    target = frame.time.astype("datetime64[D]").astype(np.int64) + horizon - 1
    dates = np.unique(target[np.asarray(frame.label) > 0])
    # Day 0 of the epoch, 1970-01-01, was a Thursday (index 3 from Monday).
    weekdays = np.unique((dates + 3) % 7)
    if len(dates) < MIN_DATES or len(weekdays) != 1:
        return ""
    day, after = WEEKDAYS[int(weekdays[0])], WEEKDAYS[(int(weekdays[0]) + 1) % 7]
    return (
        f"every sale in the training window is dated on a {day} ({len(dates)} dates): if the data is "
        f"weekly, set --var demand_grain=week and --var week_start to the first day of its weeks "
        f"({day} if each date starts its week, {after} if it ends it)"
    )
