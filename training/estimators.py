"""Candidate estimators: an explicit registry of scikit-learn pipelines that export to ONNX."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge, TweedieRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from training.btyd import BTYDFeatures
from training.spec import ModelSpec
from training.target import Log1pRegressor

SEED = 0

#: name -> (estimator factory taking the spec, whether it needs scaled and imputed inputs)
ESTIMATORS: dict[str, tuple[Callable[[ModelSpec], BaseEstimator], bool]] = {
    "logistic_regression": (
        lambda spec: LogisticRegression(
            max_iter=2000,
            C=1.0,
            class_weight="balanced" if spec.class_balance.policy == "class_weight" else None,
        ),
        True,
    ),
    "hist_gradient_boosting_classifier": (
        lambda spec: HistGradientBoostingClassifier(
            max_iter=300,
            learning_rate=0.05,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            class_weight="balanced" if spec.class_balance.policy == "class_weight" else None,
            random_state=SEED,
        ),
        False,
    ),
    # BG/NBD on its own: a logistic regression on its three quantities only, so that
    # selection can pick the probabilistic model (e.g. for a single acquisition cohort).
    "bg_nbd": (lambda spec: LogisticRegression(max_iter=2000), True),
    # BG/NBD + Gamma-Gamma on its own: a log-link GLM on their quantities only (the expected
    # spend and its log among them), which calibrates the probabilistic model's level.
    "bg_nbd_spend": (lambda spec: TweedieRegressor(power=1.5, link="log", alpha=1e-4, max_iter=1000), True),
    "ridge": (lambda spec: Ridge(alpha=1.0), True),
    # Log-link GLMs suit counts and spend: non-negative, skewed, multiplicative effects.
    "poisson_glm": (lambda spec: PoissonRegressor(alpha=1e-4, max_iter=1000), True),
    "tweedie_glm": (lambda spec: TweedieRegressor(power=1.5, link="log", alpha=1e-4, max_iter=1000), True),
    "hist_gradient_boosting_regressor": (
        lambda spec: HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=40, random_state=SEED
        ),
        False,
    ),
    # Poisson loss (log link) for counts: a few very large weeks (promotions) pull it less
    # than squared error. skl2onnx exports its raw score; training.export adds the exp.
    "hist_gradient_boosting_poisson": (
        lambda spec: HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=300,
            learning_rate=0.05,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            random_state=SEED,
        ),
        False,
    ),
    # Squared error on log1p(units), back-transformed with a bias correction: the large
    # promotion weeks weigh far less than on raw units (training.target).
    "hist_gradient_boosting_log1p": (
        lambda spec: Log1pRegressor(
            HistGradientBoostingRegressor(
                max_iter=300, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=40, random_state=SEED
            )
        ),
        False,
    ),
}


#: Candidates that see BG/NBD's quantities and nothing else.
BTYD_ONLY = frozenset({"bg_nbd", "bg_nbd_spend"})


def preprocessor(
    spec: ModelSpec, linear: bool, btyd: BTYDFeatures | None = None, only_btyd: bool = False
) -> ColumnTransformer:
    """Column preprocessing inside the exported graph.

    Linear models get median imputation and standard scaling; tree models take the
    numbers as they are (missing values included). Categories are one-hot encoded,
    ignoring categories not seen in training. Linear customer models with
    ``btyd_columns`` also get BG/NBD's probability alive, probability of a purchase and
    expected purchases over their horizon, from a BG/NBD fitted on the training rows.
    """
    numeric: Any = (
        Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        if linear
        else "passthrough"
    )
    transformers: list[tuple[str, Any, list[str]]] = (
        [] if only_btyd else [("numeric", numeric, list(spec.features.numeric))]
    )
    columns = spec.btyd_columns
    if linear and columns and set(columns) <= set(spec.features.numeric):
        # The probabilistic model's view of each customer, fitted on the training rows. Linear
        # models only: ONNX computes these in float32, and a tree would send a value that
        # lands on the other side of a split threshold down another branch (no parity).
        features = BTYDFeatures(
            horizon_days=spec.horizon_days,
            fitted=None if btyd is None else btyd.model_,
            fitted_value=None if btyd is None else btyd.value_model_,
        )
        transformers.append(
            ("btyd", Pipeline([("btyd", features), ("scale", StandardScaler())]), list(columns))
        )
    if spec.features.categorical and not only_btyd:
        transformers.append(
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(spec.features.categorical),
            )
        )
    return ColumnTransformer(transformers)


def make_pipeline(spec: ModelSpec, name: str, btyd: BTYDFeatures | None = None) -> Pipeline:
    """An unfitted pipeline (preprocessing + estimator) for candidate ``name``; ``btyd`` holds
    the BG/NBD (and Gamma-Gamma) behind the features of ``spec.btyd_columns``, fitted on the
    latest snapshot (else they are fitted with the rest, on the training rows)."""
    factory, linear = ESTIMATORS[name]
    if name in BTYD_ONLY and not (spec.btyd_columns and set(spec.btyd_columns) <= set(spec.features.numeric)):
        raise ValueError(f"{spec.name}: candidate {name} needs btyd_columns among the features")
    return Pipeline(
        [("preprocess", preprocessor(spec, linear, btyd, name in BTYD_ONLY)), ("estimator", factory(spec))]
    )
