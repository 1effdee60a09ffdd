"""Weekly data forecast by day is recognised from the training rows and the settings named."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from storecast.training.data import Frame
from storecast.training.grain import MIN_DATES, weekly_data_hint
from tests.unit.specs import spec_for


def _rows(first: date, days: int, sold_on: set[int] | None = None) -> Frame:
    """Daily rows from ``first`` for horizons 1-2; sales on the weekdays ``sold_on`` (all by default)."""
    as_of = [first + timedelta(days=d) for d in range(days) for _ in (1, 2)]
    horizon = np.array([h for _ in range(days) for h in (1, 2)])
    target = [a + timedelta(days=int(h) - 1) for a, h in zip(as_of, horizon, strict=True)]
    units = np.array([5.0 if sold_on is None or t.weekday() in sold_on else 0.0 for t in target])
    return Frame(
        keys=pd.DataFrame({"as_of_date": as_of}),
        features=pd.DataFrame({"horizon": horizon}),
        label=units,
        time=np.array(as_of, dtype="datetime64[D]"),
    )


def test_sales_on_one_weekday_only_suggest_the_weekly_grain() -> None:
    spec = spec_for("forecast", ["horizon"], ["ridge"])
    # Sales dated on Fridays only (2026-01-02 is a Friday), as when a week is dated by its end.
    hint = weekly_data_hint(spec, _rows(date(2026, 1, 1), 7 * MIN_DATES + 3, sold_on={4}))
    assert "every sale in the training window is dated on a friday" in hint
    assert "--var demand_grain=week" in hint
    assert "saturday if it ends it" in hint


def test_daily_sales_or_too_few_dates_say_nothing() -> None:
    spec = spec_for("forecast", ["horizon"], ["ridge"])
    assert weekly_data_hint(spec, _rows(date(2026, 1, 1), 60)) == ""
    # A shop closed on Sundays still sells on six days.
    assert weekly_data_hint(spec, _rows(date(2026, 1, 1), 60, sold_on={0, 1, 2, 3, 4, 5})) == ""
    # Fewer than MIN_DATES Fridays prove nothing.
    assert weekly_data_hint(spec, _rows(date(2026, 1, 1), 7 * (MIN_DATES - 2), sold_on={4})) == ""
    # At weekly grain the periods are weeks already.
    weekly = spec_for("forecast", ["horizon"], ["ridge"], period_days=7)
    assert weekly_data_hint(weekly, _rows(date(2026, 1, 1), 7 * MIN_DATES + 3, sold_on={4})) == ""
