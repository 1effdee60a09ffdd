"""BG/NBD's part in training the customer models: today's customers, read once and BG/NBD
fitted on them; the candidates that extrapolate in customer age; and the rate of recent
orders the candidates that take BG/NBD as it is are held to."""

from __future__ import annotations

from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from psycopg import sql
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.pipeline import Pipeline

from storecast.db import Conn
from storecast.training.btyd import PURCHASE_COLUMN, BTYDFeatures, CredibleValue, recent_level
from storecast.training.data import FeatureReader, Frame
from storecast.training.estimators import BTYD_AS_IS, BTYD_ONLY
from storecast.training.spec import Estimator, ModelSpec

F64 = npt.NDArray[np.float64]


def _latest_time(conn: Conn, spec: ModelSpec, on_or_before: date | None) -> date | None:
    """The spec's latest as-of date on or before ``on_or_before`` (any when None)."""
    row = conn.execute(
        sql.SQL("select max({t}) from {rel} where %s::date is null or {t} <= %s").format(
            t=sql.Identifier(spec.time_column), rel=sql.Identifier(*spec.relation.split(".", 1))
        ),
        [on_or_before, on_or_before],
    ).fetchone()
    latest = None if row is None else row[0]
    return latest if isinstance(latest, date) else None


class LatestCustomers(NamedTuple):
    """The customers as they stand on the latest as-of date (no label needed), read once
    for BG/NBD's fit, the age guard and the level."""

    frame: Frame  #: their features, and ``recent_column`` when the spec has one
    btyd: BTYDFeatures  #: BG/NBD (and Gamma-Gamma) fitted on them
    ages: F64  #: days since each one's first order
    on: date  #: that as-of date


def latest_customers(conn: Conn, spec: ModelSpec, as_of: date | None) -> LatestCustomers | None:
    """The customers as they stand on the latest as-of date on or before ``as_of`` (their
    features, ages and the date) and BG/NBD fitted on them, for the models with
    ``btyd_columns``; None for the others or without such a date."""
    if not spec.btyd_columns or not set(spec.btyd_columns) <= set(spec.features.numeric):
        return None
    latest_date = _latest_time(conn, spec, as_of)
    if latest_date is None:
        return None
    recent = [] if spec.recent_column is None else [spec.recent_column]
    latest = FeatureReader(conn, spec, [latest_date], with_label=False, extra_numeric=recent).read()
    ages = latest.features[spec.btyd_columns[2]].to_numpy(dtype=float)
    btyd = BTYDFeatures(horizon_days=spec.horizon_days).fit(latest.features[spec.btyd_columns])
    return LatestCustomers(latest, btyd, ages, latest_date)


def extrapolating_candidates(
    spec: ModelSpec, candidates: list[Estimator], latest_ages: F64, labelled: list[Frame]
) -> tuple[list[Estimator], str]:
    """The candidates to consider when today's customers are older than those with labels.

    Trees predict for an age beyond every training age what they predict at the oldest
    one; a single acquisition cohort scored long after its labels matured lies entirely
    there. Past ``age_extrapolation_share`` only the candidates built on BG/NBD, whose
    quantities follow age, are kept (when the spec has any); and of those only the ones
    that learn nothing from the labels when there are any: a level learned from matured
    labels is that of younger customers, while BG/NBD's own is fitted on today's, and the
    validation window, younger too, cannot tell the two apart. For a probability that
    means BG/NBD's own order of the customers, its level calibrated like any classifier's."""
    assert spec.btyd_columns is not None
    age = spec.btyd_columns[2]
    oldest = max(float(np.nanmax(f.features[age].to_numpy(dtype=float))) for f in labelled)
    share = float(np.mean(latest_ages > oldest)) if len(latest_ages) else 0.0
    extrapolating = [c for c in candidates if c in BTYD_ONLY]
    if share <= spec.age_extrapolation_share or not extrapolating:
        return candidates, ""
    as_is = [c for c in extrapolating if c in BTYD_AS_IS]
    # A probability keeps BG/NBD's order, a spend BG/NBD's expected spend; the level of
    # either comes from the rate of the customers' recent orders (recent_order_level), not the labels.
    kept_as_is = "in BG/NBD's own order" if spec.task == "binary" else "with no level learned from the labels"
    kept = as_is or extrapolating
    return kept, (
        f"{share:.0%} of the latest customers are older than every customer with a matured label "
        f"({age} > {oldest:.0f}; age_extrapolation_share {spec.age_extrapolation_share}): "
        f"only {', '.join(kept)} considered, which extrapolate in age"
        + (f" {kept_as_is}, fitted on today's customers" if as_is else "")
    )


#: The highest level held to. BG/NBD cannot follow customers whose buying fades with age,
#: so a cohort ordering less in the last weeks than BG/NBD expects is taken at its word;
#: one ordering more is more likely in its season than buying faster for good, and on the
#: customer benchmark every level above 1 took the mean probability further from the
#: actual rate (4 runs of 4), every one below 1 but one closer (docs/benchmark-notes.md).
MAX_RECENT_LEVEL = 1.0


