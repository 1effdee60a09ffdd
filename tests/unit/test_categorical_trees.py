"""Native categorical splits: the category codes, and ONNX parity of the trees that use them."""

from __future__ import annotations

import numpy as np
import onnx
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.ensemble import HistGradientBoostingRegressor

from storecast.training.categorical_trees import CategoryCodes
from storecast.training.estimators import make_pipeline
from storecast.training.export import export, float32_thresholds, onnx_inputs, predict_onnx
from storecast.training.spec import Features, ModelSpec
from tests.unit.specs import spec_for

NUMERIC = ["level", "discount"]
CATEGORICAL = ["store", "kind"]


def _panel(n: int = 20_000, stores: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Counts with a level per store (more stores than the trees take codes for), a few
    missing numbers, and numbers rounded to float32 as ONNX Runtime reads them."""
    rng = np.random.default_rng(seed)
    store = rng.integers(0, stores, n)
    level = rng.normal(size=n)
    level[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "level": level.astype(np.float32).astype(np.float64),
            "discount": ((rng.random(n) < 0.2) * rng.uniform(0.1, 0.4, n))
            .astype(np.float32)
            .astype(np.float64),
            "store": store.astype(str),
            "kind": rng.choice(["a", "b", "c"], n),
        }
    )
    store_effect = np.random.default_rng(99).normal(scale=0.7, size=stores)  # the same in every draw
    mean = np.exp(1 + store_effect[store] + 3 * frame["discount"] + 0.3 * np.nan_to_num(frame["level"]))
    return frame, rng.negative_binomial(2, 2 / (2 + mean.to_numpy()))


def _spec(candidate: str) -> ModelSpec:
    return spec_for(
        "forecast",
        NUMERIC,
        [candidate],
        features={"numeric": NUMERIC, "categorical": CATEGORICAL, "native_only": ["store"]},
    )


def test_codes_go_to_the_most_frequent_values_and_nan_to_the_rest() -> None:
    train = pd.DataFrame({"c": ["x", "y", "y", "z", "z", "z", "w"]})
    codes = CategoryCodes(max_categories=2).fit(train)
    assert codes.categories_ == [["z", "y"]]
    out = codes.transform(pd.DataFrame({"c": ["z", "y", "x", "never seen"]}))
    assert_allclose(out.ravel(), [0.0, 1.0, np.nan, np.nan])


@pytest.mark.parametrize(
    "candidate",
    [
        "hist_gradient_boosting_poisson",
        "hist_gradient_boosting_poisson_level",
        "hist_gradient_boosting_log1p",
        "hist_gradient_boosting_regressor",
    ],
)
def test_categorical_gradient_boosting_exports_with_parity(candidate: str) -> None:
    spec = _spec(candidate)
    frame, y = _panel()
    pipeline = float32_thresholds(make_pipeline(spec, candidate).fit(frame, y))
    trees = pipeline.steps[-1][1]
    trees = getattr(trees, "estimator_", trees)
    assert trees.is_categorical_.sum() == 2  # the store and kind codes, split on natively
    model = onnx.load_from_string(export(pipeline, spec))
    assert "TreeEnsemble" in {node.op_type for node in model.graph.node}
    # Unseen stores, an unseen kind and rare stores (beyond the 255 codes) all go where
    # scikit-learn sends them.
    test, _ = _panel(5_000, stores=500, seed=1)
    test.loc[:99, "kind"] = "unseen"
    feed = onnx_inputs(test, NUMERIC, CATEGORICAL)
    onnx_pred = predict_onnx(model.SerializeToString(), "forecast", feed)
    assert_allclose(onnx_pred, pipeline.predict(test), rtol=1e-4, atol=1e-4)


def test_the_stores_level_is_learnt_through_their_codes() -> None:
    """With store as a category the trees fit the level per store; without it they cannot."""
    frame, y = _panel()
    test, y_test = _panel(5_000, seed=1)
    errors = {}
    for features in (
        {"numeric": NUMERIC, "categorical": CATEGORICAL, "native_only": ["store"]},
        {"numeric": NUMERIC, "categorical": ["kind"]},
    ):
        spec = spec_for("forecast", NUMERIC, ["hist_gradient_boosting_poisson"], features=features)
        pipeline = make_pipeline(spec, "hist_gradient_boosting_poisson").fit(frame, y)
        errors[len(features["categorical"])] = np.abs(pipeline.predict(test) - y_test).sum() / y_test.sum()
    assert errors[2] < errors[1] - 0.05


def test_linear_candidates_leave_native_only_columns_out() -> None:
    spec = _spec("poisson_glm")
    frame, y = _panel(2_000)
    pipeline = make_pipeline(spec, "poisson_glm").fit(frame, y)
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    assert not [n for n in names if n.startswith("categorical__store")]
    assert [n for n in names if n.startswith("categorical__kind")]
    # ...and the exported model still takes (and ignores) every feature the spec lists.
    feed = onnx_inputs(frame, NUMERIC, CATEGORICAL)
    expected = np.asarray(pipeline.predict(frame), dtype=np.float64)
    assert_allclose(predict_onnx(export(pipeline, spec), "forecast", feed), expected, rtol=1e-4)


def test_a_model_without_categories_keeps_skl2onnx_s_converter() -> None:
    spec = spec_for("forecast", NUMERIC, ["hist_gradient_boosting_poisson"], features={"numeric": NUMERIC})
    frame, y = _panel(2_000)
    pipeline = float32_thresholds(make_pipeline(spec, "hist_gradient_boosting_poisson").fit(frame, y))
    model = onnx.load_from_string(export(pipeline, spec))
    assert "TreeEnsembleRegressor" in {node.op_type for node in model.graph.node}
    assert {o.domain: o.version for o in model.opset_import}.get("ai.onnx.ml", 0) < 5


def test_codes_other_than_0_to_n_are_refused_at_export() -> None:
    x = np.c_[np.random.default_rng(0).normal(size=500), np.repeat([10.0, 20.0], 250)]
    model = HistGradientBoostingRegressor(categorical_features=[1], max_iter=5).fit(x, x[:, 0] + x[:, 1])
    from storecast.training.categorical_trees import tree_ensemble_attributes

    with pytest.raises(NotImplementedError, match=r"codes 0\.\.n-1"):
        tree_ensemble_attributes(model)


def test_native_only_columns_must_be_categorical() -> None:
    with pytest.raises(ValueError, match="must be categorical"):
        Features(numeric=["a"], categorical=["b"], native_only=["c"])
