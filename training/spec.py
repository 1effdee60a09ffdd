"""Model specs: one YAML file per model in ``training/specs/``, validated on load.

A spec is the one place that names a model's feature relation, keys, label and
feature columns: training builds the ONNX input from ``features`` and scoring
builds its SELECT from the same list.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from storecast.config import PERIOD_DAYS, PERIOD_INTERVALS

SPEC_DIR = Path(__file__).parent / "specs"

Task = Literal["binary", "regression", "forecast"]
Estimator = Literal[
    "logistic_regression",
    "bg_nbd",
    "bg_nbd_probability",
    "hist_gradient_boosting_classifier",
    "ridge",
    "poisson_glm",
    "tweedie_glm",
    "hist_gradient_boosting_regressor",
    "hist_gradient_boosting_poisson",
    "hist_gradient_boosting_poisson_level",
    "hist_gradient_boosting_log1p",
    "hist_gradient_boosting_blend",
    "bg_nbd_spend",
    "bg_nbd_gamma_gamma",
]
BINARY_ESTIMATORS: set[str] = {
    "logistic_regression",
    "bg_nbd",
    "bg_nbd_probability",
    "hist_gradient_boosting_classifier",
}
Metric = Literal[
    "roc_auc", "pr_auc", "brier", "log_loss", "mae", "rmse", "wape", "wape_bias", "poisson_deviance", "gini"
]
Baseline = Literal[
    "recency_rule", "historical_redemption_rate", "last_year_spend", "seasonal_naive", "category_base_rate"
]


class SpecError(ValueError):
    """A spec file is missing, unreadable or invalid."""


#: The subsets of a spec's features whose drift retrains nothing (``Features.calendar``,
#: ``Features.planned``).
DRIFT_EXEMPT: tuple[str, ...] = ("calendar", "planned")
#: The spec fields naming a numeric feature that a level-relative candidate takes into its
#: offset (training.target); each may be given per grain as ``<field>_by_grain``.
OFFSET_COLUMNS: tuple[str, ...] = ("level_column", "lift_column")


class Features(BaseModel):
    """Feature columns of the relation, by kind; their order is the ONNX input order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    numeric: list[str] = Field(min_length=1)
    categorical: list[str] = Field(default_factory=list)
    #: Categorical columns with too many values for a one-hot column each (keys such as
    #: product and store): only candidates that split on categories natively use them.
    native_only: list[str] = Field(default_factory=list)
    #: Features that are a function of the scoring date (and horizon) alone: the target's
    #: time of year or weekday, an offer's days to expiry. One date's values differ from the
    #: training window's by design, and from the next date's: their drift is recorded, but
    #: retrains nothing (a job run every day retrained demand on 9 of 11 days off its
    #: schedule for the target's time of year moving on by a day).
    calendar: list[str] = Field(default_factory=list)
    #: Features of what the retailer has set ahead for the scored date: the promotions and
    #: prices of the target period, the offers live on the date and each customer's relation
    #: to them. Each date brings a new plan, which no training window holds (in twelve daily
    #: runs demand was retrained twice for its categories' promotions over the next four
    #: weeks, offers five times for which offers were live): their drift is recorded, but
    #: retrains nothing.
    planned: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _subsets_are_features(self) -> Features:
        stray = [c for c in self.native_only if c not in self.categorical]
        if stray:
            raise ValueError(f"native_only columns must be categorical features too: {stray}")
        for subset in DRIFT_EXEMPT:
            unknown = [c for c in getattr(self, subset) if c not in self.columns]
            if unknown:
                raise ValueError(f"{subset} columns must be features too: {unknown}")
        return self

    @property
    def not_drift_evidence(self) -> list[str]:
        """The features whose drift retrains nothing: calendar and planned."""
        return [c for subset in DRIFT_EXEMPT for c in getattr(self, subset)]

    @property
    def one_hot(self) -> list[str]:
        """The categorical columns one-hot encoded for candidates without native categories."""
        return [c for c in self.categorical if c not in self.native_only]

    @property
    def columns(self) -> list[str]:
        """All feature columns, numeric first."""
        return [*self.numeric, *self.categorical]


class ClassBalance(BaseModel):
    """How to treat a rare positive class when fitting (binary models)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["none", "class_weight", "downsample_negatives"] = "none"
    negative_rate: float = Field(default=1.0, gt=0, le=1)


class Schedule(BaseModel):
    """When the daily run retrains the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekdays: list[Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]] = [
        "monday"
    ]


