"""Semantics every architecture keeps in each backend on its own (claims T1, T2, T3).

T1: a bidirectional model's output is (B, T, 2H), its h_n (2*layers, B, H) ordered
forward-l0, backward-l0, forward-l1, ... (the shapes of every drawn case are
checked in ``test_cross_backend``); T2: unidirectional models are causal,
bidirectional ones depend on the future; T3: a padded batch gives each sequence
exactly what it gives alone, and its rows are independent; the same seed gives
the same bits on CPU, dropout included.

Architectures come from the registry; one small spec per architecture and one
batch shape keep jax's compilations few.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _verify_helpers import HypothesisChooser, causal_outputs, examples
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.backend import Batch
from experiments.spec import ARCHITECTURES, REGISTRY, make_spec, size_fields, spec_to_dict
from experiments.verify import draw_case, make_batch

BACKEND_NAMES = ("torch", "jax")
REL = 1e-12  # float64: "the same" up to summation order (other batch or length shapes)
B, T = 3, 5


def close(a: np.ndarray, b: np.ndarray, rel: float = REL) -> bool:
    scale = max(float(np.max(np.abs(a), initial=0.0)), 1e-300)
    return float(np.max(np.abs(a - b), initial=0.0)) <= rel * scale


def field_names(arch: str) -> set[str]:
    return {f.name for f in dataclasses.fields(REGISTRY[arch][0])}


def bidirectional_archs() -> list[str]:
    """Every registered architecture with a ``bidirectional`` flag it lets be True."""
    return [
        arch
        for arch in ARCHITECTURES
        if "bidirectional" in field_names(arch) and REGISTRY[arch][1].get("bidirectional", True)
    ]


def small_spec(arch: str, **fields):
    """The architecture at a small size (sizes from the registry's own ``size_fields``)."""
    base = {"input_size": 3, **size_fields(arch, 4)}
    if "max_len" in field_names(arch):
        base["max_len"] = 8
    return make_spec(arch, **{**base, **fields})


def with_fields(spec, **fields):
    """The same architecture with some fields changed (through ``make_spec``, so it validates)."""
    data = {**spec_to_dict(spec), **fields}
    arch = data.pop("arch")
    for name in REGISTRY[arch][1]:
        data.pop(name, None)
    return make_spec(arch, **data)


def forward(backend, spec, params, batch):
    return backend.forward(backend.build(spec, params, precision="float64"), batch)


@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", bidirectional_archs())
def test_bidirectional_state_order(backends, arch: str, backend_name: str) -> None:
    """T1: output (B, T, 2H); h_n[2*layer + direction]; the reverse direction ends at step 0."""
    backend = backends[backend_name]
    spec = small_spec(arch, num_layers=2, bidirectional=True)
    h_size = spec.hidden_size
    params = spec.random_params(0)
    batch = make_batch(spec, np.array([5, 3, 1]), T, 1.0, np.random.default_rng(1))
    fwd = forward(backend, spec, params, batch)
    h, out = fwd.final_states["h"], fwd.outputs
    assert out.shape == (B, T, 2 * h_size) and h.shape == (4, B, h_size)
    for row, length in enumerate(batch.lengths):
        np.testing.assert_array_equal(h[2, row], out[row, length - 1, :h_size])  # forward, last layer
        np.testing.assert_array_equal(h[3, row], out[row, 0, h_size:])  # reverse, last layer
    # Layer 0 of the stack is a one-layer model with layer 0's parameters.
    one = with_fields(spec, num_layers=1)
    first = forward(backend, one, {name: params[name] for name in one.param_schema()}, batch)
    for name, state in fwd.final_states.items():
        np.testing.assert_allclose(state[:2], first.final_states[name], rtol=0, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_causality_and_future_dependence(backends, arch: str, backend_name: str) -> None:
    """T2: perturb step t0; a causal model's outputs before t0 keep their values, others' change."""
    backend = backends[backend_name]
    variants = [small_spec(arch)]
    if arch in bidirectional_archs():
        variants.append(with_fields(variants[0], bidirectional=not variants[0].bidirectional))
    if "causal" in field_names(arch):
        variants.append(with_fields(variants[0], causal=not variants[0].causal))
    t0 = 2
    for spec in variants:
        params = spec.random_params(3)
        batch = make_batch(spec, np.full(B, T), T, 1.0, np.random.default_rng(2))
        moved = Batch(x=batch.x.copy(), lengths=batch.lengths)
        moved.x[:, t0] += 0.5
        model = backend.build(spec, params, precision="float64")
        a, b = backend.forward(model, batch).outputs, backend.forward(model, moved).outputs
        assert not close(a[:, t0], b[:, t0], 1e-6), f"{spec}: step t0 must depend on its own input"
        if causal_outputs(spec):
            assert close(a[:, :t0], b[:, :t0]), f"{spec}: outputs before t0 changed (not causal)"
        else:
            assert not close(a[:, :t0], b[:, :t0], 1e-6), f"{spec}: outputs before t0 ignore the future"


@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
@settings(max_examples=examples(quick=1, thorough=30))
@given(data=st.data())
def test_padded_batch_equals_each_sequence_alone(backends, arch: str, backend_name: str, data) -> None:
    """T3: a ragged batch gives each sequence what it gives alone, unpadded; rows are independent."""
    backend = backends[backend_name]
    fixed = {"lengths": "ragged", "seq_len": T, "batch": B}
    case = draw_case(arch, HypothesisChooser(data, fixed), "float64")
    spec, batch = case.spec, case.batch
    model = backend.build(spec, case.params, precision="float64")
    full = backend.forward(model, batch)
    assert np.all(full.outputs[~batch.mask] == 0.0), "outputs at padded steps must be exactly zero"
    for row, length in enumerate(batch.lengths):
        alone = backend.forward(model, Batch(x=batch.x[row : row + 1, :length], lengths=np.array([length])))
        assert close(full.outputs[row, :length], alone.outputs[0]), f"row {row} outputs"
        assert close(full.pooled[row], alone.pooled[0]), f"row {row} pooled"
        logits = full.logits[row, :length] if spec.head.per_step else full.logits[row]
        assert close(logits, alone.logits[0]), f"row {row} logits"
        for name, state in full.final_states.items():
            assert close(state[:, row], alone.final_states[name][:, 0]), f"row {row} final state {name}"
    # Rows are independent: other rows replaced (values and lengths) leave row 0 alone ...
    other = Batch(x=batch.x.copy(), lengths=batch.lengths.copy())
    other.x[1:] = np.random.default_rng(9).standard_normal(other.x[1:].shape) * 3.0
    other.lengths[1:] = np.arange(B - 1) % T + 1
    changed = backend.forward(model, other)
    assert close(full.outputs[0], changed.outputs[0]) and close(full.pooled[0], changed.pooled[0])
    assert close(full.logits[0], changed.logits[0])
    # ... and permuting rows permutes results.
    perm = np.roll(np.arange(B), 1)
    permuted = backend.forward(model, Batch(x=batch.x[perm], lengths=batch.lengths[perm]))
    assert close(permuted.outputs, full.outputs[perm]) and close(permuted.logits, full.logits[perm])


@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_same_seed_same_bits(backends, arch: str, backend_name: str) -> None:
    """On CPU the same parameters, batch and seed give identical bits, dropout on (train mode);
    another seed draws other dropout masks. (Training steps: ``test_trajectory`` runs 200 twice over.)"""
    backend = backends[backend_name]
    fields = {}
    if "dropout" in field_names(arch):
        fields["dropout"] = 0.25
    if "num_layers" in field_names(arch):
        fields["num_layers"] = 2  # recurrent dropout sits between layers
    spec = small_spec(arch, **fields)
    params = spec.random_params(6)
    batch = make_batch(spec, np.array([5, 2, 4]), T, 1.0, np.random.default_rng(7))

    def run(seed: int) -> np.ndarray:
        model = backend.build(spec, params, precision="float64")
        return backend.forward(model, batch, train=True, seed=seed).logits

    first = run(11)
    np.testing.assert_array_equal(first, run(11))
    assert not np.array_equal(first, run(12)), "another seed must draw other dropout masks"
