"""Weekly data forecast by day, and monthly data forecast by day or week, are recognised from
the training rows."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from storecast.training.data import Frame
from storecast.training.grain import MIN_DATES, LastPeriod, grain_hint, partial_period_hint
from tests.unit.specs import spec_for


def _rows(
    first: date, days: int, sold_on: set[int] | None = None, period: int = 1, monthly: bool = False
) -> Frame:
    """Rows from ``first`` for horizons 1-2, one per ``period`` days; sales on the weekdays
    ``sold_on`` (all by default), or with ``monthly`` only in the period holding a month's 1st."""
    as_of = [first + timedelta(days=d) for d in range(0, days, period) for _ in (1, 2)]
    horizon = np.array([h for _ in range(0, days, period) for h in (1, 2)])
    target = [a + timedelta(days=(int(h) - 1) * period) for a, h in zip(as_of, horizon, strict=True)]

    def sells(t: date) -> bool:
        if monthly:
            return any((t + timedelta(days=k)).day == 1 for k in range(period))
        return sold_on is None or t.weekday() in sold_on

    units = np.array([5.0 if sells(t) else 0.0 for t in target])
    return Frame(
        keys=pd.DataFrame({"as_of_date": as_of}),
        features=pd.DataFrame({"horizon": horizon}),
        label=units,
        time=np.array(as_of, dtype="datetime64[D]"),
    )


def test_sales_on_one_weekday_only_suggest_the_weekly_grain() -> None:
    spec = spec_for("forecast", ["horizon"], ["ridge"])
    # Sales dated on Fridays only (2026-01-02 is a Friday), as when a week is dated by its end.
    hint = grain_hint(spec, _rows(date(2026, 1, 1), 7 * MIN_DATES + 3, sold_on={4}))
    assert "every sale in the training window is dated on a friday" in hint
    assert "--var demand_grain=week" in hint
    assert "saturday if it ends it" in hint


def test_daily_sales_or_too_few_dates_say_nothing() -> None:
    spec = spec_for("forecast", ["horizon"], ["ridge"])
    assert grain_hint(spec, _rows(date(2026, 1, 1), 60)) == ""
    # A shop closed on Sundays still sells on six days.
    assert grain_hint(spec, _rows(date(2026, 1, 1), 60, sold_on={0, 1, 2, 3, 4, 5})) == ""
    # Fewer than MIN_DATES Fridays prove nothing.
    assert grain_hint(spec, _rows(date(2026, 1, 1), 7 * (MIN_DATES - 2), sold_on={4})) == ""
    # At weekly grain the periods are weeks already.
    weekly = spec_for("forecast", ["horizon"], ["ridge"], period_days=7)
    assert grain_hint(weekly, _rows(date(2026, 1, 1), 7 * MIN_DATES + 3, sold_on={4})) == ""


def test_sales_once_a_month_name_the_monthly_grain() -> None:
    daily = spec_for("forecast", ["horizon"], ["ridge"])
    hint = grain_hint(daily, _rows(date(2025, 1, 1), 365, monthly=True))
    assert "sales in one day a month only (13 days, 2025-01-01..2026-01-01)" in hint
    assert "set --var demand_grain=month" in hint
    weekly = spec_for("forecast", ["horizon"], ["ridge"], period_days=7)
    # Weeks from Monday 2024-12-30: the week holding each month's 1st, 4 or 5 weeks apart.
    hint = grain_hint(weekly, _rows(date(2024, 12, 30), 364, period=7, monthly=True))
    assert "sales in one week a month only (13 weeks, 2024-12-30..2025-12-29)" in hint
    # Weekly sales at weekly grain, and too few months, say nothing.
    assert grain_hint(weekly, _rows(date(2024, 12, 30), 364, period=7)) == ""
    assert grain_hint(daily, _rows(date(2025, 1, 1), 31 * (MIN_DATES - 2), monthly=True)) == ""
    # At month grain a month apart is every period.
    monthly = spec_for("forecast", ["horizon"], ["ridge"], period_days=31, period="1 month")
    assert grain_hint(monthly, _rows(date(2025, 1, 1), 365, monthly=True)) == ""


def test_a_last_month_of_transactions_cut_short_is_named_with_the_date_to_score_as_of() -> None:
    monthly = spec_for("forecast", ["horizon"], ["ridge"], period_days=31, period="1 month")
    cut = LastPeriod(date(2026, 11, 1), date(2026, 11, 22), 22, date(2026, 12, 1))
    hint = partial_period_hint(monthly, date(2026, 12, 1), cut)
    assert (
        "the last loaded month (2026-11-01..2026-11-30) has orders up to 2026-11-22 only, on 22 days" in hint
    )
    assert "(--as-of 2026-11-01)" in hint
    weekly = spec_for("forecast", ["horizon"], ["ridge"], period_days=7)
    week = LastPeriod(date(2026, 11, 16), date(2026, 11, 20), 5, date(2026, 11, 23))
    assert "the last loaded week (2026-11-16..2026-11-22)" in partial_period_hint(
        weekly, date(2026, 11, 23), week
    )
    # Trained as of the month's start, its units are neither a label nor a lag.
    assert partial_period_hint(monthly, date(2026, 11, 1), cut) == ""
    # An extract dated once a month, a month sold to its last day, and day grain say nothing.
    assert (
        partial_period_hint(
            monthly, date(2026, 12, 1), LastPeriod(cut.start, cut.start, 1, cut.observed_until)
        )
        == ""
    )
    full = LastPeriod(cut.start, date(2026, 11, 30), 30, cut.observed_until)
    assert partial_period_hint(monthly, date(2026, 12, 1), full) == ""
    daily = spec_for("forecast", ["horizon"], ["ridge"])
    assert partial_period_hint(daily, date(2026, 12, 1), cut) == ""
