"""The named checks, their tolerance classes, and the per-precision tolerances and settings.

An observation (``experiments.verify.observe``) gives, per check, the arrays to compare:

==============  ================================================================
check           arrays
==============  ================================================================
roundtrip       ``export_params(build(params))``, canonical names (must be exact)
outputs         per-step outputs, zeroed at padded steps on both sides
final_states    ``h`` (and ``c``), (layers * directions, B, H) (recurrent only)
pooled          the features a sequence-level head reads
logits          the head's output (zeroed at padded steps for per-step heads)
loss            the head's loss in eval mode
grad_inputs     dL/dx, every step (padded steps must get exactly nothing)
grad_params     dL/dθ for every canonical parameter
sgd_step        θ_after - θ_before after ``steps`` SGD steps (default 2: momentum shows)
adam_step       the same for Adam (or AdamW)
==============  ================================================================

A check passes when its ``max_rel_err`` (``experiments.verify.compare``) is at
most its class's tolerance; ``roundtrip`` demands ``max_abs_err == 0``.

The optimizer checks compare the *update* θ_after - θ_before (computed in
float64 on the host), which is far more sensitive than comparing θ_after
itself. Adam's ``eps`` is part of the case (:data:`ADAM_EPS`): the update
g / (sqrt(v) + eps) of an element moves by up to Δg / (4 eps) for a gradient
error Δg, i.e. by the gradient's relative error e times max|g| / (4 eps). For the
step check to be as tight as the gradient check, eps >= max|g| e / (4 tol): 1e-3 in
float64 (e ~ 1e-15, tol 1e-10: margin ~400 at |g| ~ 1) and 0.1 in float32 (e ~ 1e-6,
tol 1e-4: |g| up to 40). With torch's default 1e-8 the factor reaches 1e7 and the
check would measure Adam's conditioning, not the backends (measured: float32 at
eps 1e-3 came to 9e-5 of a 1e-4 tolerance). Both sides get the same eps, which
is all the check needs; eps placement, bias correction and weight-decay coupling
still change the update by 5% or more at eps 0.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The backend whose arrays are the reference (the scale of the errors), and the one compared with it.
REFERENCE, OTHER = "torch", "jax"

# The checks, in report order, and the tolerance class each one uses.
CHECK_KINDS: dict[str, str] = {
    "roundtrip": "exact",
    "outputs": "forward",
    "final_states": "forward",
    "pooled": "forward",
    "logits": "forward",
    "loss": "forward",
    "grad_inputs": "gradient",
    "grad_params": "gradient",
    "sgd_step": "step",
    "adam_step": "step",
}
CHECKS: tuple[str, ...] = tuple(CHECK_KINDS)
# Kinds whose checks share one scale: the gradient w.r.t. the inputs and the parameters is one gradient.
SHARED_SCALE: tuple[str, ...] = ("gradient",)
FORWARD_CHECKS: tuple[str, ...] = tuple(c for c, kind in CHECK_KINDS.items() if kind in ("exact", "forward"))

# What one backend gives for a case: per check, its arrays by name.
Observation = dict[str, dict[str, np.ndarray]]


def check_kind(check: str) -> str:
    """The tolerance class of ``check``; a name outside :data:`CHECKS` (a trajectory's part) is ``trajectory``."""
    return CHECK_KINDS.get(check, "trajectory")


def check_order(name: str) -> tuple[int, str]:
    """Sort key: the checks in report order, any other name after them."""
    return (CHECKS.index(name) if name in CHECKS else len(CHECKS), name)


@dataclass(frozen=True)
class Tolerances:
    forward: float
    gradient: float
    step: float
    trajectory: float
    exact: float = 0.0

    def for_check(self, check: str) -> float:
        return getattr(self, check_kind(check))


# Relative tolerances per precision (``experiments.verify.compare`` defines the measure).
# tf32 keeps float32 storage with 10-bit-mantissa matmuls (unit roundoff 2^-11):
# it is a measured mode of its own, with tolerances a hundred times float32's.
TOLERANCES: dict[str, Tolerances] = {
    "float64": Tolerances(forward=1e-10, gradient=1e-10, step=1e-10, trajectory=1e-10),
    "float32": Tolerances(forward=1e-5, gradient=1e-4, step=1e-4, trajectory=1e-3),
    "tf32": Tolerances(forward=1e-3, gradient=1e-2, step=1e-2, trajectory=1e-1),
}
ADAM_EPS: dict[str, float] = {"float64": 1e-3, "float32": 0.1, "tf32": 0.1}
# Inputs up to this scale get every check; above it (up to 1e3) a case checks the
# forward only: there every unit saturates, the gradient's scale is set by the least
# saturated one, where 1 - tanh^2 and sigma (1 - sigma) cancel, and a post-norm
# Transformer's LayerNorms see mean >> std. Gradients there measure the problem's
# conditioning, not the backends, so no fixed relative tolerance can hold (benchmarks/NOTES.md).
GRADIENT_MAX_INPUT_SCALE = 10.0
STORAGE_DTYPE: dict[str, str] = {"float64": "float64", "float32": "float32", "tf32": "float32"}
