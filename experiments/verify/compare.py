"""Two observations of one case, compared check by check; several cases' results merged.

**Error measures.** For one check, with ``ref`` the first backend's arrays and
``other`` the second's, over all arrays ``k`` of the check::

    max_abs_err = max_k max_i |ref_k[i] - other_k[i]|
    scale       = max_k max_i |ref_k[i]|
    max_rel_err = max_abs_err / max(scale, TINY)        TINY = 1e-300

i.e. the error relative to the scale of the whole quantity (the output, the
gradient, the parameter update), not element by element: an element that is
zero in exact arithmetic (the gradient of a Transformer's key bias, which
softmax ignores) carries only rounding noise, and an elementwise ratio would
measure that noise against itself. ``grad_inputs`` and ``grad_params`` share
one scale, the whole gradient's (the largest of both): a backward pass through
saturated units multiplies by derivatives such as 1 - tanh² that carry an
absolute error of order eps, so its errors scale with the gradient the loss
sends back (which the linear head's gradient shows), not with the vanishing
gradient that reaches the inputs. Shapes that differ, a missing array, or a
non-finite value in either give ``inf``; a check with no arrays on either side
(a Transformer's final states) is left out; a check passes when
``max_rel_err <= tol`` (``roundtrip`` demands ``max_abs_err == 0``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from experiments.verify.checks import SHARED_SCALE, TOLERANCES, Observation, check_kind, check_order

TINY = 1e-300


@dataclass
class CheckResult:
    max_abs_err: float
    max_rel_err: float
    tol: float
    passed: bool
    worst: str = ""  # the array (and case) where the largest relative error sits

    def to_json(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "max_abs_err": num(self.max_abs_err),
            "max_rel_err": num(self.max_rel_err),
            "tol": self.tol,
            "passed": self.passed,
        }


def compare_arrays(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[float, float, str]:
    """(max_abs_err, scale, worst array) over the arrays of one check; inf where they cannot be compared."""
    if set(ref) != set(other):
        missing = sorted(set(ref) ^ set(other))
        return math.inf, 0.0, f"names differ: {', '.join(missing[:4])}"
    worst_abs, worst_name, scale = 0.0, "", 0.0
    for name in ref:
        a, b = np.asarray(ref[name], dtype=np.float64), np.asarray(other[name], dtype=np.float64)
        if a.shape != b.shape:
            return math.inf, 0.0, f"{name}: shape {a.shape} vs {b.shape}"
        if a.size == 0:
            continue
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return math.inf, 0.0, f"{name}: non-finite values"
        err = float(np.max(np.abs(a - b)))
        scale = max(scale, float(np.max(np.abs(a))))
        if err > worst_abs or not worst_name:
            worst_abs, worst_name = err, name
    return worst_abs, scale, worst_name


def compare(ref: Observation, other: Observation, precision: str, label: str = "") -> dict[str, CheckResult]:
    """Named checks of two observations of the same case."""
    tolerances = TOLERANCES[precision]
    measured = {
        check: compare_arrays(ref.get(check, {}), other.get(check, {}))
        for check in ref.keys() | other.keys()
        if ref.get(check) or other.get(check)  # a check with nothing on either side is left out
    }
    # The gradient's scale covers the whole gradient, inputs and parameters together.
    group_scale = {
        kind: max((scale for check, (_, scale, _) in measured.items() if check_kind(check) == kind), default=0.0)
        for kind in SHARED_SCALE
    }
    results: dict[str, CheckResult] = {}
    for check, (abs_err, scale, worst) in measured.items():
        kind = check_kind(check)
        scale = max(scale, group_scale.get(kind, 0.0))
        rel_err = abs_err / max(scale, TINY)
        tol = tolerances.for_check(check)
        passed = abs_err == 0.0 if kind == "exact" else rel_err <= tol
        results[check] = CheckResult(abs_err, rel_err, tol, passed, f"{label} {worst}".strip())
    return {name: results[name] for name in sorted(results, key=check_order)}


def merge(results: Sequence[dict[str, CheckResult]]) -> dict[str, CheckResult]:
    """The worst of several cases' results, per check (a check fails if it fails in any case)."""
    merged: dict[str, CheckResult] = {}
    for result in results:
        for name, r in result.items():
            m = merged.get(name)
            if m is None:
                merged[name] = dataclasses.replace(r)
                continue
            if r.max_rel_err > m.max_rel_err or (not math.isfinite(r.max_rel_err)):
                m.max_rel_err, m.worst = r.max_rel_err, r.worst
            m.max_abs_err = max(m.max_abs_err, r.max_abs_err)
            m.tol = max(m.tol, r.tol)
            m.passed = m.passed and r.passed
    return {name: merged[name] for name in sorted(merged, key=check_order)}


def failures(results: dict[str, CheckResult]) -> list[str]:
    """The names of the checks that failed."""
    return [name for name, r in results.items() if not r.passed]
