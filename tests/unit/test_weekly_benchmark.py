"""The weekly benchmark's own arithmetic and options, on panels small enough to check by hand."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.promotion_panel import FIRST_WEEK
from benchmarks.weekly_demand import (
    COLUMNS,
    SOURCES,
    WEEKS,
    Forecasts,
    Panel,
    _errors_in,
    _gbm_rows,
    _interval_score,
    _joined,
    _paired_interval_scores,
    _save,
    _saved,
    _true_means,
    main,
)


def _panel(units: dict[int, list[float]], first: date, events: dict[date, str] | None = None) -> Panel:
    weeks = [first + timedelta(weeks=k) for k in range(len(next(iter(units.values()))))]
    frame = pd.DataFrame(units, index=pd.Index(weeks))
    empty = frame * 0.0
    return Panel(frame, empty, empty, empty * np.nan, empty.astype(bool), WEEKS, pd.Series(events or {}))


def test_errors_in_the_named_periods_only() -> None:
    first = date(2026, 3, 2)
    panel = _panel({1: [10.0, 20.0, 30.0], 2: [0.0, 10.0, 5.0]}, first)
    festival = first + timedelta(weeks=1)
    rows = [
        [series, first, h, first + timedelta(weeks=h - 1), forecast, np.nan, np.nan]
        for series, forecasts in ((1, [99.0, 26.0, 0.0]), (2, [99.0, 4.0, 0.0]))
        for h, forecast in enumerate(forecasts, start=1)
    ]
    forecasts = Forecasts(pd.DataFrame(rows, columns=COLUMNS))
    wape, bias, n = _errors_in(_joined(forecasts, panel), {festival})
    # Series 1 over by 6, series 2 under by 6, of 30 units sold that week.
    assert (wape, bias, n) == pytest.approx((12 / 30, 0.0, 2))


def test_the_interval_score_adds_ten_times_each_miss_to_the_width() -> None:
    first = date(2026, 3, 2)
    panel = _panel({1: [10.0], 2: [30.0]}, first)
    # Series 1 inside [8, 12]: its width, 4. Series 2 above [25, 28] by 2: 3 + 10 x 2.
    rows = [[1, first, 1, first, 10.0, 8.0, 12.0], [2, first, 1, first, 26.0, 25.0, 28.0]]
    score = _interval_score(Forecasts(pd.DataFrame(rows, columns=COLUMNS)), panel)
    assert score == pytest.approx((4 + 3 + 10 * 2) / 40)


def test_interval_scores_are_compared_origin_by_origin() -> None:
    first = date(2026, 3, 2)
    second = first + timedelta(weeks=1)
    panel = _panel({1: [10.0, 10.0]}, first)
    # Both cover each week; storecast's intervals are 2 narrower the first week, 1 wider the second.
    ours = [[1, first, 1, first, 10.0, 9.0, 11.0], [1, second, 1, second, 10.0, 7.0, 13.0]]
    theirs = [[1, first, 1, first, 10.0, 8.0, 12.0], [1, second, 1, second, 10.0, 7.5, 12.5]]
    line = _paired_interval_scores(
        Forecasts(pd.DataFrame(ours, columns=COLUMNS)),
        Forecasts(pd.DataFrame(theirs, columns=COLUMNS)),
        panel,
    )
    # Per origin, over 10 units: (4 - 2) / 10 = +0.2 and (5 - 6) / 10 = -0.1.
    assert line.startswith("lower interval score on 1 of 2 origins, theirs minus storecast +0.0500 ± ")


def test_a_calendar_is_refused_for_data_without_events(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--data", "panel", "--calendar"])
    assert stopped.value.code == 2
    with_events = [name for name, source in SOURCES.items() if source.with_calendar is not None]
    assert {"real", "monthly", "festival"} <= set(with_events)
    assert f"--data panel has no events of its own; those with them: {', '.join(with_events)}" in (
        capsys.readouterr().err
    )


def test_a_gap_of_no_period_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--data", "real", "--gaps", "0"])
    assert stopped.value.code == 2
    assert "--gaps 0: a run is one period or more" in capsys.readouterr().err


def test_a_horizon_of_no_period_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--data", "real", "--horizon", "0"])
    assert stopped.value.code == 2
    assert "--horizon 0: a forecast looks one period ahead or more" in capsys.readouterr().err


def test_the_panels_true_means_look_as_far_ahead_as_the_horizon() -> None:
    origin = FIRST_WEEK + timedelta(weeks=60)
    frame = _true_means([origin], horizons=6).frame
    assert sorted(frame["horizon"].unique()) == [1, 2, 3, 4, 5, 6]
    assert frame.loc[frame["horizon"] == 6, "target"].unique().tolist() == [origin + timedelta(weeks=5)]


def test_the_gb_baseline_reads_the_events_of_the_target_week_and_the_week_after() -> None:
    first = date(2026, 1, 5)
    week = [first + timedelta(weeks=k) for k in range(8)]
    panel = _panel({1: [float(k) for k in range(8)]}, first, {week[5]: "festival", week[6]: "christmas"})
    rows = _gbm_rows(panel, week[4])
    codes = {
        target: tuple(None if np.isnan(c) else int(c) for c in pair)
        for target, *pair in zip(rows["target"], rows["event"], rows["next_event"], strict=True)
    }
    # Codes by name in alphabetical order (christmas 0, festival 1), None without an event.
    assert codes == {week[4]: (None, 1), week[5]: (1, 0), week[6]: (0, None), week[7]: (None, None)}


def test_a_saved_run_reads_back_as_the_forecasts_it_was(tmp_path: Path) -> None:
    first = date(2026, 3, 2)
    origins = [first, first + timedelta(weeks=1)]
    rows = [
        [series, origin, h, origin + timedelta(weeks=h - 1), 10.0 * series + h, 1.5, 30.25]
        for series in (1, 2)
        for origin in origins
        for h in (1, 2)
    ]
    forecasts = Forecasts(pd.DataFrame(rows, columns=COLUMNS))
    path = tmp_path / "run.csv"
    _save(forecasts, path)
    pd.testing.assert_frame_equal(_saved(path, origins).frame, forecasts.frame)
    # Read for fewer origins, it keeps theirs only.
    assert set(_saved(path, origins[1:]).frame["origin"]) == {origins[1]}
    # A run that did not forecast an origin asked for is named with what to do.
    later = first + timedelta(weeks=2)
    with pytest.raises(
        SystemExit, match=r"run\.csv: no forecasts from origin 2026-03-16: save it from a run"
    ):
        _saved(path, [*origins, later])
    with pytest.raises(SystemExit, match=r"no such file \(write one with --save\)"):
        _saved(tmp_path / "none.csv", origins)
    other = tmp_path / "other.csv"
    other.write_text("series,origin\n1,2026-03-02\n")
    with pytest.raises(SystemExit, match=r"not a file --save wrote \(no column horizon, target"):
        _saved(other, origins)


def test_products_size_a_simulated_panel_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--data", "real", "--products", "1"])
    assert stopped.value.code == 2
    assert "--products sizes a simulated panel: use it with --data panel" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["--data", "panel", "--products", "0"])
    assert stopped.value.code == 2
    assert "--products 0: a chain sells one product or more" in capsys.readouterr().err
