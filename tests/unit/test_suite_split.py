"""How make test spreads the suite over its two xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import TRAINED_STATE, scope_of


def test_a_module_is_one_unit_of_work() -> None:
    first = scope_of("tests/integration/test_bad_input.py::test_bad_input[empty file]")
    assert first == scope_of(
        "tests/integration/test_bad_input.py::test_day_month_dates_load_as_the_named_order"
    )
    assert first == "tests/integration/test_bad_input.py"
    assert scope_of("tests/unit/test_config.py::test_x") != scope_of("tests/unit/test_charts.py::test_x")


def test_the_trained_state_modules_are_one_unit_of_work() -> None:
    faults = scope_of("tests/integration/trained/test_faults.py::test_a_killed_load_loads_nothing")
    daily = scope_of("tests/integration/trained/test_daily_run.py::test_both_days_are_scored_once")
    assert faults == daily == str(TRAINED_STATE)
    # A folder whose name only starts the same is not part of it.
    assert scope_of("tests/integration/trained_more/test_x.py::test_y") != str(TRAINED_STATE)
