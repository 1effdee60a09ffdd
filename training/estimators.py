"""Candidate estimators: an explicit registry of scikit-learn pipelines that export to ONNX."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge, TweedieRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from storecast.training.blend import MeanRegressor
from storecast.training.btyd import PURCHASE_COLUMN, BTYDFeatures, BTYDScaler, ExpectedSpend
from storecast.training.categorical_trees import CategoryCodes
from storecast.training.spec import ModelSpec
from storecast.training.target import LevelRateRegressor, Log1pRegressor

SEED = 0

#: How a candidate takes its inputs: "scaled" (numbers imputed and standardised,
#: categories one-hot: linear models), "raw" (numbers as they are, missing values
#: included, categories one-hot: trees), "native" (numbers as they are, categories as
#: codes the trees split on directly, :mod:`storecast.training.categorical_trees`),
#: "btyd" (BG/NBD's quantities from ``btyd_columns`` only, standardised), "btyd_as_is"
#: (the same, as BG/NBD computes them) or "btyd_probability" (its probability of a
#: purchase alone, as it computes it).
Inputs = Literal["scaled", "raw", "native", "btyd", "btyd_as_is", "btyd_probability"]


def _category_codes(spec: ModelSpec) -> list[int] | None:
    """Where the category codes sit in a "native" candidate's input: after the numbers."""
    n_numeric, n_categorical = len(spec.features.numeric), len(spec.features.categorical)
    return list(range(n_numeric, n_numeric + n_categorical)) or None


def _offsets(spec: ModelSpec) -> dict[str, int | None]:
    """Where the spec's level and lift columns sit in a "native" candidate's input (among
    the numbers), as a level-relative regressor's ``level_index`` and ``lift_index``."""
    numeric = spec.features.numeric
    return {
        "level_index": None if spec.level_column is None else numeric.index(spec.level_column),
        "lift_index": None if spec.lift_column is None else numeric.index(spec.lift_column),
    }


#: The gradient-boosting models' shared settings (the classifier's too).
_TREES: dict[str, Any] = {
    "max_iter": 300,
    "learning_rate": 0.05,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "random_state": SEED,
}


#: On few training rows a leaf need hold no more than a :data:`LEAF_SHARE` th of them (and
#: never fewer than :data:`MIN_LEAF_ROWS`): with the shared 40 rows a leaf, trees on fewer
#: than 80 rows cannot split at all (one series by month: a level times a constant). A
#: 10th, not a 20th: a 20th changed data of 400-800 rows too, for better and worse
#: (docs/benchmark-notes.md).
LEAF_SHARE = 10
MIN_LEAF_ROWS = 5


