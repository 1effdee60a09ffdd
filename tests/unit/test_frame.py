"""Frames of feature rows: concatenating a refit's windows keeps every labelled row in
order and leaves out an empty read (no label, default dtypes)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from storecast.training.data import Frame


def _frame(start: int, rows: int, labelled: bool = True) -> Frame:
    index = np.arange(start, start + rows)
    return Frame(
        keys=pd.DataFrame({"product_id": index}),
        features=pd.DataFrame({"units_lag_1": index.astype(float)}),
        label=(index * 10.0).astype(np.float64) if labelled else None,
        time=(np.datetime64("2026-01-05") + index.astype("timedelta64[D]")).astype("datetime64[D]"),
    )


def test_windows_concatenate_in_order_and_an_empty_read_is_left_out() -> None:
    # What a read of no dates gives: the columns, of no rows and no type, and no label.
    empty = Frame(
        keys=pd.DataFrame({"product_id": pd.Series([], dtype=object)}),
        features=pd.DataFrame({"units_lag_1": pd.Series([], dtype=object)}),
        label=None,
        time=np.array([], "datetime64[D]"),
    )
    joined = Frame.concat([_frame(0, 3), empty, _frame(3, 2)])
    assert len(joined) == 5
    assert joined.keys["product_id"].tolist() == [0, 1, 2, 3, 4]
    assert joined.keys["product_id"].dtype == np.int64
    assert joined.features["units_lag_1"].dtype == np.float64
    assert joined.label is not None
    assert joined.label.tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert joined.time.tolist() == list((np.datetime64("2026-01-05") + np.arange(5)).astype("datetime64[D]"))


def test_rows_at_some_dates_are_picked_by_date() -> None:
    frame = _frame(0, 5)
    picked = frame.subset(frame.at([date(2026, 1, 6), date(2026, 1, 8), date(2027, 1, 1)]))
    assert picked.keys["product_id"].tolist() == [1, 3]
    assert frame.at([]).tolist() == [False] * 5
