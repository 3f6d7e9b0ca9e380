"""200 Adam steps in float64 on a fixed sequence of batches: torch and jax stay together.

A tiny model per registered architecture (ragged lengths, a length-1 row,
non-zero biases); the loss curves and the final parameters must agree to the
float64 tolerance (relative 1e-10, ``experiments.verify``'s measure).
"""

from __future__ import annotations

import numpy as np
import pytest

from experiments.spec import ARCHITECTURES, OptimizerSpec, make_spec, size_fields
from experiments.verify import ADAM_EPS, TOLERANCES, compare, failures, make_batch, observe_trajectory

STEPS = 200
# Adam's step size. At 1e-2 the tiny Transformer's training is chaotic: the two
# curves agree to 1e-16 for 30 steps, then their rounding-sized gap grows about
# tenfold every ten steps, to O(1e-2) by step 200 (the recurrent models stay at
# 1e-15): that measures the dynamics, not the backends. At 3e-3 every architecture
# trains (parameters move by 0.2 to 0.45) and the two agree within 6e-13.
LR = 3e-3
BATCHES = 8  # distinct batches, taken in turn (one shape: one compile)


def tiny_spec(arch: str):
    fields = dict(size_fields(arch, 4))
    if "max_len" in {f for f in make_spec(arch).__dataclass_fields__}:
        fields["max_len"] = 8
    return make_spec(arch, input_size=2, head_kind="classify", head_out=3, **fields)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_adam_trajectory_agrees(backends, arch: str) -> None:
    spec = tiny_spec(arch)
    rng = np.random.default_rng(0)
    params = spec.random_params(1, scale=0.5)
    pool = [make_batch(spec, np.array([4, 3, 1, 4]), 4, 1.0, rng) for _ in range(BATCHES)]
    batches = [pool[i % BATCHES] for i in range(STEPS)]
    optimizer = OptimizerSpec(name="adam", lr=LR, eps=ADAM_EPS["float64"])
    ref = observe_trajectory(backends["torch"], spec, params, batches, optimizer)
    other = observe_trajectory(backends["jax"], spec, params, batches, optimizer)
    again = observe_trajectory(backends["jax"], spec, params, batches, optimizer)  # compiled: ~0.1 s
    for part in ("loss_curve", "final_params"):  # determinism: the same bits twice over
        for name, value in other[part].items():
            np.testing.assert_array_equal(value, again[part][name], err_msg=f"jax twice: {part} {name}")
    results = compare(ref, other, "float64")
    curve = ref["loss_curve"]["loss"]
    assert curve[-1] < curve[0], "the trajectory must actually train"
    moved = max(float(np.max(np.abs(other["final_params"][k] - params[k]))) for k in params)
    assert moved > 0.1, "the parameters must actually move"
    tol = TOLERANCES["float64"].trajectory
    assert not failures(results), {k: (r.max_rel_err, r.worst) for k, r in results.items()}
    assert all(r.tol == tol for r in results.values())
