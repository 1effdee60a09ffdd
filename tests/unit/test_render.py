"""What the CLI prints quotes the user's data as it is: no markup, no emoji codes."""

from __future__ import annotations

import pytest

from storecast.database.load_ledger import LoadResult
from storecast.render import interval_lines, print_error, print_load_result, untested_horizons

#: Values a file may hold that a console reading markup or emoji codes would eat or fail on.
AS_WRITTEN = ("[/b]", "[bold]SKU[/bold]", "[product_id, store_id]", ":thumbs_up:")


@pytest.mark.parametrize("value", AS_WRITTEN)
def test_a_rejected_value_prints_as_the_file_wrote_it(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    reason = f"quantity: expected integer, got '{value}'"
    result = LoadResult(
        load_id=7,
        table=f"raw.order_items{value}",
        source_file="items.csv",
        mode="append",
        rows_in=1,
        rows_rejected=1,
        status="rejected",
        first_rejects=[(2, reason)],
    )
    print_load_result(result)
    printed = capsys.readouterr().out
    assert f"line 2: {reason}" in printed
    assert f"rejected: 0 of 1 rows into raw.order_items{value}," in printed


@pytest.mark.parametrize("value", AS_WRITTEN)
def test_an_error_prints_its_message_as_it_is(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    print_error(f"setting coded_keys: expected a list of names, e.g. {value}")
    assert f"error: setting coded_keys: expected a list of names, e.g. {value}" in capsys.readouterr().err


def test_series_spreads_are_summarised_not_listed_and_the_folds_said() -> None:
    spreads = {f"{p}|1": 1.0 for p in range(5000)} | {"1|2": 0.5, "2|2": 2.25}
    lines = interval_lines({"scale_power": 0.5, "quantiles": {}, "series_spread": spreads})
    assert len(lines) == 2
    assert '"scale_power": 0.5' in lines[0]
    assert "series_spread" not in lines[0]
    assert lines[1] == (
        "series spread (width relative to the level's): 5,002 series, from 0.50 to 2.25, median 1.00"
    )
    assert interval_lines({"scale_power": 0.0, "quantiles": {}, "series_spread": {}})[1:] == []
    one_fold = interval_lines({"scale_power": 0.0, "quantiles": {}, "validation_folds": ["2026-08-24"]})
    assert one_fold[1:] == []
    assert "validation_folds" not in one_fold[0]
    folds = interval_lines(
        {"scale_power": 0.0, "quantiles": {}, "validation_folds": ["2026-08-24", "2026-10-05"]}
    )
    assert folds[1].startswith("residuals from 2 validation folds, from 2026-08-24, 2026-10-05: ")
    widening = interval_lines({"scale_power": 0.0, "quantiles": {}, "width_slope": 2.5, "width_fill": 0.04})
    assert widening[1] == (
        "width grows with the spec's interval_width_column: times 1 + 2.5 x |value| (a row without a value counts as 0.04)"
    )


def test_a_test_window_without_the_longer_horizons_says_so() -> None:
    spec = {"horizon_periods": 12}
    note = untested_horizons({"horizon_range": [1, 2]}, spec)
    assert note.startswith("the test window holds horizons 1-2 of 12:")
    assert "backtests" in note
    assert untested_horizons({"horizon_range": [1, 12]}, spec) == ""
    # A version from before the range was recorded, and a model that is no forecast.
    assert untested_horizons({}, spec) == ""
    assert untested_horizons({"horizon_range": [1, 2]}, {"horizon_days": 30}) == ""
