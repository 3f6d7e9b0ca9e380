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

LEVEL = 0.95
BOOT_SEED = 20240601
N_BOOT = 4000

# Two-sided 97.5% quantiles of Student's t (df 1..30); beyond, the normal's 1.96.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    if df < 1:
        return math.nan
    return _T975[df - 1] if df <= len(_T975) else 1.96


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
        """Apply a monotone increasing function to the value and both bounds."""
        lo, hi = (fn(self.lo), fn(self.hi)) if self.has_ci else (math.nan, math.nan)
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
    return Estimate(value, value * math.exp(-1.96 * se), value * math.exp(1.96 * se), 2, "ratio")


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
    """A proportion k/n with Wilson's 95% interval."""
    if n == 0:
        return Estimate(math.nan, n=0, method="wilson")
    z = 1.96
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson")


def log_se(est: Estimate) -> float:
    """The standard error of log(value) behind a log-symmetric 95% interval (NaN without one)."""
    if not est.has_ci or est.value <= 0 or est.hi <= 0:
        return math.nan
    return math.log(est.hi / est.value) / 1.96


def divide(a: Estimate, b: Estimate) -> Estimate:
    """a / b for positive estimates, the log standard errors combined in quadrature."""
    if not (a.value > 0 and b.value > 0):
        return Estimate(math.nan, n=0, method="ratio")
    value = a.value / b.value
    ses = [s for s in (log_se(a), log_se(b)) if math.isfinite(s)]
    if not ses:
        return Estimate(value, n=1, method="ratio")
    se = math.sqrt(sum(s * s for s in ses))
    return Estimate(value, value * math.exp(-1.96 * se), value * math.exp(1.96 * se), 2, "ratio")