class ModelSpec(BaseModel):
    """Everything training and scoring need to know about one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    task: Task
    relation: str = Field(
        pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", description="schema.table of the training rows"
    )
    scoring_relation: str | None = Field(
        default=None,
        pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
        description="rows to score, if not relation",
    )
    needs: str | None = Field(
        default=None,
        description="the raw rows the relation is built from, named when it holds none at all",
    )
    keys: list[str] = Field(min_length=1)
    time_column: str = "as_of_date"
    time_on_spine: bool = Field(
        default=False,
        description=(
            "the time column holds features.as_of_dates' dates: training reads those marked "
            "is_training_date only (a date scored off the weekly grid is kept for its backtest)"
        ),
    )
    label: str
    horizon_var: str | None = Field(
        default=None, description="the setting (dbt var) that holds the label horizon; read at load"
    )
    horizon_unit: Literal["day", "period"] = Field(
        default="day", description="unit of horizon_var: days, or demand periods (demand_grain)"
    )
    horizon_days: int = Field(gt=0, description="length of the label window in days (from horizon_var)")
    horizon_periods: int | None = Field(
        default=None, gt=0, description="forecasts: how many periods ahead are forecast"
    )
    period_days: int = Field(
        default=1, gt=0, description="days in one period of the time column (the most, for calendar months)"
    )
    period: str | None = Field(
        default=None,
        pattern=r"^[0-9]+ (day|days|month)$",
        description="one period as a Postgres interval ('7 days', '1 month'); default period_days days",
    )
    embargo_days: int | None = Field(
        default=None,
        ge=0,
        description="gap between the last training as-of date and the held-out period; default horizon_days",
    )
    features: Features
    candidates: list[Estimator] = Field(min_length=1)
    selection_metric: Metric
    default_candidate: Estimator | None = Field(
        default=None,
        description="a candidate kept unless another beats it on validation beyond chance (paired by "
        "validation date, training.selection); default: the best on validation wins",
    )
    baseline: Baseline
    holdout_periods: int = Field(
        default=8, ge=2, description="latest matured time periods held out: half validate, half test"
    )
    class_balance: ClassBalance = ClassBalance()
    refit_before_test: bool = Field(
        default=False,
        description="refit the chosen candidate on every matured time value before the test window "
        "(train, the embargo's gap, validation)",
    )
    max_train_rows: int = Field(default=2_000_000, gt=0)
    group_column: str | None = Field(
        default=None, description="rank within this column for top-k metrics (offers)"
    )
    top_k: int = Field(
        default=3,
        gt=0,
        description="k of the top-k metrics: the recommendations_k setting when the spec names it",
    )
    top_k_var: str | None = Field(
        default=None,
        description="setting that gives top_k (recommendations_k: the offers the marts recommend)",
    )
    non_negative: bool = Field(
        default=True, description="clip regression and forecast predictions at 0 (spend, units)"
    )
    interval_levels: list[float] = Field(default=[0.8, 0.95])
    btyd_columns: list[str] | None = Field(
        default=None,
        min_length=3,
        max_length=4,
        description="customer models: [orders, recency in days, age in days] columns from which BG/NBD "
        "probability alive, probability of a purchase and expected purchases over the horizon are added as "
        "features; a fourth, the mean order value, adds Gamma-Gamma expected spend",
    )
    recent_column: str | None = Field(
        default=None,
        description="customer models with btyd_columns: a column holding each customer's orders in the "
        "recent_days before the as-of date; the candidates that take BG/NBD as it is (bg_nbd_probability, "
        "bg_nbd_gamma_gamma) are held to the rate of those days: the orders the customers placed over "
        "those BG/NBD, fitted on them when the days began, expected",
    )
    recent_days: int = Field(
        default=90, gt=0, description="the days recent_column sums (its window before the as-of date)"
    )
    # Most (not three quarters): on the sample's many cohorts at its latest date 73 % were
    # past the matured ages, and the learned spend model then chosen over-predicted by 26 %
    # (spend MAE 187 against BG/NBD's 158; 152 with the guard; docs/benchmark-notes.md).
    age_extrapolation_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="customer models with btyd_columns: when more than this share of the latest customers "
        "(by default most) are older than every customer with a matured label, only the candidates "
        "built on BG/NBD, which extrapolate in age, are considered (trees cannot); of those, only the "
        "ones that learn nothing from the labels when there are any (bg_nbd_gamma_gamma)",
    )
    max_champion_bias: float | None = Field(
        default=None,
        gt=0,
        description="forecasts: a version whose |bias| on the test window passes this cannot replace a champion within it",
    )
    level_column: str | None = Field(
        default=None,
        description="forecasts: a numeric feature holding each series' recent level (its mean over the "
        "latest periods); the log1p and rate (poisson_level) candidates forecast relative to it",
    )
    lift_column: str | None = Field(
        default=None,
        description="forecasts: a numeric feature holding the target period's expected change in log "
        "units (a planned price at the product's elasticity); the log1p and rate candidates take it "
        "into their offset with the level, so that the trees learn what is left",
    )
    interval_width_column: str | None = Field(
        default=None,
        description="forecasts: a column read beside the features (not one of them) whose size widens "
        "the prediction intervals where validation shows larger misses with it (training.intervals)",
    )
    horizon_buckets: list[int] = Field(
        default=[7, 14, 28],
        description="upper bounds of forecast horizon buckets, in periods; default: a quarter, half and all of the horizons",
    )
    retrain: Schedule = Schedule()
    dropped_features: list[str] = Field(
        default_factory=list,
        description="set by training: spec features left out because they were constant on the training rows",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        chosen: set[str] = set(self.candidates)
        binary = chosen <= BINARY_ESTIMATORS
        if self.task == "binary" and not binary:
            raise ValueError(f"binary models take classifiers only; got {sorted(chosen - BINARY_ESTIMATORS)}")
        if self.task != "binary" and chosen & BINARY_ESTIMATORS:
            raise ValueError(
                f"{self.task} models take regressors only; got {sorted(chosen & BINARY_ESTIMATORS)}"
            )
        if "bg_nbd_gamma_gamma" in chosen and len(self.btyd_columns or []) != 4:
            raise ValueError(
                "candidate bg_nbd_gamma_gamma predicts Gamma-Gamma's expected spend: btyd_columns needs "
                "a fourth column, the mean order value"
            )
        if self.recent_column and not self.btyd_columns:
            raise ValueError(
                "recent_column holds BG/NBD to the customers' recent level: it needs btyd_columns"
            )
        window = re.search(r"_(\d+)d$", self.recent_column or "")
        if window and int(window.group(1)) != self.recent_days:
            raise ValueError(
                f"recent_column {self.recent_column} sums {window.group(1)} days by its name, "
                f"recent_days says {self.recent_days}: make them agree"
            )
        buckets = self.horizon_buckets
        if not buckets or buckets[0] < 1 or any(b <= a for a, b in pairwise(buckets)):
            raise ValueError(f"horizon_buckets must be increasing positive periods; got {buckets}")
        if self.task == "binary" and self.refit_before_test:
            raise ValueError(
                "a binary model is calibrated on the validation window, so it cannot be refit on it"
            )
        # A forecast's horizon is both part of its grain and a feature; keys may be categories
        # for trees that split on them natively (a level per product and per store).
        keys = set(self.keys) - {"horizon"} - set(self.features.native_only)
        overlap = set(self.features.columns) & ({self.label, self.time_column} | keys)
        if overlap:
            raise ValueError(f"features must not include the label, keys or time column: {sorted(overlap)}")
        if len(set(self.features.columns)) != len(self.features.columns):
            raise ValueError("a feature column is listed twice")
        if self.default_candidate is not None and self.default_candidate not in self.candidates:
            raise ValueError(f"default_candidate {self.default_candidate!r} must be one of the candidates")
        for field in OFFSET_COLUMNS:
            column = getattr(self, field)
            if column is not None and column not in self.features.numeric:
                raise ValueError(f"{field} {column!r} must be one of the numeric features")
        if self.task == "forecast" and "horizon" not in self.keys:
            raise ValueError("forecast models need 'horizon' among their keys")
        return self

    def finalise(self, prediction: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Predictions as served: regression outputs of a non-negative quantity clipped at 0."""
        if self.task != "binary" and self.non_negative:
            return np.maximum(prediction, 0.0)
        return prediction

    @property
    def embargo(self) -> int:
        """Days between the last training as-of date and the first held-out one."""
        return self.horizon_days if self.embargo_days is None else self.embargo_days

    @property
    def period_interval(self) -> str:
        """One period of the time column as a Postgres interval: what a forecast's target
        period adds to its start to end its label window."""
        return self.period or f"{self.period_days} days"

    @property
    def horizon_interval(self) -> str:
        """The label window as a Postgres interval: ``horizon_periods`` periods of a forecast
        (3 months are 89-92 days, not 3 x 31), else ``horizon_days`` days."""
        if self.horizon_periods is None:
            return f"{self.horizon_days} days"
        count, unit = self.period_interval.split(" ", 1)
        return f"{int(count) * self.horizon_periods} {unit}"

    @property
    def series_keys(self) -> list[str]:
        """A forecast's series: its keys without the as-of date and the horizon."""
        return [k for k in self.keys if k not in (self.time_column, "horizon")]

    @property
    def feature_columns(self) -> list[str]:
        """Feature columns in ONNX input order."""
        return self.features.columns


