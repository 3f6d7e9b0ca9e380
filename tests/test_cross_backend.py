"""torch and jax compute the same function: every registered architecture, drawn cases.

Each example draws a whole case from the engine's own drawing code
(``experiments.verify.draw_case``): spec fields (sizes, layers, bidirectional,
heads, the spec's bools and choices), batch, sequence length (1 included),
lengths (full, ragged with a length-1 row, all ones), inputs from 1e-3 to 1e3,
non-zero biases, optimizer settings, float64 or float32, jax jitted or not.
Architectures come from the registry: a new one is covered with no edit here.
"""

from __future__ import annotations

import numpy as np
import pytest
from _verify_helpers import PROFILE, HypothesisChooser, examples, table
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.spec import ARCHITECTURES
from experiments.verify import STORAGE_DTYPE, Case, Observation, RandomChooser, compare, draw_case, failures, observe


def expected_shapes(case: Case) -> dict[str, tuple[int, ...]]:
    """Claim T1's shapes, for any architecture: outputs (B, T, F), h_n (layers * directions, B, H)."""
    spec, (b, t) = case.spec, case.batch.x.shape[:2]
    out = spec.head.out_size
    shapes = {
        "outputs": (b, t, spec.output_size),
        "pooled": (b, spec.pooled_size),
        "logits": (b, t, out) if spec.head.per_step else (b, out),
        "inputs": case.batch.x.shape,
    }
    if hasattr(spec, "hidden_size"):
        shapes["h"] = (spec.num_layers * (2 if getattr(spec, "bidirectional", False) else 1), b, spec.hidden_size)
    return shapes


def check_shapes(obs: Observation, case: Case) -> None:
    arrays = {**obs["outputs"], **obs["pooled"], **obs["logits"], **obs["final_states"]}
    if "grad_inputs" in obs:
        arrays.update(obs["grad_inputs"])
        padded = ~case.batch.mask
        assert np.all(obs["grad_inputs"]["inputs"][padded] == 0.0), "padded steps must get no gradient"
    for name, shape in expected_shapes(case).items():
        if name in arrays:
            assert arrays[name].shape == shape, f"{name}: {arrays[name].shape}, expected {shape}"
    if "h" in expected_shapes(case):
        assert {"h"} <= set(obs["final_states"]) and all(
            v.shape == expected_shapes(case)["h"] for v in obs["final_states"].values()
        )


@pytest.mark.parametrize("arch", ARCHITECTURES)
@settings(max_examples=examples(quick=2, thorough=60))
@given(data=st.data())
def test_backends_agree(backends, arch: str, data: st.DataObject) -> None:
    precision = data.draw(st.sampled_from(["float64", "float32"]), label="precision")
    # op by op, jax compiles every primitive anew (~20 s a case): the quick profile leaves
    # that to test_jax_without_jit_agrees, the thorough one draws it here
    jit = data.draw(st.booleans(), label="jax jit") if PROFILE == "thorough" else True
    case = draw_case(arch, HypothesisChooser(data), precision)
    ref, other = observe(backends["torch"], case), observe(backends["jax"], case, jit=jit)
    results = compare(ref, other, precision, case.label)
    assert not failures(results), f"{case.describe()} jit={jit}\n{table(results)}"
    check_shapes(ref, case)
    check_shapes(other, case)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_jax_without_jit_agrees(backends, arch: str) -> None:
    """jax op by op (``jax.disable_jit``) against torch: the forward and the gradients, ragged lengths."""
    fixed = {"lengths": "ragged", "seq_len": 4, "batch": 3, "params": "random", "input_scale": 1.0}
    case = draw_case(arch, RandomChooser(np.random.default_rng(11), fixed), "float64")
    checks = ("outputs", "final_states", "pooled", "logits", "loss", "grad_inputs", "grad_params")
    ref = observe(backends["torch"], case, checks=checks)
    results = compare(ref, observe(backends["jax"], case, jit=False, checks=checks), "float64")
    assert not failures(results), f"{case.describe()}\n{table(results)}"


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameters_survive_both_conversion_directions(backends, arch: str, precision: str) -> None:
    """torch -> canonical -> jax -> canonical -> torch, and the other way, bit for bit, in the right dtype."""
    dtype = STORAGE_DTYPE[precision]
    case = draw_case(arch, RandomChooser(np.random.default_rng(7), {"params": "random"}), precision)
    for first, second in (("torch", "jax"), ("jax", "torch")):
        a, b = backends[first], backends[second]
        exported_a = a.export_params(a.build(case.spec, case.params, precision=precision))
        exported_b = b.export_params(b.build(case.spec, exported_a, precision=precision))
        back = a.export_params(a.build(case.spec, exported_b, precision=precision))
        for stage in (exported_a, exported_b, back):
            assert list(stage) == list(case.spec.param_schema()), f"{first}->{second}: names or order"
            for name, value in stage.items():
                assert value.dtype == np.dtype(dtype), f"{first}->{second}: {name} is {value.dtype}, not {dtype}"
                assert np.array_equal(value.astype(np.float64), case.params[name]), f"{first}->{second}: {name}"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_forward_results_come_back_in_the_precision_asked_for(backends, arch: str) -> None:
    case = draw_case(arch, RandomChooser(np.random.default_rng(3)), "float64")
    for name, backend in backends.items():
        for precision in ("float64", "float32"):
            fwd = backend.forward(backend.build(case.spec, case.params, precision=precision), case.batch)
            arrays = {"outputs": fwd.outputs, "pooled": fwd.pooled, "logits": fwd.logits, **fwd.final_states}
            for key, value in arrays.items():
                assert value.dtype == np.dtype(precision), f"{name} {precision}: {key} is {value.dtype}"