def leaf_cap(rows: int) -> int:
    """The most rows a tree's leaf is asked to hold when fitted on ``rows`` training rows."""
    return max(MIN_LEAF_ROWS, rows // LEAF_SHARE)


def fit_leaves_to(pipeline: Pipeline, rows: int) -> Pipeline:
    """``pipeline`` with every tree ensemble in it (wrapped ones included) asking at most
    :func:`leaf_cap` of ``rows`` rows a leaf: its own setting where that is fewer."""
    cap = leaf_cap(rows)
    leaves = {
        key: min(value, cap)
        for key, value in pipeline.get_params(deep=True).items()
        if key.endswith("min_samples_leaf")
    }
    return pipeline.set_params(**leaves)


def _trees(spec: ModelSpec, loss: str = "squared_error") -> HistGradientBoostingRegressor:
    """Gradient boosting with the shared settings, splitting on the spec's category codes."""
    return HistGradientBoostingRegressor(loss=loss, **_TREES, categorical_features=_category_codes(spec))


#: name -> (estimator factory taking the spec, how it takes its inputs)
ESTIMATORS: dict[str, tuple[Callable[[ModelSpec], BaseEstimator], Inputs]] = {
    "logistic_regression": (
        lambda spec: LogisticRegression(
            max_iter=2000,
            C=1.0,
            class_weight="balanced" if spec.class_balance.policy == "class_weight" else None,
        ),
        "scaled",
    ),
    "hist_gradient_boosting_classifier": (
        lambda spec: HistGradientBoostingClassifier(
            **_TREES,
            l2_regularization=1.0,
            class_weight="balanced" if spec.class_balance.policy == "class_weight" else None,
        ),
        "raw",
    ),
    # BG/NBD on its own: a logistic regression on its three quantities only, so that
    # selection can pick the probabilistic model (e.g. for a single acquisition cohort).
    "bg_nbd": (lambda spec: LogisticRegression(max_iter=2000), "btyd"),
    # BG/NBD's probability of a purchase alone, through a logistic regression on it: a
    # monotone map, so customers keep BG/NBD's own order whatever the labels teach (the
    # level is then calibrated on the validation window like every classifier's).
    "bg_nbd_probability": (lambda spec: LogisticRegression(max_iter=2000), "btyd_probability"),
    # BG/NBD + Gamma-Gamma on its own: a log-link GLM on their quantities only (the expected
    # spend and its log among them), which calibrates the probabilistic model's level.
    "bg_nbd_spend": (
        lambda spec: TweedieRegressor(power=1.5, link="log", alpha=1e-4, max_iter=1000),
        "btyd",
    ),
    # BG/NBD + Gamma-Gamma's expected spend as it is: nothing learned from the matured
    # labels, whose customers may be younger than today's (training.btyd.ExpectedSpend).
    "bg_nbd_gamma_gamma": (lambda spec: ExpectedSpend(), "btyd_as_is"),
    "ridge": (lambda spec: Ridge(alpha=1.0), "scaled"),
    # Log-link GLMs suit counts and spend: non-negative, skewed, multiplicative effects.
    "poisson_glm": (lambda spec: PoissonRegressor(alpha=1e-4, max_iter=1000), "scaled"),
    "tweedie_glm": (
        lambda spec: TweedieRegressor(power=1.5, link="log", alpha=1e-4, max_iter=1000),
        "scaled",
    ),
    "hist_gradient_boosting_regressor": (
        lambda spec: _trees(spec),
        "native",
    ),
    # Poisson loss (log link) for counts: a few very large weeks (promotions) pull it less
    # than squared error. skl2onnx exports its raw score; training.export adds the exp.
    "hist_gradient_boosting_poisson": (lambda spec: _trees(spec, "poisson"), "native"),
    # The same relative to the series' recent level when the spec names one: the rate over
    # 1 + the level, weighted by it (a Poisson fit with the level as offset, training.target).
    "hist_gradient_boosting_poisson_level": (
        lambda spec: LevelRateRegressor(_trees(spec, "poisson"), **_offsets(spec)),
        "native",
    ),
    # Squared error on log1p(units), relative to the series' recent level when the spec names
    # one, back-transformed with a bias correction: the large promotion weeks weigh far less
    # than on raw units, and a level that moved is followed (training.target).
    "hist_gradient_boosting_log1p": (
        lambda spec: Log1pRegressor(_trees(spec), **_offsets(spec)),
        "native",
    ),
    # The mean of the two forecasts above (BLENDS): they err in different places, and on the
    # weekly sets tried their mean forecast as well as the better one or better, which a
    # short validation window picks little more surely than a coin (training.blend).
    "hist_gradient_boosting_blend": (lambda spec: _blend(spec, "hist_gradient_boosting_blend"), "native"),
}

#: Blends: candidates that forecast the mean of other candidates' predictions. The members
#: take the blend's input kind, so one preprocessing serves them all.
BLENDS: dict[str, tuple[str, ...]] = {
    "hist_gradient_boosting_blend": ("hist_gradient_boosting_poisson_level", "hist_gradient_boosting_log1p"),
}


def _blend(spec: ModelSpec, name: str) -> MeanRegressor:
    return MeanRegressor([(member, ESTIMATORS[member][0](spec)) for member in BLENDS[name]])


#: The input kinds that are BG/NBD's quantities and nothing else.
_BTYD_INPUTS: frozenset[Inputs] = frozenset({"btyd", "btyd_as_is", "btyd_probability"})
#: Of those, the ones from which the labels cannot reorder customers: BG/NBD's order (and
#: for spend its level) as it is.
_AS_IS_INPUTS: frozenset[Inputs] = frozenset({"btyd_as_is", "btyd_probability"})
#: Candidates that see BG/NBD's quantities and nothing else.
BTYD_ONLY = frozenset(name for name, (_, inputs) in ESTIMATORS.items() if inputs in _BTYD_INPUTS)
#: Of those, the ones that keep BG/NBD's order of the customers (and level, for spend).
BTYD_AS_IS = frozenset(name for name, (_, inputs) in ESTIMATORS.items() if inputs in _AS_IS_INPUTS)


#: The preprocessing step that turns ``btyd_columns`` into BG/NBD's quantities
#: (training.explain credits them back to those columns).
BTYD_STEP = "btyd"


def preprocessor(spec: ModelSpec, inputs: Inputs, btyd: BTYDFeatures | None = None) -> ColumnTransformer:
    """Column preprocessing inside the exported graph, numbers first, then categories.

    "scaled" candidates get median imputation and standard scaling; "raw" and "native"
    take the numbers as they are (missing values included). Categories are one-hot
    encoded (ignoring those not seen in training, and leaving out ``native_only``
    columns), or for "native" candidates coded for the trees to split on. Linear
    customer models with ``btyd_columns`` also get BG/NBD's probability alive,
    probability of a purchase and expected purchases over their horizon (with a mean
    order value, Gamma-Gamma's expected spend and its log), from a BG/NBD fitted on the
    training rows unless ``btyd`` holds one; "btyd" and "btyd_as_is" candidates get
    those quantities and nothing else, the latter unscaled; "btyd_probability" ones the
    probability of a purchase alone, unscaled.
    """
    only_btyd = inputs in _BTYD_INPUTS
    linear = inputs == "scaled"
    numeric: Any = (
        Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        if linear
        else "passthrough"
    )
    transformers: list[tuple[str, Any, list[str]]] = (
        [] if only_btyd else [("numeric", numeric, list(spec.features.numeric))]
    )
    columns = spec.btyd_columns
    if (linear or only_btyd) and columns and set(columns) <= set(spec.features.numeric):
        # The probabilistic model's view of each customer, fitted on the training rows. Linear
        # models only: ONNX computes these in float32, and a tree would send a value that
        # lands on the other side of a split threshold down another branch (no parity).
        features = BTYDFeatures(
            horizon_days=spec.horizon_days,
            fitted=None if btyd is None else btyd.model_,
            fitted_value=None if btyd is None else btyd.value_model_,
            outputs=(PURCHASE_COLUMN,) if inputs == "btyd_probability" else None,
        )
        steps: list[tuple[str, Any]] = [("btyd", features)]
        if inputs not in _AS_IS_INPUTS:
            steps.append(("scale", BTYDScaler()))
        transformers.append((BTYD_STEP, Pipeline(steps), list(columns)))
    if only_btyd:
        return ColumnTransformer(transformers)
    if inputs == "native" and spec.features.categorical:
        transformers.append(("categorical", CategoryCodes(), list(spec.features.categorical)))
    elif inputs != "native" and spec.features.one_hot:
        transformers.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(spec.features.one_hot),
            )
        )
    return ColumnTransformer(transformers)


def make_pipeline(spec: ModelSpec, name: str, btyd: BTYDFeatures | None = None) -> Pipeline:
    """An unfitted pipeline (preprocessing + estimator) for candidate ``name``; ``btyd`` holds
    the BG/NBD (and Gamma-Gamma) behind the features of ``spec.btyd_columns``, fitted on the
    latest snapshot (else they are fitted with the rest, on the training rows)."""
    factory, inputs = ESTIMATORS[name]
    if name in BTYD_ONLY and not (spec.btyd_columns and set(spec.btyd_columns) <= set(spec.features.numeric)):
        raise ValueError(f"{spec.name}: candidate {name} needs btyd_columns among the features")
    return Pipeline([("preprocess", preprocessor(spec, inputs, btyd)), ("estimator", factory(spec))])