def _setting(
    path: Path, data: dict[str, Any], var_field: str, field: str, variables: Mapping[str, Any]
) -> Any:
    """The value of the setting a spec names in ``var_field`` (None when it names none),
    refusing a spec that also states ``field`` itself or names an unknown setting."""
    var = data.get(var_field)
    if var is None:
        return None
    if field in data:
        raise SpecError(f"{path}: give {var_field} or {field}, not both")
    if var not in variables:
        raise SpecError(f"{path}: {var_field} names {var!r}, which is not a setting")
    return variables[var]


def _resolve(path: Path, data: dict[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in what a spec takes from the settings: its horizon, its grain's features and level column."""
    data = dict(data)
    value = _setting(path, data, "horizon_var", "horizon_days", variables)
    if value is not None:
        period = PERIOD_DAYS[str(variables["demand_grain"])] if data.get("horizon_unit") == "period" else 1
        data["horizon_days"] = value * period
        if data.get("horizon_unit") == "period":
            data["horizon_periods"] = value
            data["period_days"] = period
            data["period"] = PERIOD_INTERVALS[str(variables["demand_grain"])]
            # Buckets of horizons for metrics and intervals: the first quarter, the first half, all.
            data.setdefault("horizon_buckets", sorted({math.ceil(value / 4), math.ceil(value / 2), value}))
    # Whether BG/NBD taken as it is is held to the customers' recent level: a setting.
    recent = data.pop("recent_level_var", None)
    if recent is not None:
        if recent not in variables:
            raise SpecError(f"{path}: recent_level_var names {recent!r}, which is not a setting")
        if not variables[recent]:
            data.pop("recent_column", None)
    k = _setting(path, data, "top_k_var", "top_k", variables)
    if k is not None:
        data["top_k"] = k
    features = data.get("features")
    if isinstance(features, dict) and "numeric_by_grain" in features:
        features = dict(features)
        by_grain = features.pop("numeric_by_grain") or {}
        features["numeric"] = [
            *features.get("numeric", []),
            *by_grain.get(str(variables["demand_grain"]), []),
        ]
        # A calendar or planned feature of another grain (the weekday by week) is no feature here.
        other_grains = {c for grain in by_grain.values() for c in grain or []} - set(features["numeric"])
        for subset in DRIFT_EXEMPT:
            features[subset] = [c for c in features.get(subset, []) if c not in other_grains]
        data["features"] = features
    for field in OFFSET_COLUMNS:
        if f"{field}_by_grain" in data:
            if field in data:
                raise SpecError(f"{path}: give {field}_by_grain or {field}, not both")
            by_grain = data.pop(f"{field}_by_grain")
            if not isinstance(by_grain, dict):
                raise SpecError(f"{path}: {field}_by_grain maps a grain (day, week, month) to a column")
            data[field] = by_grain.get(str(variables["demand_grain"]))
    return data


#: Spec fields renamed since a version may have been registered: old name -> new name.
#: A registered version's spec is read through these, so that after an upgrade its
#: champion can still be scored and evaluated against a new version.
RENAMED_FIELDS: dict[str, str] = {"refit_on_train_and_validation": "refit_before_test"}


def stored_spec(data: Mapping[str, Any]) -> ModelSpec:
    """The spec a registered version was trained with (``ml.model_versions.spec``), read
    under today's field names."""
    return ModelSpec.model_validate({RENAMED_FIELDS.get(k, k): v for k, v in data.items()})


def load_spec(path: Path, variables: Mapping[str, Any] | None = None) -> ModelSpec:
    """Read and validate one spec file, naming the file and field on error.

    ``variables`` are the effective settings (default: :func:`storecast.config.load_config`);
    the spec's horizon and grain-specific features are taken from them.
    """
    if variables is None:
        from storecast.config import load_config

        variables = load_config().values
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping of fields")
    try:
        spec = ModelSpec.model_validate(_resolve(path, data, variables))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(spec)'}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"{path}: {problems}") from None
    if spec.name != path.stem:
        raise SpecError(f"{path}: name is {spec.name!r} but the file is named {path.stem!r}")
    return spec


def load_specs(spec_dir: Path = SPEC_DIR, variables: Mapping[str, Any] | None = None) -> dict[str, ModelSpec]:
    """All specs in ``spec_dir``, by name (the explicit registry of models)."""
    if variables is None:
        from storecast.config import load_config

        variables = load_config().values
    return {path.stem: load_spec(path, variables) for path in sorted(spec_dir.glob("*.yml"))}


def model_specs(variables: Mapping[str, Any] | None = None) -> dict[str, ModelSpec]:
    """The shipped specs, resolved with ``variables`` (default: the effective settings)."""
    return load_specs(SPEC_DIR, variables)


def select_specs(
    names: list[str] | tuple[str, ...], variables: Mapping[str, Any] | None = None
) -> list[ModelSpec]:
    """The specs for ``names`` (all when empty), or a clear error for unknown names."""
    specs = model_specs(variables)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise SpecError(f"unknown model(s) {', '.join(unknown)}; known models: {', '.join(specs)}")
    return [specs[n] for n in names] if names else list(specs.values())
