"""Buy-till-you-die models: BG/NBD for purchases and Gamma-Gamma for spend.

The textbook probabilistic customer-base models (Fader, Hardie and Lee 2005): while
alive a customer buys at a Gamma-distributed Poisson rate, and after each purchase
drops out with a Beta-distributed probability; the value of a purchase varies around
a customer-specific mean (Gamma-Gamma; where its likelihood has no maximum, a
credibility estimator fitted by moments). Both are fitted on one summary per customer,
need no features, and extrapolate in customer age by construction, which is why they
are the baseline a retailer compares a learned customer model with, and are used here
as such.

Inputs per customer, in days, as of a date ``T`` after the first purchase:
``x`` repeat purchases (purchase days after the first), ``t_x`` the age at the last
purchase, ``T`` the age now; for spend, ``m`` the mean value of the repeat purchases.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.preprocessing import StandardScaler

F64 = npt.NDArray[np.float64]
#: ONNX graph builders the value models take: an operator on named tensors, a float constant.
Node = Callable[..., str]
Const = Callable[[float], str]
# Bounds the terms the ONNX loop sums for the expectation, and so its work per customer
# at scoring: a purchase rate scale ``alpha`` under about 1 % of the horizon, or a dropout
# shape ``a`` in the hundreds, would need more (:meth:`BGNBD.series_terms`).
MAX_SERIES_TERMS = 1500
#: Terms summed past the point where the rest is bounded below the tolerance.
SPARE_SERIES_TERMS = 20
#: Most the expected purchases may lose to the series' truncation, in purchases (parity
#: asks 1e-3 of a spend or a count, relative).
MAX_TRUNCATION_ERROR = 1e-6
#: Range of the shapes (r, a, b) BG/NBD is fitted within (:meth:`BGNBD.fit`).
SHAPE_BOUNDS = (1e-3, 1e3)
# ``a = 1`` is a removable singularity of the expectation; keep the estimate off it.
_A_OFF_ONE = 1e-4


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD parameters: purchase rate Gamma(r, alpha), dropout Beta(a, b).
    ``held`` says the fit held ``a`` below its maximum-likelihood value (:meth:`fit`)."""

    r: float
    alpha: float
    a: float
    b: float
    held: bool = field(default=False, compare=False)

    @staticmethod
    def log_likelihood(params: F64, x: F64, t_x: F64, age: F64) -> F64:
        """Per-customer log-likelihood at ``params`` = (r, alpha, a, b)."""
        r, alpha, a, b = params
        common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        stayed = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + age)
        dropped = np.where(
            x > 0,
            betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
        return np.asarray(common + np.logaddexp(stayed, dropped), dtype=np.float64)

    @classmethod
    def fit(cls, x: F64, t_x: F64, age: F64, horizon: float | None = None) -> BGNBD:
        """Maximum-likelihood parameters (optimised on their logarithms). With a
        ``horizon``, the dropout shape ``a`` is held down until the expected purchases over
        it lose at most :data:`MAX_TRUNCATION_ERROR` in :data:`MAX_SERIES_TERMS` terms
        (:meth:`truncation_error`), so that they score alike in ONNX: on a few dozen
        customers ``a`` can run to the hundreds; converged fits on a few hundred or more
        never need it."""

        def loss(log_params: F64) -> float:
            return -float(cls.log_likelihood(np.exp(log_params), x, t_x, age).mean())

        start = np.log([1.0, max(float(np.mean(age)), 1.0), 1.0, 1.0])
        # The shapes bounded: on a few dozen customers, or customers all alike, the fit runs
        # off to a Gamma or a Beta of no spread (a shape in the millions, its ratio to the
        # scale fixed) or to a dropout that never happens (a near 0), and the expected
        # purchases come out NaN. A shape of a thousand is no spread already.
        low, high = (math.log(bound) for bound in SHAPE_BOUNDS)
        max_a = high
        while True:
            result = minimize(
                loss,
                start,
                method="Nelder-Mead",
                bounds=[(low, high), (None, None), (low, max_a), (low, high)],
                options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9},
            )
            r, alpha, a, b = np.exp(result.x)
            if abs(a - 1.0) < _A_OFF_ONE:
                a = 1.0 + _A_OFF_ONE
            model = cls(float(r), float(alpha), float(a), float(b), held=max_a < high)
            # On a few dozen customers a can run to the hundreds, and the series' terms
            # grow by about z * a each before they shrink: tens of thousands of them.
            if horizon is None or model.truncation_error(horizon) <= MAX_TRUNCATION_ERROR or max_a <= low:
                return model
            max_a = max(math.log(a / 2.0), low)
            start = result.x.copy()
            start[2] = max_a

    def p_alive(self, x: F64, t_x: F64, age: F64) -> F64:
        """Probability that the customer has not dropped out by ``age``."""
        ratio = np.where(
            x > 0,
            self.a
            / np.maximum(self.b + x - 1, 1e-12)
            * ((self.alpha + age) / (self.alpha + t_x)) ** (self.r + x),
            0.0,
        )
        return np.asarray(1.0 / (1.0 + ratio), dtype=np.float64)

    def p_purchase(self, x: F64, t_x: F64, age: F64, horizon: float) -> F64:
        """Probability of at least one purchase in the next ``horizon`` days."""
        none_if_alive = ((self.alpha + age) / (self.alpha + age + horizon)) ** (self.r + x)
        return np.asarray(self.p_alive(x, t_x, age) * (1.0 - none_if_alive), dtype=np.float64)

    def expected_purchases(self, x: F64, t_x: F64, age: F64, horizon: float) -> F64:
        """Expected purchases in the next ``horizon`` days (the conditional expectation).

        The textbook form has ``((alpha + T) / (alpha + T + h)) ** (r + x) * 2F1(r + x,
        b + x; a + b + x - 1; z)`` with ``z = h / (alpha + T + h)``; Euler's transformation
        turns it into ``(1 - z) ** (a - 1) * 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)``,
        whose first two parameters do not grow with ``x``, so it stays finite for frequent
        buyers and its series converges like ``z ** k`` (which the ONNX form sums).
        """
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = horizon / (alpha + age + horizon)
        tail = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        return np.asarray(
            (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail) * self.p_alive(x, t_x, age), dtype=np.float64
        )

    def _slowest_z(self, horizon: float) -> float:
        """``z`` of the slowest customer, age 0: the largest any customer has."""
        return horizon / (self.alpha + horizon)

    def _slowest_series(self, horizon: float) -> Iterator[tuple[int, float, float]]:
        """The transformed series of the slowest customer, term by term: how many terms,
        their sum, and a bound on the rest (infinite while the terms may still grow).

        The slowest customer has no repeat purchase and an age of 0 (``z`` largest, ``C``
        smallest). Each later term is the last times ``z (A + j) (B + j) / ((j + 1) (C +
        j))``, at most ``q`` times it, so what remains is at most ``term * q / (1 - q)``.
        """
        z = self._slowest_z(horizon)
        big_a, big_b = self.a + self.b - 1.0 - self.r, self.a - 1.0
        c = self.a + self.b - 1.0
        term = total = 1.0
        for k in range(MAX_SERIES_TERMS):
            term *= z * (big_a + k) * (big_b + k) / ((k + 1.0) * (c + k))
            total += term
            j = k + 1.0
            q = z * max(1.0, abs(big_a + j) / (c + j)) * max(1.0, abs(big_b + j) / (j + 1.0))
            yield k + 1, total, abs(term) * q / (1.0 - q) if q < 1.0 else math.inf

    def series_terms(self, horizon: float, tolerance: float = 1e-10) -> int:
        """Terms of the transformed series that bring its remainder under ``tolerance``
        (relative to its sum) for every customer, at most :data:`MAX_SERIES_TERMS`."""
        for terms, total, rest in self._slowest_series(horizon):
            if rest <= tolerance * abs(total):
                return min(terms + SPARE_SERIES_TERMS, MAX_SERIES_TERMS)
        return MAX_SERIES_TERMS

    def truncation_error(self, horizon: float) -> float:
        """A bound on what the expected purchases of the slowest customer lose when the
        series stops at :data:`MAX_SERIES_TERMS` terms, in purchases."""
        *_, (_, _, rest) = self._slowest_series(horizon)
        z = self._slowest_z(horizon)
        return float(abs((self.a + self.b - 1.0) / (self.a - 1.0)) * (1.0 - z) ** (self.a - 1.0) * rest)

    def fit_note(self) -> str:
        """What the customers did not tell the fit, for the training output: shapes at the
        ends of :data:`SHAPE_BOUNDS`, ``a`` held down; empty when neither."""
        low, high = SHAPE_BOUNDS
        bounded = [
            f"{name} = {value:g}"
            for name, value in (("r", self.r), ("a", self.a), ("b", self.b))
            if not low * 1.001 < value < high / 1.001
        ]
        notes = []
        if bounded:
            notes.append(
                f"BG/NBD's fit reached the bounds of its shapes ({', '.join(bounded)}): too few customers, "
                "or customers too alike, to tell their purchase rates or dropout apart"
            )
        if self.held:
            notes.append(
                f"BG/NBD's dropout shape held at a = {self.a:.3g} so that its expected purchases fit the "
                f"ONNX series ({MAX_SERIES_TERMS:,} terms)"
            )
        return "; ".join(notes)


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters (p, q, gamma).

    ``x`` is the number of purchases whose mean value is ``m``: the textbook counts the
    repeat purchases and their mean; :class:`BTYDFeatures` every order and the mean of
    every order. The likelihood takes ``m`` as the mean of ``x`` values, so the two must
    count the same purchases."""

    p: float
    q: float
    gamma: float

    @classmethod
    def fit(cls, x: F64, m: F64) -> GammaGamma:
        """Maximum-likelihood parameters from the customers with a purchase (``x > 0``)."""
        keep = (x > 0) & (m > 0)
        x, m = x[keep], m[keep]

        def loss(log_params: F64) -> float:
            p, q, g = np.exp(log_params)
            ll = (
                gammaln(p * x + q)
                - gammaln(p * x)
                - gammaln(q)
                + q * np.log(g)
                + (p * x - 1) * np.log(m)
                + p * x * np.log(x)
                - (p * x + q) * np.log(g + m * x)
            )
            return -float(ll.mean())

        start = np.log([1.0, 2.0, max(float(np.mean(m)), 1.0)])
        result = minimize(
            loss, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9}
        )
        p, q, g = np.exp(result.x)
        return cls(float(p), float(q), float(g))

    @property
    def population_value(self) -> float:
        """Mean value of a purchase across customers (for those without a repeat purchase)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else 0.0

    def expected_value(self, x: F64, m: F64) -> F64:
        """Expected value of a customer's future purchase, shrunk toward the population mean."""
        shrunk = (self.gamma + m * x) * self.p / np.maximum(self.p * x + self.q - 1, 1e-12)
        return np.asarray(np.where(x > 0, shrunk, self.population_value), dtype=np.float64)

    @property
    def at_boundary(self) -> bool:
        """Whether the fit ran off to no spread within customers (``p`` without bound):
        then it shrinks nobody, and takes a one-time buyer's order for their value."""
        return self.p > MAX_GAMMA_GAMMA_P

    def onnx_value(self, x: str, m: str, node: Node, const: Const) -> str:
        """:meth:`expected_value` as ONNX operators on the ``x`` and ``m`` tensors."""
        p, q, g = self.p, self.q, self.gamma
        shrunk = node(
            "Div",
            [
                node("Mul", [node("Add", [const(g), node("Mul", [m, x])]), const(p)]),
                node("Max", [node("Add", [node("Mul", [x, const(p)]), const(q - 1.0)]), const(1e-12)]),
            ],
        )
        return node("Where", [node("Greater", [x, const(0.0)]), shrunk, const(self.population_value)])


