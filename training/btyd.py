"""Buy-till-you-die models: BG/NBD for purchases and Gamma-Gamma for spend.

The textbook probabilistic customer-base models (Fader, Hardie and Lee 2005): while
alive a customer buys at a Gamma-distributed Poisson rate, and after each purchase
drops out with a Beta-distributed probability; the value of a purchase varies around
a customer-specific mean (Gamma-Gamma). Both are fitted by maximum likelihood on one
summary per customer, need no features, and extrapolate in customer age by
construction, which is why they are the baseline a retailer compares a learned
customer model with, and are used here as such.

Inputs per customer, in days, as of a date ``T`` after the first purchase:
``x`` repeat purchases (purchase days after the first), ``t_x`` the age at the last
purchase, ``T`` the age now; for spend, ``m`` the mean value of the repeat purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD parameters: purchase rate Gamma(r, alpha), dropout Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

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
    def fit(cls, x: F64, t_x: F64, age: F64) -> BGNBD:
        """Maximum-likelihood parameters (optimised on their logarithms)."""

        def loss(log_params: F64) -> float:
            return -float(cls.log_likelihood(np.exp(log_params), x, t_x, age).mean())

        start = np.log([1.0, max(float(np.mean(age)), 1.0), 1.0, 1.0])
        result = minimize(
            loss, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-9}
        )
        r, alpha, a, b = np.exp(result.x)
        return cls(float(r), float(alpha), float(a), float(b))

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
        """Expected purchases in the next ``horizon`` days (the conditional expectation)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = horizon / (alpha + age + horizon)
        tail = ((alpha + age) / (alpha + age + horizon)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        numerator = (a + b + x - 1) / (a - 1) * (1.0 - tail)
        ratio = np.where(
            x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0
        )
        return np.asarray(numerator / (1.0 + ratio), dtype=np.float64)


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend parameters (p, q, gamma)."""

    p: float
    q: float
    gamma: float

    @classmethod
    def fit(cls, x: F64, m: F64) -> GammaGamma:
        """Maximum-likelihood parameters from customers with repeat purchases (``x > 0``)."""
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

    def expected_value(self, x: F64, m: F64) -> F64:
        """Expected value of a customer's future purchase, shrunk toward the population mean."""
        population = self.p * self.gamma / (self.q - 1) if self.q > 1 else float(np.mean(m[x > 0]))
        return np.asarray(
            np.where(x > 0, (self.gamma + m * x) * self.p / (self.p * x + self.q - 1), population),
            dtype=np.float64,
        )
