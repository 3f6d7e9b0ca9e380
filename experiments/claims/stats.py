"""Statistics the claims share: intervals over seeds, ratios of timed medians, log-log fits.

Everything here is deterministic: the bootstrap draws from a fixed seed, so the
report writes the same bytes from the same records.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95
BOOT_SEED = 20240601
N_BOOT = 4000

Z975 = float(scipy_stats.norm.ppf(0.975))


def t975(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom (scipy)."""
    if df < 1:
        return math.nan
    return float(scipy_stats.t.ppf(0.975, df))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a 95% interval (``lo``/``hi`` NaN when it cannot be formed) and its n."""

    value: float
    lo: float = math.nan
    hi: float = math.nan
    n: int = 1
    method: str = ""

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def width(self) -> float:
        return self.hi - self.lo if self.has_ci else math.inf

    def bounds(self) -> tuple[float, float]:
        """The interval, or the point itself twice when there is none."""
        return (self.lo, self.hi) if self.has_ci else (self.value, self.value)

    def map(self, fn) -> Estimate:
        """Apply a monotone function to the value and both bounds (a decreasing one, e.g. negation,
        swaps which bound is the lower)."""
        lo, hi = sorted((fn(self.lo), fn(self.hi))) if self.has_ci else (math.nan, math.nan)
        return Estimate(fn(self.value), lo, hi, self.n, self.method)


def _clean(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


def mean_ci(values: Sequence[float]) -> Estimate:
    """Mean and Student-t 95% interval (n >= 2); NaN interval for a single value."""
    arr = _clean(values)
    n = len(arr)
    if n == 0:
        return Estimate(math.nan, n=0, method="t")
    mean = float(arr.mean())
    if n < 2:
        return Estimate(mean, n=1, method="t")
    half = t975(n - 1) * float(arr.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, "t")


def bootstrap_ci(values: Sequence[float], stat=np.mean, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> Estimate:
    """Percentile bootstrap of ``stat`` (deterministic: fixed seed)."""
    arr = _clean(values)
    n = len(arr)
    if n == 0:
        return Estimate(math.nan, n=0, method="bootstrap")
    point = float(stat(arr))
    if n < 2:
        return Estimate(point, n=1, method="bootstrap")
    rng = np.random.default_rng(seed)
    draws = arr[rng.integers(0, n, size=(n_boot, n))]
    stats = np.apply_along_axis(stat, 1, draws) if stat is not np.mean else draws.mean(axis=1)
    lo, hi = np.quantile(stats, [(1 - LEVEL) / 2, 1 - (1 - LEVEL) / 2])
    return Estimate(point, float(lo), float(hi), n, "bootstrap")


def median_rel_se(median: float, iqr: float | None, n: int | None) -> float:
    """Relative standard error of a median of n timed steps, from their IQR (normal approximation:
    sd = IQR / 1.349, se(median) = 1.2533 sd / sqrt(n))."""
    if not median or iqr is None or not math.isfinite(iqr) or median <= 0:
        return math.nan
    n = max(int(n or 20), 1)
    return 1.2533 * (iqr / 1.349) / math.sqrt(n) / median


def ratio_estimate(num: float, den: float, rel_se_num: float = math.nan, rel_se_den: float = math.nan) -> Estimate:
    """num / den with a 95% interval on the log scale from the relative standard errors."""
    if not (num and den) or num <= 0 or den <= 0:
        return Estimate(math.nan, n=0, method="ratio")
    value = num / den
    se = math.sqrt(sum(s * s for s in (rel_se_num, rel_se_den) if math.isfinite(s)))
    if not (math.isfinite(rel_se_num) or math.isfinite(rel_se_den)):
        return Estimate(value, n=1, method="ratio")
    return Estimate(value, value * math.exp(-Z975 * se), value * math.exp(Z975 * se), 2, "ratio")


@dataclass(frozen=True)
class Fit:
    """y = a + slope * x, least squares, with a t interval on the slope."""

    slope: float
    intercept: float
    slope_lo: float
    slope_hi: float
    r2: float
    n: int

    def estimate(self) -> Estimate:
        return Estimate(self.slope, self.slope_lo, self.slope_hi, self.n, "ols")


def linear_fit(x: Sequence[float], y: Sequence[float]) -> Fit:
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    if n < 2 or np.ptp(xa) == 0:
        return Fit(math.nan, math.nan, math.nan, math.nan, math.nan, n)
    xm, ym = xa.mean(), ya.mean()
    sxx = float(((xa - xm) ** 2).sum())
    slope = float(((xa - xm) * (ya - ym)).sum() / sxx)
    intercept = float(ym - slope * xm)
    resid = ya - (intercept + slope * xa)
    sst = float(((ya - ym) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / sst if sst > 0 else 1.0
    if n < 3:
        return Fit(slope, intercept, math.nan, math.nan, r2, n)
    se = math.sqrt(float((resid**2).sum()) / (n - 2) / sxx)
    half = t975(n - 2) * se
    return Fit(slope, intercept, slope - half, slope + half, r2, n)


def loglog_fit(x: Sequence[float], y: Sequence[float]) -> Fit:
    """The exponent k of y ~ x^k: a line through (log x, log y)."""
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a and b and a > 0 and b > 0]
    if not pairs:
        return Fit(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
    xs, ys = zip(*pairs, strict=True)
    return linear_fit(np.log(xs), np.log(ys))


def local_exponents(x: Sequence[float], y: Sequence[float]) -> list[tuple[float, float, float]]:
    """(x_i, x_{i+1}, exponent between them) for consecutive points sorted by x."""
    pts = sorted((a, b) for a, b in zip(x, y, strict=True) if a and b and a > 0 and b > 0)
    out = []
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x1 > x0:
            out.append((x0, x1, math.log(y1 / y0) / math.log(x1 / x0)))
    return out


def wilson(k: int, n: int) -> Estimate:
    """A proportion k/n with Wilson's 95% score interval (scipy's ``binomtest``)."""
    if n == 0:
        return Estimate(math.nan, n=0, method="wilson")
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high), n, "wilson")


def exact_proportion(k: int, n: int) -> Estimate:
    """A proportion k/n with the exact (Clopper-Pearson) 95% interval: never narrower than Wilson's."""
    if n == 0:
        return Estimate(math.nan, n=0, method="exact")
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=LEVEL, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high), n, "exact")


