"""Model specs validate on load and name the file and field that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.spec import SpecError, load_spec, load_specs, model_specs, select_specs

SHIPPED = {"sell_through", "purchase_30d", "churn_90d", "clv_365d", "offer_redemption_7d", "demand"}


def _write(tmp_path: Path, stem: str, **changes: object) -> Path:
    spec = yaml.safe_load((Path("training/specs") / "purchase_30d.yml").read_text())
    spec["name"] = stem
    spec.update(changes)
    path = tmp_path / f"{stem}.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_six_shipped_models_load() -> None:
    assert set(model_specs()) == SHIPPED


def test_a_wrong_key_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", selection_metrc="roc_auc")
    with pytest.raises(SpecError, match=r"m\.yml: selection_metrc: Extra inputs are not permitted"):
        load_spec(path)


def test_a_wrong_type_names_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", horizon_days="thirty")
    with pytest.raises(SpecError, match=r"horizon_days: Input should be a valid integer"):
        load_spec(path)


def test_a_nested_field_is_named_with_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", class_balance={"policy": "oversample"})
    with pytest.raises(SpecError, match=r"class_balance\.policy: Input should be"):
        load_spec(path)


def test_a_binary_model_refuses_regressors(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", candidates=["logistic_regression", "ridge"])
    with pytest.raises(SpecError, match=r"binary models take classifiers only; got \['ridge'\]"):
        load_spec(path)


def test_the_label_cannot_be_a_feature(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", features={"numeric": ["recency_days", "purchased_next_30d"]})
    with pytest.raises(SpecError, match=r"features must not include the label"):
        load_spec(path)


def test_the_file_name_must_match_the_model_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", name="other")
    with pytest.raises(SpecError, match=r"name is 'other' but the file is named 'm'"):
        load_spec(path)


def test_a_classifier_cannot_be_refit_on_its_calibration_window(tmp_path: Path) -> None:
    path = _write(tmp_path, "m", refit_on_train_and_validation=True)
    with pytest.raises(SpecError, match="cannot be refit"):
        load_spec(path)


def test_unknown_model_names_are_listed_with_the_known_ones() -> None:
    with pytest.raises(SpecError, match=r"unknown model\(s\) purchase_7d; known models: .*purchase_30d"):
        select_specs(["purchase_7d"])


def test_a_spec_directory_is_loaded_as_a_registry(tmp_path: Path) -> None:
    _write(tmp_path, "alpha")
    _write(tmp_path, "beta")
    assert list(load_specs(tmp_path)) == ["alpha", "beta"]
