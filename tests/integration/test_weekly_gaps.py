"""The weekly benchmark's ``--gaps``: runs of unreported weeks cut from every series' sales,
on the tiny sample in a transaction rolled back after."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg

from benchmarks.weekly_demand import GAP_RUNS, WEEKS, _drop_runs
from storecast.database.sample import SampleData
from storecast.settings import Settings

LINES = (
    "select o.store_id, i.product_id, i.order_id, i.line_no, o.ordered_at::date "
    "from raw.order_items i join raw.orders o using (order_id)"
)


def test_each_series_loses_at_most_two_runs_of_its_weeks_all_before_the_cut(
    pg_settings: Settings, tiny: SampleData
) -> None:
    length, cut = 3, date(2026, 6, 1)
    with psycopg.connect(pg_settings.conninfo) as conn:
        before = set(conn.execute(LINES).fetchall())
        deleted_count = _drop_runs(conn, WEEKS, length, cut)
        after = set(conn.execute(LINES).fetchall())
        conn.rollback()
    deleted = before - after
    assert deleted_count == len(deleted) > 0
    assert all(day < cut for *_, day in deleted)
    series = {(store, product) for store, product, *_ in deleted}
    for store, product in series:
        days = sorted(day for s, p, *_, day in deleted if (s, p) == (store, product))
        # The deleted days fit in GAP_RUNS windows of `length` weeks, and the series kept no
        # line between the first and last deleted day of a window.
        windows: list[list[date]] = []
        for day in days:
            if windows and day < windows[-1][0] + timedelta(weeks=length):
                windows[-1].append(day)
            else:
                windows.append([day])
        assert len(windows) <= GAP_RUNS
        kept = [day for s, p, *_, day in after if (s, p) == (store, product)]
        for window in windows:
            assert not [day for day in kept if window[0] <= day <= window[-1]]