def proportion_difference(k1: int, n1: int, k2: int, n2: int) -> Estimate:
    """p1 - p2 for two independent proportions, Newcombe's hybrid score interval (method 10):
    built from each proportion's Wilson interval, so it stays inside [-1, 1] and behaves at 0/n."""
    if n1 == 0 or n2 == 0:
        return Estimate(math.nan, n=0, method="newcombe")
    a, b = wilson(k1, n1), wilson(k2, n2)
    d = a.value - b.value
    lo = d - math.sqrt((a.value - a.lo) ** 2 + (b.hi - b.value) ** 2)
    hi = d + math.sqrt((a.hi - a.value) ** 2 + (b.value - b.lo) ** 2)
    return Estimate(d, max(-1.0, lo), min(1.0, hi), min(n1, n2), "newcombe")


def log_se(est: Estimate) -> float:
    """The standard error of log(value) behind a log-symmetric 95% interval (NaN without one)."""
    if not est.has_ci or est.value <= 0 or est.hi <= 0:
        return math.nan
    return math.log(est.hi / est.value) / Z975


def divide(a: Estimate, b: Estimate) -> Estimate:
    """a / b for positive estimates, the log standard errors combined in quadrature."""
    if not (a.value > 0 and b.value > 0):
        return Estimate(math.nan, n=0, method="ratio")
    value = a.value / b.value
    ses = [s for s in (log_se(a), log_se(b)) if math.isfinite(s)]
    if not ses:
        return Estimate(value, n=1, method="ratio")
    se = math.sqrt(sum(s * s for s in ses))
    return Estimate(value, value * math.exp(-Z975 * se), value * math.exp(Z975 * se), 2, "ratio")
