"""The dbt project's own bookkeeping, read from its files: no database needed."""

from __future__ import annotations

import yaml

from storecast.build import model_vars, own_vars
from storecast.config import PROJECT_DIR

MACROS = PROJECT_DIR / "dbt_project" / "macros"


def test_every_dbt_unit_test_pins_the_vars_its_model_reads() -> None:
    # dbt build runs the unit tests with the user's settings: a unit test that leaves a var
    # its model reads at the default fails the build of a user who sets it.
    unpinned = []
    for path in sorted((PROJECT_DIR / "models_sql").rglob("*.yml")):
        for unit_test in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("unit_tests", []):
            pinned = set((unit_test.get("overrides") or {}).get("vars") or {})
            missing = sorted(own_vars(unit_test["model"]) - pinned)
            if missing:
                unpinned.append(f"{path.name}: {unit_test['name']} leaves {', '.join(missing)} to the user")
    assert unpinned == []
    # An upstream model's vars shaped rows the unit test gives: not its model's own.
    assert "stock_counts" in own_vars("inventory_plan")
    assert "demand_missing_periods" in model_vars("inventory_plan") - own_vars("inventory_plan")


def test_every_macro_is_documented_with_its_arguments() -> None:
    documented = {m["name"]: m for m in yaml.safe_load((MACROS / "_macros.yml").read_text())["macros"]}
    files = {path.stem for path in MACROS.glob("*.sql")}
    assert sorted(files - set(documented)) == []
    assert sorted(set(documented) - files) == []
    for name, macro in documented.items():
        assert macro.get("description"), f"macro {name} has no description"
        text = (MACROS / f"{name}.sql").read_text()
        signature = text[text.index("(") + 1 : text.index(")")]
        arguments = [a.split("=")[0].strip() for a in signature.split(",") if a.strip()]
        assert [a["name"] for a in macro.get("arguments", [])] == arguments, name
