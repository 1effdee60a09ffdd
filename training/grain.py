"""What the data says about the demand grain: weekly data forecast by day, monthly data
forecast by day or week, a last week or month cut short. Each hint names the settings
that fit the data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from storecast.config import PERIOD_DAYS, WEEKDAYS
from storecast.training.data import Frame
from storecast.training.spec import ModelSpec

#: Dates with sales, all on one weekday (or a month apart), before the data counts as
#: weekly (or monthly).
MIN_DATES = 8
#: Days between consecutive dates with sales when the data is monthly: from February's 28
#: to the 35 between the week holding one month's date and the next's.
MONTH_GAP_DAYS = (28, 35)


def _sale_dates(frame: Frame, period_days: int) -> npt.NDArray[np.int64]:
    """The distinct target periods with a sale, as days since the epoch."""
    horizon = frame.features["horizon"].to_numpy(dtype=np.int64)
    target = frame.time.astype("datetime64[D]").astype(np.int64) + (horizon - 1) * period_days
    return np.unique(target[np.asarray(frame.label) > 0])


def grain_hint(spec: ModelSpec, frame: Frame) -> str:
    """A hint when the sales in ``frame`` (training rows, with their ``horizon``) look
    coarser than the grain they are forecast at (:func:`weekly_data_hint`,
    :func:`monthly_data_hint`); empty otherwise."""
    if spec.task != "forecast" or frame.label is None or not len(frame):
        return ""
    dates = _sale_dates(frame, spec.period_days)
    return monthly_data_hint(spec, dates) or weekly_data_hint(spec, dates)


def _grain(spec: ModelSpec) -> str:
    """The grain a spec forecasts at (day, week, month), named from its days per period."""
    return next((grain for grain, days in PERIOD_DAYS.items() if days == spec.period_days), "period")


def monthly_data_hint(spec: ModelSpec, dates: npt.NDArray[np.int64]) -> str:
    """At day or week grain, a hint when the periods with a sale (``dates``, days since the
    epoch) are a month apart on at least :data:`MIN_DATES` of them: monthly data forecast
    by day or week puts each month's sales on one period and nothing on the others."""
    gaps = np.diff(dates)
    low, high = MONTH_GAP_DAYS
    period = _grain(spec)
    if period == "month" or len(dates) < MIN_DATES or not ((gaps >= low) & (gaps <= high)).all():
        return ""
    first, last = (str(np.datetime64(int(d), "D")) for d in (dates[0], dates[-1]))
    return (
        f"the training window has sales in one {period} a month only ({len(dates)} {period}s, "
        f"{first}..{last}): if the data is monthly, set --var demand_grain=month (periods are then "
        f"calendar months); as it is, each month's units stand in one {period} and none in the others"
    )


def weekly_data_hint(spec: ModelSpec, dates: npt.NDArray[np.int64]) -> str:
    """At daily grain, a hint when every day with a sale (``dates``, days since the epoch)
    is on one weekday, on at least :data:`MIN_DATES` dates: weekly data forecast by day
    puts each week's sales on one day and zero on the six others. Names the settings to
    change; empty otherwise."""
    if spec.period_days != 1:
        return ""
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


@dataclass(frozen=True)
class LastPeriod:
    """The last loaded demand period (``features.as_of_dates``): its first day, the latest
    order, the days with orders in it, and the first day counted as not yet observed."""

    start: date
    last_order: date
    order_days: int
    observed_until: date


def partial_period_hint(spec: ModelSpec, as_of: date, last: LastPeriod) -> str:
    """At week or month grain, a hint when the last loaded period looks cut short: it counts
    as observed (an order stands for its period), but its orders fall on several days
    (transactions, not an extract dated once a period) and stop before its last day. Its
    units, too few, are then a label of a training run as of its end or later, and the
    latest lag of a forecast from there. Empty otherwise."""
    end = last.observed_until - timedelta(days=1)
    period = _grain(spec)
    if spec.task != "forecast" or period == "day" or last.order_days <= 1 or last.last_order >= end:
        return ""
    if as_of < last.observed_until:
        return ""
    return (
        f"the last loaded {period} ({last.start}..{end}) has orders up to {last.last_order} only, on "
        f"{last.order_days} days, and counts as observed: if it is not complete, its units are too few as a "
        f"label and as the latest lag; train and score as of {last.start} (--as-of {last.start})"
    )
