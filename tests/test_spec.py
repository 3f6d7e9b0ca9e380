"""The framework-free spec: schema, initialiser, analytic counts, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.errors import UserError
from experiments.spec import (
    ARCHITECTURES,
    GATES,
    make_spec,
    retention_to_forget_bias,
    size_fields,
    spec_fields,
    spec_from_dict,
    spec_to_dict,
)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_init_follows_schema_in_order(arch: str) -> None:
    spec = make_spec(arch)
    params = spec.init_params(seed=3)
    schema = spec.param_schema()
    assert list(params) == list(schema)
    for name, shape in schema.items():
        assert params[name].shape == shape, name
        assert params[name].dtype == np.float64, name


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_init_is_seeded(arch: str) -> None:
    spec = make_spec(arch)
    a, b, c = spec.init_params(1), spec.init_params(1), spec.init_params(2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@settings(max_examples=40, deadline=None)
@given(
    arch=st.sampled_from(ARCHITECTURES),
    size=st.sampled_from([8, 16, 32, 48]),
    layers=st.integers(1, 3),
    inputs=st.integers(1, 7),
    head=st.sampled_from(["classify", "regress", "per_step_classify", "per_step_regress"]),
)
def test_analytic_param_count_matches_schema(arch: str, size: int, layers: int, inputs: int, head: str) -> None:
    fields = {"input_size": inputs, "head_out": 3, **size_fields(arch, size)}
    if "num_layers" in spec_fields(arch):
        fields["num_layers"] = layers
    try:
        spec = make_spec(arch, head_kind=head, **fields)
    except UserError as exc:  # an architecture that refuses this head (attention pooling: per-step ones)
        assert exc.field == "head.kind", exc
        spec = make_spec(arch, head_kind="classify", **fields)
    assert spec.param_count() == spec.schema_param_count()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_recurrent_init_matches_torch_default_bound(cell: str) -> None:
    spec = make_spec(cell, hidden_size=64, input_size=5)
    params = spec.init_params(0)
    bound = 1 / math.sqrt(64)
    w = params["rnn.weight_hh_l0"]
    assert w.shape == (GATES[cell] * 64, 64)
    assert np.abs(w).max() <= bound
    # A uniform draw of 16k values reaches close to its bound and has the right variance.
    assert np.abs(w).max() > 0.98 * bound
    assert abs(w.var() - bound**2 / 3) < 0.05 * bound**2 / 3


def test_gru_versus_lstm_parameters_are_three_to_four() -> None:
    """Claim S6's parameter half: GRU has 3 gate blocks to LSTM's 4 (head excluded)."""
    lstm = make_spec("lstm", hidden_size=128, input_size=32)
    gru = make_spec("gru", hidden_size=128, input_size=32)
    head = lstm.head.out_size * (128 + 1)
    assert (gru.param_count() - head) / (lstm.param_count() - head) == pytest.approx(0.75)


def test_bilstm_doubles_parameters_per_layer() -> None:
    uni = make_spec("lstm", hidden_size=32, input_size=4, head_out=2)
    bi = make_spec("bilstm", hidden_size=32, input_size=4, head_out=2)
    head_uni, head_bi = 2 * (32 + 1), 2 * (64 + 1)
    assert bi.param_count() - head_bi == 2 * (uni.param_count() - head_uni)


def test_forget_bias_value_sets_the_sum_of_both_biases() -> None:
    spec = make_spec("lstm", hidden_size=8, forget_bias=1.5)
    p = spec.init_params(0)
    total = p["rnn.bias_ih_l0"] + p["rnn.bias_hh_l0"]
    assert np.all(total[8:16] == 1.5)
    assert not np.all(total[:8] == 1.5)


def test_forget_bias_from_retention_length() -> None:
    """Claim L3: N=50 gives f = 0.5**(1/50) = 0.986 and the bias is its logit."""
    bias = retention_to_forget_bias(50)
    f = 1 / (1 + math.exp(-bias))
    assert f == pytest.approx(0.5 ** (1 / 50), rel=1e-12)
    assert round(f, 3) == 0.986
    spec = make_spec("attention_lstm", hidden_size=8, forget_retention=50)
    assert spec.effective_forget_bias == pytest.approx(bias)


def test_flops_scale_as_documented() -> None:
    lstm = make_spec("lstm", hidden_size=256, input_size=256, head_out=2)
    # Doubling T doubles the recurrent matmul work; doubling H (with I = H) about quadruples it.
    assert lstm.forward_flops(8, 200) == pytest.approx(2 * lstm.forward_flops(8, 100), rel=1e-3)
    big = make_spec("lstm", hidden_size=512, input_size=512, head_out=2)
    assert big.forward_flops(8, 100) / lstm.forward_flops(8, 100) == pytest.approx(4, rel=1e-2)
    tr = make_spec("transformer", input_size=8, **size_fields("transformer", 64))
    quad = tr.forward_flops(1, 4096) / tr.forward_flops(1, 2048)
    assert 2 < quad < 4  # the T^2 attention terms dominate at long T
    assert lstm.train_step_flops(8, 100) == 3 * lstm.forward_flops(8, 100)


def test_stored_activations_reference_vs_fused_attention() -> None:
    tr = make_spec("transformer", input_size=8, **size_fields("transformer", 64))
    ref = tr.stored_activations(2, 1024, "reference")
    fused = tr.stored_activations(2, 1024, "fused")
    assert ref > fused
    # The reference path's excess is the (B, h, T, T) probabilities, per layer.
    assert ref - fused == tr.num_layers * 2 * tr.num_heads * (1024 * 1024 - 1024)


@pytest.mark.parametrize(
    ("arch", "fields", "field"),
    [
        ("lstm", {"hidden_size": 0}, "hidden_size"),
        ("gru", {"num_layers": -1}, "num_layers"),
        ("rnn", {"dropout": 1.0}, "dropout"),
        ("gru", {"forget_bias": 1.0}, "forget_bias"),
        ("transformer", {"d_model": 30, "num_heads": 4}, "num_heads"),
        ("transformer", {"activation": "swish"}, "activation"),
        ("lstm", {"head_kind": "classify", "head_out": 1}, "head.out_size"),
        ("attention_lstm", {"head_kind": "per_step_regress"}, "head.kind"),
        ("lstm", {"colour": "red"}, "colour"),
        ("bilstm", {"bidirectional": False}, "bidirectional"),
        ("unicorn", {}, "arch"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(arch: str, fields: dict, field: str) -> None:
    with pytest.raises(UserError) as info:
        make_spec(arch, **fields)
    assert info.value.field == field
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_spec_dict_round_trip(arch: str) -> None:
    spec = make_spec(arch, head_kind="regress", head_out=3)
    assert spec_from_dict(spec_to_dict(spec)) == spec
