"""The demand suite's registry, tables and README writing, on figures small enough to read."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks.demand_suite import (
    END_MARKER,
    RUNS,
    START_MARKER,
    Run,
    departments_table,
    main,
    run_all,
    shapes_table,
    tables,
    write_readme,
)
from benchmarks.weekly_demand import COLUMNS, SOURCES, WEEKS, Forecasts, Panel, _summary


def _method(
    wape: float, bias: float, lower_on: int | None = None, interval_score: float | None = None
) -> dict[str, Any]:
    method: dict[str, Any] = {
        "name": "x",
        "wape": wape,
        "mase": 1.0,
        "bias": bias,
        "interval_score": interval_score,
    }
    if lower_on is not None:
        method["against_storecast"] = {
            "lower_on": lower_on,
            "origins": 4,
            "difference": wape - 0.5,
            "spread": 0.01,
        }
    return method


def _summary_of(storecast: float, seasonal: float, gb_promotions: float | None = None) -> dict[str, Any]:
    methods = {
        "storecast": _method(storecast, -0.012, interval_score=2.06561),
        "seasonal_naive": _method(seasonal, 0.3, lower_on=4),
        "moving_average": _method(0.641, 0.183, lower_on=4),
        "gb_lags": _method(0.678, 0.295, lower_on=4),
    }
    if gb_promotions is not None:
        methods["gb_promotions"] = _method(gb_promotions, -0.005, lower_on=2)
    return {"methods": methods, "coverage_by_quartile": [0.81, 0.8, 0.824, 0.74]}


def test_every_run_names_a_data_shape_the_benchmark_has_and_a_file_of_its_own() -> None:
    for run in RUNS:
        assert run.args[0] == "--data", run
        assert run.args[1] in SOURCES, run
    assert len({run.name for run in RUNS}) == len({run.slug for run in RUNS}) == len(RUNS)
    assert {run.table for run in RUNS} == {"shapes", "departments"}


def test_the_shapes_table_bolds_the_lowest_wape_and_writes_minus_signs() -> None:
    lines = shapes_table({"panel": _summary_of(0.466, 0.973, 0.465), "real": _summary_of(0.060, 0.073)})
    panel = next(line for line in lines if line.startswith("| `panel` | 0.466"))
    # The peer's 0.465 is the lowest, so it is in bold and storecast's is not.
    assert "| 0.466, \N{MINUS SIGN}0.012 |" in panel
    assert "| **0.465**, \N{MINUS SIGN}0.005 |" in panel
    assert panel.endswith("| 0.81, 0.80, 0.82, 0.74 | 2.0656 |")
    real = next(line for line in lines if line.startswith("| `real` | "))
    # No promotions in the data: no peer given them, an empty cell.
    assert real.startswith("| `real` | **0.060**, \N{MINUS SIGN}0.012 | 0.073, +0.300 |")
    paired = [line for line in lines if line.startswith("| `panel` | 4 of 4")]
    assert paired == [
        "| `panel` | 4 of 4, +0.473 ± 0.010 | 4 of 4, +0.141 ± 0.010 | 4 of 4, +0.178 ± 0.010 | 2 of 4, \N{MINUS SIGN}0.035 ± 0.010 |"
    ]


def test_a_failed_run_is_a_row_that_says_so() -> None:
    lines = shapes_table({"dip": None})
    assert any(line.startswith("| `dip` | failed: see its log |") for line in lines)
    assert len(lines[0].split("|")) == len(lines[2].split("|"))


def test_the_departments_table_averages_each_method_over_the_departments() -> None:
    lines = departments_table(
        {"department 1": _summary_of(0.08, 0.05), "department 3": _summary_of(0.188, 0.25)}
    )
    assert lines[2] == "| 1 | 0.080 | **0.050** | 0.641 | 0.678 |  | 4 of 4 | 2.0656 |"
    assert lines[-1] == "| mean | 0.134 | 0.150 | 0.641 | 0.678 |  | | |"


def test_the_block_says_at_which_commit_it_ran() -> None:
    block = tables(
        {
            "real": {**_summary_of(0.06, 0.073), "commit": "abc1234"},
            "department 95": {**_summary_of(0.024, 0.033), "commit": "abc1234"},
        },
        date(2026, 12, 8),
        2,
    )
    assert block.startswith(
        "**Results.** Mean over the horizons forecast (weeks 1-4, months 1-3), one run of each at abc1234\n(2026-12-08, "
    )
    assert "| `real` |" in block
    assert "| 95 |" in block


def test_figures_reused_from_several_commits_say_so() -> None:
    block = tables(
        {
            "real": {**_summary_of(0.06, 0.073), "commit": "abc1234"},
            "panel": {**_summary_of(0.466, 0.973), "commit": "def5678"},
            "dip": None,
        },
        date(2026, 12, 8),
        1,
    )
    assert "one run of each at several commits (abc1234, def5678)\n(2026-12-08, " in block
    assert "1 run at a time" in block


def test_the_readme_is_written_between_its_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{START_MARKER}\nold table\n{END_MARKER}\nafter\n")
    write_readme(readme, "new table\n")
    assert readme.read_text() == f"before\n{START_MARKER}\nnew table\n{END_MARKER}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no '<!-- demand-suite:start -->' followed by"):
        write_readme(readme, "new table\n")
    assert readme.read_text() == "no markers\n"


def test_reused_figures_are_not_run_again(tmp_path: Path) -> None:
    run = Run("real", ("--data", "real"), 1.5)
    (tmp_path / "real.json").write_text(json.dumps(_summary_of(0.06, 0.073)))
    summaries = run_all([run], tmp_path, jobs=1, reuse=True, commit="abc1234")
    assert summaries["real"] == _summary_of(0.06, 0.073)
    assert not (tmp_path / "real.log").exists()


def test_an_unknown_run_is_refused_with_the_names_there_are(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--only", "real,pannel"])
    assert stopped.value.code == 2
    assert "--only: no run named 'pannel'; the runs: real, panel," in capsys.readouterr().err


def test_the_benchmark_figures_key_each_method_by_its_role() -> None:
    first = date(2026, 3, 2)
    weeks = [first + timedelta(weeks=k) for k in range(2)]
    units = pd.DataFrame({1: [10.0, 20.0]}, index=pd.Index(weeks))
    empty = units * 0.0
    panel = Panel(units, empty, empty, empty * np.nan, empty.astype(bool), WEEKS)
    ours = [[1, first, h, weeks[h - 1], 12.0, 8.0, 16.0] for h in (1, 2)]
    naive = [[1, first, h, weeks[h - 1], 10.0, np.nan, np.nan] for h in (1, 2)]
    summary = _summary(
        "test",
        {
            "storecast": ("storecast", Forecasts(pd.DataFrame(ours, columns=COLUMNS))),
            "seasonal_naive": ("seasonal naive", Forecasts(pd.DataFrame(naive, columns=COLUMNS))),
        },
        panel,
        [first],
    )
    methods: dict[str, Any] = summary["methods"]  # type: ignore[assignment]
    # storecast misses by 2 and 8 of 30 units; the naive forecast by 0 and 10.
    assert methods["storecast"]["wape"] == pytest.approx((2 / 10 + 8 / 20) / 2)
    assert methods["seasonal_naive"]["interval_score"] is None
    assert methods["seasonal_naive"]["against_storecast"]["lower_on"] == 0
    assert "against_storecast" not in methods["storecast"]
    assert summary["coverage_by_horizon"] == [1.0, 0.0]
    json.dumps(summary)  # JSON as it is: no NaN, no dates