def recent_order_level(conn: Conn, spec: ModelSpec, latest: LatestCustomers) -> tuple[float | None, str]:
    """:func:`~storecast.training.btyd.recent_level` of the customers on the latest as-of date
    at least ``recent_days`` before ``latest``'s, from their orders in ``recent_column`` on
    it, and a note saying so; None without such a date. A probability and a spend are held
    to the same rate of orders."""
    assert spec.recent_column is not None
    assert spec.btyd_columns is not None
    columns = spec.btyd_columns[:3]
    window = spec.recent_days
    start = _latest_time(conn, spec, latest.on - timedelta(days=window))
    if start is None:
        return None, f"level not held to the last {window} days: no as-of date that long before the latest"
    before = FeatureReader(conn, spec, [start], with_label=False, numeric=columns, categorical=[]).read()
    now = latest.frame
    entity = [k for k in spec.keys if k != spec.time_column]
    # A customer absent from the latest date (nothing in the lookback) did nothing since.
    recent = (
        now.features[spec.recent_column]
        .set_axis(pd.MultiIndex.from_frame(now.keys[entity]))
        .reindex(pd.MultiIndex.from_frame(before.keys[entity]))
        .fillna(0.0)
        .to_numpy(dtype=float)
    )
    measured = recent_level(before.features[columns], recent, (latest.on - start).days, window)
    level, held = held_level(measured)
    return level, (
        f"level {level:.3f}: the {len(recent):,} customers of {start} ordered {recent.sum():,.0f} times in the "
        f"{window} days to {latest.on} ({spec.recent_column}), {measured:.3f} times what BG/NBD fitted on them then "
        f"expected{held}"
    )


def held_level(measured: float) -> tuple[float, str]:
    """The level held to, at most :data:`MAX_RECENT_LEVEL`, and what the note adds when it
    was held there."""
    if measured <= MAX_RECENT_LEVEL:
        return measured, ""
    return MAX_RECENT_LEVEL, (
        f"; held at {MAX_RECENT_LEVEL:g}: more orders than BG/NBD expects are more likely the season "
        "than a cohort buying faster"
    )


def hold_to_recent_rate(conn: Conn, spec: ModelSpec, latest: LatestCustomers, pipeline: Pipeline) -> str:
    """Shift a calibrated BG/NBD probability's log odds so that today's customers' mean is
    BG/NBD's at the rate of their recent orders (:func:`recent_order_level`), and say so.

    The level is a rate: a customer buying ``level`` times as often as BG/NBD expects has
    ``(1 - p) ** level`` as the chance of no purchase in the horizon. The calibration on
    the validation window, whose customers are younger, keeps the shape of the map."""
    level, note = recent_order_level(conn, spec, latest)
    if level is None:
        return note
    today = latest.frame
    calibrated = pipeline.predict_proba(today.features[spec.feature_columns])[:, 1]
    assert spec.btyd_columns is not None
    bg_nbd = latest.btyd.transform(today.features[spec.btyd_columns])[:, PURCHASE_COLUMN]
    none = (1.0 - bg_nbd) ** level
    # A churn model's positive class is no purchase: its probability falls as BG/NBD's rises.
    with np.errstate(invalid="ignore"):  # a constant column has no correlation: purchase, then
        purchase = not bool(np.corrcoef(calibrated, bg_nbd)[0, 1] < 0)
    target = float(np.clip(np.mean(1.0 - none if purchase else none), 1e-6, 1 - 1e-6))
    odds = logit(np.clip(calibrated, 1e-9, 1 - 1e-9))
    shift = float(brentq(lambda d: float(np.mean(expit(odds + d))) - target, -30.0, 30.0))
    sigmoid = pipeline.named_steps["calibrate"].calibrated_classifiers_[0].calibrators[0]
    sigmoid.b_ -= shift  # its probability is expit(-(a * f + b))
    return (
        f"{note}; today's {len(calibrated):,} customers' mean probability {calibrated.mean():.3f} as "
        f"calibrated on validation, {target:.3f} at that rate (log odds {shift:+.3f})"
    )


def fit_notes(latest: LatestCustomers) -> str:
    """What training says of the fits on today's customers: a credibility estimate where
    Gamma-Gamma ran to its boundary, BG/NBD's shapes at their bounds or ``a`` held down."""
    value_model = latest.btyd.value_model_
    value_note = (
        "Gamma-Gamma's fit ran to its boundary (no spread of order values within customers to "
        f"shrink by): an order's value is a credibility estimate instead (k = {value_model.k:.2f}, "
        "training.btyd.CredibleValue)"
        if isinstance(value_model, CredibleValue)
        else ""
    )
    return "; ".join(filter(None, [value_note, latest.btyd.model_.fit_note()]))
