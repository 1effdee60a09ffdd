"""Which candidate a model keeps: the best on validation, or its default unless beaten beyond chance.

A validation window of a few periods tells close candidates apart little better than a
coin: on the weekly sets the demand blend alone forecast as well as the candidate chosen on
validation, or better, on every set (docs/benchmark-notes.md). A spec may name a
``default_candidate``; the best other candidate replaces it only when its gain on the
selection metric, paired by validation as-of date (each date's metric of the default less
the other's, for a metric where lower is better), has a one-sided :data:`LEVEL` t interval
above 0 over at least :data:`MIN_DATES` dates; with fewer dates the default is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

F64 = npt.NDArray[np.float64]

#: The one-sided confidence a gain over the default must have.
LEVEL = 0.95
#: Fewest validation dates a gain is judged on: below, the default is kept.
MIN_DATES = 3


@dataclass(frozen=True)
class Gain:
    """A candidate's gain over the default on validation, per date: mean, standard error
    (NaN with one date) and dates."""

    mean: float
    standard_error: float
    dates: int

    @property
    def beyond_chance(self) -> bool:
        """Whether the gain's one-sided :data:`LEVEL` t interval lies above 0."""
        if self.dates < MIN_DATES or not math.isfinite(self.standard_error):
            return False
        return self.mean - float(stats.t.ppf(LEVEL, self.dates - 1)) * self.standard_error > 0

    def __str__(self) -> str:
        spread = "" if not math.isfinite(self.standard_error) else f" ± {self.standard_error:.4f}"
        return f"{self.mean:+.4f}{spread} a date over {self.dates} date{'s' if self.dates != 1 else ''}"


def paired_gain(default: F64, other: F64, higher_is_better: bool) -> Gain:
    """The gain of ``other`` over ``default``, each the selection metric on the same
    validation dates in the same order."""
    gains = np.asarray(other - default if higher_is_better else default - other, dtype=np.float64)
    gains = gains[np.isfinite(gains)]
    n = len(gains)
    if n == 0:
        return Gain(float("nan"), float("nan"), 0)
    spread = float(gains.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return Gain(float(gains.mean()), spread, n)