@dataclass(frozen=True)
class CredibleValue:
    """A customer's mean order value shrunk toward the population's by credibility weights.

    Where Gamma-Gamma runs to its boundary (:attr:`GammaGamma.at_boundary`: one product at
    one price, so that many customers' orders are all worth the same and its likelihood
    grows without bound), an estimator fitted by moments, which point masses do not break.
    On logs of the mean order values ``l`` over ``n`` orders: across customers
    ``(l - mu) ** 2`` is ``between + within / n`` on average, so a least-squares fit on
    ``1 / n`` gives both variances, and each customer's log value is shrunk to
    ``mu + n / (n + k) * (l - mu)`` with ``k = within / between`` (Buhlmann credibility).
    ``scale`` maps the back-transformed values to money: the orders' total over what the
    shrunk values give the same orders."""

    mu: float
    k: float
    scale: float

    @classmethod
    def fit(cls, n: F64, m: F64) -> CredibleValue:
        """Moments from the customers with an order of positive value."""
        keep = (n > 0) & (m > 0)
        n, m = n[keep], m[keep]
        logs = np.log(m)
        mu = float(logs.mean()) if len(logs) else 0.0
        k = 0.0
        # One order count for everyone leaves the two variances apart unknown: no shrinkage.
        if len(n) > 2 and np.ptp(n) > 0:
            (between, within), *_ = np.linalg.lstsq(
                np.column_stack([np.ones(len(n)), 1.0 / n]), (logs - mu) ** 2, rcond=None
            )
            k = float(max(within, 0.0) / max(between, 1e-12))
        shrunk = cls(mu, k, 1.0).expected_value(n, m)
        scale = float((n * m).sum() / (n * shrunk).sum()) if len(n) else 1.0
        return cls(mu, k, scale)

    @property
    def population_value(self) -> float:
        """The value of a customer without an order of positive value."""
        return self.scale * math.exp(self.mu)

    def expected_value(self, x: F64, m: F64) -> F64:
        """Each customer's value of an order, from ``m`` over ``x`` orders, shrunk."""
        known = (x > 0) & (m > 0)
        logs = np.log(np.where(known, m, 1.0))
        shrunk = self.scale * np.exp(self.mu + x / (x + self.k + 1e-12) * (logs - self.mu))
        return np.asarray(np.where(known, shrunk, self.population_value), dtype=np.float64)

    def onnx_value(self, x: str, m: str, node: Node, const: Const) -> str:
        """:meth:`expected_value` as ONNX operators on the ``x`` and ``m`` tensors."""
        zero = const(0.0)
        known = node("And", [node("Greater", [x, zero]), node("Greater", [m, zero])])
        logs = node("Log", [node("Where", [known, m, const(1.0)])])
        weight = node("Div", [x, node("Add", [x, const(self.k + 1e-12)])])
        shrunk = node(
            "Mul",
            [
                const(self.scale),
                node(
                    "Exp",
                    [
                        node(
                            "Add",
                            [const(self.mu), node("Mul", [weight, node("Sub", [logs, const(self.mu)])])],
                        )
                    ],
                ),
            ],
        )
        return node("Where", [known, shrunk, const(self.population_value)])


