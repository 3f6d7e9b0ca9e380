"""Cross-backend verification: draw a case, observe it in two backends, compare with named checks.

Framework-free: nothing here imports torch or jax at module level. One job per module:

- ``checks``: the check names and tolerance classes, tolerances, Adam's eps and storage dtypes per precision;
- ``cases``: drawing a case (spec, parameters, batch, optimizers) from a chooser; the command's cases;
- ``observe``: a case, or a training trajectory, run through one backend as the arrays of each check;
- ``compare``: the error measures, one case's named checks, several cases merged;
- ``suite``: the command's run over architectures, given an observer;
- ``workers``: the command's observer, one worker process per backend.

Below: the names the tests and the command use; the rest is in its module.
"""

from __future__ import annotations

from experiments.verify.cases import (
    SCENARIOS,
    SIZES,
    Case,
    Chooser,
    RandomChooser,
    Sizes,
    command_cases,
    draw_case,
    make_batch,
)
from experiments.verify.checks import ADAM_EPS, CHECKS, OTHER, REFERENCE, STORAGE_DTYPE, TOLERANCES, Observation
from experiments.verify.compare import CheckResult, compare, failures, merge
from experiments.verify.observe import observe, observe_trajectory
from experiments.verify.suite import Observer, verify_archs

__all__ = [
    "ADAM_EPS",
    "CHECKS",
    "OTHER",
    "REFERENCE",
    "SCENARIOS",
    "SIZES",
    "STORAGE_DTYPE",
    "TOLERANCES",
    "Case",
    "CheckResult",
    "Chooser",
    "Observation",
    "Observer",
    "RandomChooser",
    "Sizes",
    "command_cases",
    "compare",
    "draw_case",
    "failures",
    "make_batch",
    "merge",
    "observe",
    "observe_trajectory",
    "verify_archs",
]