#: A mean order value's model: Gamma-Gamma, or where it runs to its boundary, credibility.
ValueModel = GammaGamma | CredibleValue
#: Gamma-Gamma's ``p`` beyond which its fit has run to the boundary: fits that converge
#: put it at 1-25 on every base tried; those that do not, at 5e6 and above.
MAX_GAMMA_GAMMA_P = 1e4


def _value_model(orders: F64, values: F64) -> ValueModel:
    """Gamma-Gamma on every order and its mean, or credibility where it runs to its boundary."""
    fitted = GammaGamma.fit(orders, values)
    return CredibleValue.fit(orders, values) if fitted.at_boundary else fitted


class BTYDFeatures(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """BG/NBD quantities as features, inside the exported pipeline.

    Takes three columns, ``[orders, recency_days, age_days]`` (orders before the as-of
    date, days since the last and since the first of them), fits BG/NBD on the training
    rows and returns ``[p_alive, p_purchase, expected_purchases]`` over ``horizon_days``.
    With a fourth column, the mean order value, Gamma-Gamma is fitted too and
    ``[expected_spend, log1p(expected_spend)]`` follow (expected purchases times the
    Gamma-Gamma value of a purchase). The mean is of every order, first included, so
    Gamma-Gamma counts every order: counting the repeat ones only would take a mean of two
    orders for the mean of one, so that the fit sees almost no spread within customers (p
    in the millions: no shrinkage) and gives every one-time buyer the population's value,
    whatever their order was worth (docs/benchmark-notes.md). Where the fit still runs to
    its boundary (:attr:`GammaGamma.at_boundary`), the value is :class:`CredibleValue`'s.
    ``fitted`` is a BG/NBD fitted elsewhere (training fits it on the customers as they
    stand on the latest as-of date, which needs no label, rather than on the older rows
    whose labels have matured). The expected purchases are the exact conditional
    expectation, dropout within the horizon included (in ONNX as a truncated series, see
    :meth:`BGNBD.expected_purchases`).
    Repeat purchases are orders after the first (``orders - 1``).
    ``outputs`` keeps only those output columns, by position (e.g. ``(PURCHASE_COLUMN,)``
    for the probability of a purchase alone); all of them by default.
    """

    def __init__(
        self,
        horizon_days: int = 30,
        max_fit_rows: int = 50_000,
        fitted: BGNBD | None = None,
        fitted_value: ValueModel | None = None,
        outputs: tuple[int, ...] | None = None,
    ) -> None:
        self.horizon_days = horizon_days
        self.max_fit_rows = max_fit_rows
        self.fitted = fitted
        self.fitted_value = fitted_value
        self.outputs = outputs

    @staticmethod
    def _summaries(features: npt.ArrayLike) -> tuple[F64, F64, F64]:
        data = np.asarray(features, dtype=np.float64)
        x = np.maximum(np.nan_to_num(data[:, 0]) - 1.0, 0.0)
        age = np.maximum(np.nan_to_num(data[:, 2]), 0.0)
        t_x = np.clip(age - np.nan_to_num(data[:, 1]), 0.0, age)
        return x, t_x, age

    @staticmethod
    def _orders(data: F64) -> F64:
        """Orders per row, the purchases the mean order value is over."""
        return np.maximum(np.nan_to_num(data[:, 0]), 0.0)

    def fit(self, features: npt.ArrayLike, y: object = None) -> BTYDFeatures:
        """Fit BG/NBD (and with a fourth column Gamma-Gamma) on (a sample of) the rows,
        unless they were given already fitted."""
        data = np.asarray(features, dtype=np.float64)
        if len(data) > self.max_fit_rows:
            data = data[np.random.default_rng(0).choice(len(data), self.max_fit_rows, replace=False)]
        x, t_x, age = self._summaries(data)
        self.model_ = (
            self.fitted if self.fitted is not None else BGNBD.fit(x, t_x, age, float(self.horizon_days))
        )
        self.value_model_: ValueModel | None = None
        if data.shape[1] > 3:
            self.value_model_ = (
                self.fitted_value
                if self.fitted_value is not None
                else _value_model(self._orders(data), np.nan_to_num(data[:, 3]))
            )
        return self

    def transform(self, features: npt.ArrayLike) -> F64:
        """``[p_alive, p_purchase, expected_purchases]`` per row (then the spend columns;
        only ``outputs`` when given)."""
        data = np.asarray(features, dtype=np.float64)
        x, t_x, age = self._summaries(data)
        model, h = self.model_, float(self.horizon_days)
        alive = model.p_alive(x, t_x, age)
        purchase = model.p_purchase(x, t_x, age, h)
        columns = [alive, purchase]
        if self.needs_expectation:
            expected = model.expected_purchases(x, t_x, age, h)
            columns.append(expected)
            if self.value_model_ is not None:
                value = self.value_model_.expected_value(self._orders(data), np.nan_to_num(data[:, 3]))
                spend = expected * value
                columns += [spend, np.log1p(spend)]
        return np.column_stack(columns if self.outputs is None else [columns[i] for i in self.outputs])

    @property
    def needs_expectation(self) -> bool:
        """Whether an output reads the expected purchases (a series per row, most of the
        work and of the ONNX graph): not when only the probabilities are kept."""
        return self.outputs is None or max(self.outputs) >= 2

    def get_feature_names_out(self, input_features: object = None) -> npt.NDArray[np.str_]:
        """Names of the output columns."""
        names = ["btyd_p_alive", "btyd_p_purchase", "btyd_expected_purchases"]
        if getattr(self, "value_model_", None) is not None:
            names += ["btyd_expected_spend", "btyd_log_expected_spend"]
        return np.array(names if self.outputs is None else [names[i] for i in self.outputs])


#: Where :class:`BTYDFeatures` puts the probability of a purchase among its outputs.
PURCHASE_COLUMN = 1
#: Where :class:`BTYDFeatures` puts the expected spend among its five outputs.
EXPECTED_SPEND_COLUMN = 3


class ExpectedSpend(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """BG/NBD + Gamma-Gamma's expected spend as the prediction, with nothing learned.

    Follows :class:`BTYDFeatures` (with a mean order value, so five columns) and passes
    its expected spend through, times ``level``. A model learned on matured labels fits
    the level of the customers those labels come from, younger than today's when one
    acquisition cohort is scored long after; this one extrapolates in age by
    construction, and its level, which drifts as a cohort ages, is read from today's
    customers' recent orders (:func:`recent_level`), not from the labels. Kept as a linear
    model (``coef_`` picks the column and holds the level, ``intercept_`` is 0) so that
    ONNX export and explanations treat it as one.
    """

    def __init__(self, level: float = 1.0) -> None:
        self.level = level

    def fit(self, features: npt.ArrayLike, y: object = None) -> ExpectedSpend:
        """Check the input is :class:`BTYDFeatures`' spend output; nothing is estimated."""
        width = np.asarray(features).shape[1]
        if width != 5:
            raise ValueError(
                f"ExpectedSpend takes BTYDFeatures' five outputs (with a mean order value), got {width} columns"
            )
        self.n_features_in_ = width
        return self.at_level(self.level)

    def at_level(self, level: float) -> ExpectedSpend:
        """Predict ``level`` times the expected spend from now on (training sets it from
        :func:`recent_level`, after fitting, since it is read from the latest customers)."""
        self.level = level
        self.coef_ = np.zeros(self.n_features_in_)
        self.coef_[EXPECTED_SPEND_COLUMN] = level
        self.intercept_ = 0.0
        return self

    def predict(self, features: npt.ArrayLike) -> F64:
        """The expected spend column."""
        return np.asarray(
            np.asarray(features, dtype=np.float64) @ self.coef_ + self.intercept_, dtype=np.float64
        )


#: The least spread a BG/NBD quantity is scaled by, relative to its largest size. ONNX
#: hands the quantities on in float32 (a resolution of 6e-8 at 1): where BG/NBD's fit runs
#: to a bound of its shapes, everyone's probability alive can lie within a millionth of 1,
#: and divided by that spread a rounding became a hundredth of a standard deviation, the
#: calibrated probability 0.0007 from scikit-learn's.
MIN_RELATIVE_SPREAD = 1e-3


class BTYDScaler(StandardScaler):  # type: ignore[misc]
    """:class:`~sklearn.preprocessing.StandardScaler` for BG/NBD's quantities, its scale at
    least :data:`MIN_RELATIVE_SPREAD` of each column's largest absolute value: a spread
    float32 cannot hold carries nothing a model should weigh."""

    def fit(
        self,
        X: npt.ArrayLike,  # noqa: N803 (scikit-learn's name, passed by keyword)
        y: object = None,
        sample_weight: npt.ArrayLike | None = None,
    ) -> BTYDScaler:
        """Fit as StandardScaler does, then raise each scale to the floor."""
        super().fit(X, y, sample_weight)
        size = np.abs(np.asarray(X, dtype=np.float64)).max(axis=0, initial=0.0)
        scale: F64 = self.scale_  # type: ignore[has-type]
        self.scale_ = np.maximum(scale, MIN_RELATIVE_SPREAD * size)
        return self


def recent_level(
    at_start: npt.ArrayLike, recent: npt.ArrayLike, elapsed_days: float, window_days: float
) -> float:
    """Orders in the latest ``window_days`` over those expected by BG/NBD fitted on the
    customers as they stood ``elapsed_days`` ago.

    ``at_start`` holds :class:`BTYDFeatures` columns then (orders, recency, age; a fourth,
    the mean order value, is not used) and ``recent`` each customer's orders in the window.

    BG/NBD's level is right on average over the customers it is fitted on, and drifts as
    one cohort ages: a customer with no repeat purchase is certainly alive to it, and a
    customer whose buying fades rather than stops is fitted as one who buys steadily. A
    label matures a whole horizon after its as-of date, so the latest matured window
    shows the drift of younger customers; the last weeks show today's. It is a level of
    orders only: Gamma-Gamma takes each customer's mean order value as stable over time,
    and what an order is worth in the last weeks moves with the season rather than age.
    """
    data = np.asarray(at_start, dtype=np.float64)[:, :3]
    if not 0 < window_days <= elapsed_days:
        raise ValueError(f"the window ({window_days} days) must end the {elapsed_days} days elapsed")
    model = BTYDFeatures().fit(data).model_
    x, t_x, age = BTYDFeatures._summaries(data)
    expected = model.expected_purchases(x, t_x, age, elapsed_days) - model.expected_purchases(
        x, t_x, age, elapsed_days - window_days
    )
    total = float(np.sum(expected))
    return float(np.sum(np.asarray(recent, dtype=np.float64))) / total if total > 0 else 1.0


def _btyd_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    rows = operator.inputs[0].get_first_dimension()
    width = len(operator.raw_operator.get_feature_names_out())
    operator.outputs[0].type = FloatTensorType([rows, width])


def _btyd_converter(scope: Any, operator: Any, container: Any) -> None:
    """The transform of :class:`BTYDFeatures` in ONNX operators (float32)."""
    from onnx import TensorProto

    model: BGNBD = operator.raw_operator.model_
    value_model: ValueModel | None = operator.raw_operator.value_model_
    h = float(operator.raw_operator.horizon_days)
    names = [i.full_name for i in operator.inputs]
    n = itertools.count()

    def name(stem: str) -> str:
        return str(scope.get_unique_variable_name(f"btyd_{stem}_{next(n)}"))

    def const(value: float) -> str:
        out = name("const")
        container.add_initializer(out, TensorProto.FLOAT, [], [value])
        return out

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        container.add_node(op, inputs, [out], name=scope.get_unique_operator_name(f"Btyd{op}"), **attrs)
        return out

    data = names[0] if len(names) == 1 else node("Concat", names, axis=1)
    data = node("Cast", [data], to=TensorProto.FLOAT)
    columns = [
        node(
            "Slice",
            [
                data,
                _const_i(container, scope, [i]),
                _const_i(container, scope, [i + 1]),
                _const_i(container, scope, [1]),
            ],
        )
        for i in range(3 if value_model is None else 4)
    ]
    zero = const(0.0)
    orders, recency, age, *value = (
        node("Max", [node("Where", [node("IsNaN", [c]), zero, c]), zero]) for c in columns
    )
    x = node("Max", [node("Sub", [orders, const(1.0)]), zero])
    t_x = node("Min", [node("Max", [node("Sub", [age, recency]), zero]), age])
    alpha_age = node("Add", [age, const(model.alpha)])
    r_x = node("Add", [x, const(model.r)])
    ratio = node("Pow", [node("Div", [alpha_age, node("Add", [t_x, const(model.alpha)])]), r_x])
    odds = node(
        "Mul",
        [
            node(
                "Div", [const(model.a), node("Max", [node("Add", [x, const(model.b - 1.0)]), const(1e-12)])]
            ),
            ratio,
        ],
    )
    odds = node("Where", [node("Greater", [x, zero]), odds, zero])
    alive = node("Div", [const(1.0), node("Add", [const(1.0), odds])])
    stays = node("Pow", [node("Div", [alpha_age, node("Add", [alpha_age, const(h)])]), r_x])
    purchase = node("Mul", [alive, node("Sub", [const(1.0), stays])])
    outputs = [alive, purchase]
    features: BTYDFeatures = operator.raw_operator
    if features.needs_expectation:
        expected = _expected_purchases(model, h, x, age, alive, node, container, name)
        outputs.append(expected)
        if value_model is not None:
            purchase_value = value_model.onnx_value(orders, value[0], node, const)
            spend = node("Mul", [expected, purchase_value])
            outputs += [spend, node("Log", [node("Add", [spend, const(1.0)])])]
    if features.outputs is not None:
        outputs = [outputs[i] for i in features.outputs]
    container.add_node(
        "Concat",
        outputs,
        [operator.outputs[0].full_name],
        axis=1,
        name=scope.get_unique_operator_name("BtydOut"),
    )


def _expected_purchases(
    model: BGNBD, h: float, x: str, age: str, alive: str, node: Any, container: Any, name: Any
) -> str:
    """:meth:`BGNBD.expected_purchases` as operators: the transformed series summed term
    by term in float64 (only ``C = a + b + x - 1`` and ``z`` vary per customer, so each
    term is the last times ``z (A + k) (B + k) / ((k + 1) (C + k))``).

    The terms are one ``Loop`` whose body computes a term, not a handful of operators
    per term: unrolled, a fit whose series needs a thousand terms made a graph of
    thousands of nodes, which skl2onnx took ten seconds to assemble (its node checks grow
    with the graph) and ONNX Runtime a second to load.
    """
    from onnx import TensorProto, helper

    def const(value: float) -> str:
        out = str(name("const64"))
        container.add_initializer(out, TensorProto.DOUBLE, [], [value])
        return out

    r, alpha, a, b = model.r, model.alpha, model.a, model.b
    x64 = node("Cast", [x], to=TensorProto.DOUBLE)
    age64 = node("Cast", [age], to=TensorProto.DOUBLE)
    z = node("Div", [const(h), node("Add", [age64, const(alpha + h)])])
    c = node("Add", [x64, const(a + b - 1.0)])
    first = node("Add", [node("Mul", [x64, const(0.0)]), const(1.0)])
    # z and C are carried through the loop unchanged, so that the graph's order sees the
    # loop read them; the body reads only constants from the graph around it.
    big_a, big_b, one = const(a + b - 1.0 - r), const(a - 1.0), const(1.0)
    stem = str(name("series"))

    def body_name(part: str) -> str:
        return f"{stem}_{part}"

    k, term, total, z_in, c_in = (body_name(part) for part in ("k", "term", "total", "z", "c"))
    body = helper.make_graph(
        [
            helper.make_node("Cast", [body_name("iteration")], [k], to=TensorProto.DOUBLE),
            helper.make_node("Add", [k, big_a], [body_name("a_k")]),
            helper.make_node("Add", [k, big_b], [body_name("b_k")]),
            helper.make_node("Add", [k, one], [body_name("k_1")]),
            helper.make_node("Mul", [body_name("a_k"), body_name("b_k")], [body_name("ab_k")]),
            helper.make_node("Div", [body_name("ab_k"), body_name("k_1")], [body_name("factor")]),
            helper.make_node("Mul", [term, z_in], [body_name("term_z")]),
            helper.make_node("Mul", [body_name("term_z"), body_name("factor")], [body_name("scaled")]),
            helper.make_node("Add", [c_in, k], [body_name("c_k")]),
            helper.make_node("Div", [body_name("scaled"), body_name("c_k")], [body_name("next_term")]),
            helper.make_node("Add", [total, body_name("next_term")], [body_name("next_total")]),
            helper.make_node("Identity", [body_name("cond")], [body_name("cond_out")]),
            helper.make_node("Identity", [z_in], [body_name("z_out")]),
            helper.make_node("Identity", [c_in], [body_name("c_out")]),
        ],
        stem,
        [
            helper.make_tensor_value_info(body_name("iteration"), TensorProto.INT64, []),
            helper.make_tensor_value_info(body_name("cond"), TensorProto.BOOL, []),
            helper.make_tensor_value_info(term, TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(total, TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(z_in, TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(c_in, TensorProto.DOUBLE, None),
        ],
        [
            helper.make_tensor_value_info(body_name("cond_out"), TensorProto.BOOL, []),
            helper.make_tensor_value_info(body_name("next_term"), TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(body_name("next_total"), TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(body_name("z_out"), TensorProto.DOUBLE, None),
            helper.make_tensor_value_info(body_name("c_out"), TensorProto.DOUBLE, None),
        ],
    )
    terms, keep_going = str(name("terms")), str(name("keep_going"))
    container.add_initializer(terms, TensorProto.INT64, [], [model.series_terms(h)])
    container.add_initializer(keep_going, TensorProto.BOOL, [], [True])
    series = [str(name(part)) for part in ("last_term", "total", "z", "c")]
    container.add_node("Loop", [terms, keep_going, first, first, z, c], series, name=stem, body=body)
    tail = node("Mul", [node("Pow", [node("Sub", [const(1.0), z]), const(a - 1.0)]), series[1]])
    given_alive = node("Mul", [node("Div", [c, const(a - 1.0)]), node("Sub", [const(1.0), tail])])
    return str(node("Mul", [node("Cast", [given_alive], to=TensorProto.FLOAT), alive]))


def _const_i(container: Any, scope: Any, values: list[int]) -> str:
    """An int64 initializer (Slice's starts, ends and axes)."""
    from onnx import TensorProto

    out = str(scope.get_unique_variable_name("btyd_index"))
    container.add_initializer(out, TensorProto.INT64, [len(values)], values)
    return out


def register_btyd_converter() -> None:
    """Teach skl2onnx :class:`BTYDFeatures`, :class:`BTYDScaler` and :class:`ExpectedSpend` (idempotent)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    from skl2onnx.operator_converters.linear_regressor import convert_sklearn_linear_regressor
    from skl2onnx.operator_converters.scaler_op import convert_sklearn_scaler
    from skl2onnx.shape_calculators.scaler import calculate_sklearn_scaler_output_shapes

    update_registered_converter(BTYDFeatures, "StorecastBTYDFeatures", _btyd_shape, _btyd_converter)
    update_registered_converter(
        BTYDScaler,
        "StorecastBTYDScaler",
        calculate_sklearn_scaler_output_shapes,
        convert_sklearn_scaler,
        options={"div": ["std", "div", "div_cast"]},
    )
    update_registered_converter(
        ExpectedSpend,
        "StorecastExpectedSpend",
        calculate_linear_regressor_output_shapes,
        convert_sklearn_linear_regressor,
    )
