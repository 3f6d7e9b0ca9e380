"""The torch models against the spec's math and against torch's own modules (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _torch_helpers import assert_grads_rel, assert_rel, random_batch, torch_encoder_layer, torch_layer_state, valid
from torch import nn

from experiments.errors import PathUnavailable
from experiments.spec import ARCHITECTURES, GATES, make_spec
from torch_impl import BACKEND

# (arch, fields): every recurrent arch, 1 and 2 layers, uni- and bidirectional
RECURRENT_CASES = [
    ("rnn", {"num_layers": 1}),
    ("rnn", {"num_layers": 2, "bidirectional": True}),
    ("lstm", {"num_layers": 2}),
    ("gru", {"num_layers": 1}),
    ("gru", {"num_layers": 2, "bidirectional": True}),
    ("bilstm", {"num_layers": 1}),
    ("bilstm", {"num_layers": 2}),
]
TORCH_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _spec(arch: str, **fields):
    base = {"input_size": 3, "head_out": 3}
    if arch == "transformer":
        base.update(d_model=16, num_heads=2, d_ff=24)
    else:
        base.update(hidden_size=5)
    return make_spec(arch, **{**base, **fields})


def _build(spec, params, path="auto"):
    return BACKEND.build(spec, params, precision="float64", path=path)


@pytest.mark.parametrize(("arch", "fields"), RECURRENT_CASES)
def test_recurrent_matches_torch_module_run_alone(arch: str, fields: dict) -> None:
    spec = _spec(arch, **fields)
    params = spec.random_params(seed=1)
    batch = random_batch(spec, batch=5, steps=7, seed=2)
    res = BACKEND.forward(_build(spec, params), batch)

    ref = TORCH_RNN[spec.cell](
        spec.input_size,
        spec.hidden_size,
        num_layers=spec.num_layers,
        bidirectional=spec.bidirectional,
        batch_first=True,
        dtype=torch.float64,
    )
    ref.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in params.items() if k.startswith("rnn.")})
    mask = valid(batch.lengths, 7)
    assert np.all(res.outputs[~mask] == 0.0)
    with torch.no_grad():
        for b, n in enumerate(batch.lengths):
            out, hx = ref(torch.from_numpy(batch.x[b : b + 1, :n]))
            h, c = hx if spec.cell == "lstm" else (hx, None)
            assert_rel(res.outputs[b, :n], out[0].numpy(), what=f"outputs[{b}]")
            assert_rel(res.final_states["h"][:, b], h[:, 0].numpy(), what=f"h[{b}]")
            if c is not None:
                assert_rel(res.final_states["c"][:, b], c[:, 0].numpy(), what=f"c[{b}]")
    assert ("c" in res.final_states) == (spec.cell == "lstm")
    h = res.final_states["h"]
    expect_pooled = h[-1] if spec.directions == 1 else np.concatenate([h[-2], h[-1]], axis=-1)
    np.testing.assert_array_equal(res.pooled, expect_pooled)
    np.testing.assert_allclose(res.logits, res.pooled @ params["head.weight"].T + params["head.bias"], rtol=1e-12)


@pytest.mark.parametrize(
    ("arch", "fields"),
    [
        *RECURRENT_CASES,
        ("lstm", {"num_layers": 2, "head_kind": "per_step_regress"}),
        ("gru", {"bidirectional": True, "head_kind": "per_step_classify"}),
        ("attention_lstm", {"num_layers": 2, "bidirectional": True}),
        ("attention_lstm", {"score": "dot", "head_kind": "regress"}),
    ],
)
def test_fast_path_equals_reference_path(arch: str, fields: dict) -> None:
    spec = _spec(arch, **fields)
    params = spec.random_params(seed=3)
    fast, slow = _build(spec, params, "on"), _build(spec, params, "off")
    assert BACKEND.execution_path(fast) == "aten"
    assert BACKEND.execution_path(slow) == "reference"
    for ragged in (True, False):
        batch = random_batch(spec, batch=4, steps=6, seed=4, ragged=ragged)
        a, b = BACKEND.forward(fast, batch), BACKEND.forward(slow, batch)
        for name in ("outputs", "pooled", "logits"):
            assert_rel(getattr(a, name), getattr(b, name), what=name)
        assert a.final_states.keys() == b.final_states.keys()
        for name in a.final_states:
            assert_rel(a.final_states[name], b.final_states[name], what=name)
        ga, gb = BACKEND.loss_and_grads(fast, batch), BACKEND.loss_and_grads(slow, batch)
        assert abs(ga.loss - gb.loss) <= 1e-12 * abs(gb.loss)
        assert_rel(ga.inputs, gb.inputs, what="dL/dx")
        assert_grads_rel(ga.params, gb.params)


def test_gates_need_the_reference_path() -> None:
    spec = _spec("lstm")
    params = spec.random_params(seed=0)
    batch = random_batch(spec, batch=3, steps=5, seed=0)
    with pytest.raises(PathUnavailable):
        BACKEND.forward(_build(spec, params, "on"), batch, return_extras=True)
    auto = _build(spec, params, "auto")
    res = BACKEND.forward(auto, batch, return_extras=True)  # auto: the reference path, knowingly
    assert res.extras["gates"].shape == (1, 3, 5, 4 * spec.hidden_size)
    assert BACKEND.execution_path(auto) == "aten"  # the model's own path is unchanged
    plain = BACKEND.forward(auto, batch)
    assert_rel(res.outputs, plain.outputs, what="outputs")


@pytest.mark.parametrize(("arch", "fields"), RECURRENT_CASES)
def test_gates_rebuild_the_outputs(arch: str, fields: dict) -> None:
    """Gates come post-nonlinearity in canonical order, zero at padded steps: the cell equations
    applied to them give back the outputs, for every layer and direction's final state."""
    spec = _spec(arch, **fields)
    batch = random_batch(spec, batch=4, steps=6, seed=5)
    res = BACKEND.forward(_build(spec, spec.random_params(seed=5), "off"), batch, return_extras=True)
    gates, hsz = res.extras["gates"], spec.hidden_size
    steps, mask = 6, valid(batch.lengths, 6)
    assert gates.shape == (spec.num_layers * spec.directions, 4, steps, GATES[spec.cell] * hsz)
    assert np.all(gates[:, ~mask] == 0.0)
    for index in range(gates.shape[0]):
        reverse = index % 2 == 1 if spec.directions == 2 else False
        for b, n in enumerate(batch.lengths):
            order = range(n - 1, -1, -1) if reverse else range(n)
            h, c, hs = np.zeros(hsz), np.zeros(hsz), {}
            for t in order:
                g = gates[index, b, t]
                if spec.cell == "lstm":
                    i, f, gg, o = np.split(g, 4)
                    c = f * c + i * gg
                    h = o * np.tanh(c)
                elif spec.cell == "gru":
                    _, z, n_ = np.split(g, 3)
                    h = (1 - z) * n_ + z * h
                else:
                    h = g
                hs[t] = h
            assert_rel(h, res.final_states["h"][index, b], tol=1e-12, what=f"h[{index}, {b}]")
            if index >= gates.shape[0] - spec.directions:  # last layer: its outputs are visible
                d = index % spec.directions
                got = res.outputs[b, :n, d * hsz : (d + 1) * hsz]
                assert_rel(np.stack([hs[t] for t in range(n)]), got, tol=1e-12, what="outputs")


def test_forget_bias_reaches_the_forget_gate() -> None:
    """Claim L3's initialiser: at zero input, zero state and zero weights f = sigmoid(bias)."""
    spec = _spec("lstm", forget_retention=50)
    params = {k: np.zeros_like(v) if "weight" in k else v for k, v in spec.init_params(seed=0).items()}
    batch = random_batch(spec, batch=2, steps=3, seed=0)
    batch.x[:] = 0.0
    gates = BACKEND.forward(_build(spec, params), batch, return_extras=True).extras["gates"]
    hsz, mask = spec.hidden_size, valid(batch.lengths, 3)
    f = gates[0][..., hsz : 2 * hsz][mask]
    np.testing.assert_allclose(f, 0.5 ** (1 / 50), rtol=1e-12)


@pytest.mark.parametrize("score", ["additive", "dot"])
def test_attention_weights(score: str) -> None:
    spec = _spec("attention_lstm", score=score, bidirectional=True, attention_size=4)
    params = spec.random_params(seed=6)
    batch = random_batch(spec, batch=5, steps=7, seed=6)
    res = BACKEND.forward(_build(spec, params), batch, return_extras=True)
    a, mask = res.extras["attention"], valid(batch.lengths, 7)
    assert a.shape == (5, 7)
    assert np.all(a[~mask] == 0.0)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    # the spec's formula on the encoder's outputs and pooled state
    o, h = res.outputs, res.final_states["h"]
    q = np.concatenate([h[-2], h[-1]], axis=-1)
    if score == "additive":
        keys = o @ params["attn.key.weight"].T + params["attn.key.bias"]
        hidden = np.tanh(keys + (q @ params["attn.query.weight"].T)[:, None])
        e = (hidden @ params["attn.score.weight"].T)[..., 0]
    else:
        e = np.einsum("btd,bd->bt", o, q)
    e = np.where(mask, e, -np.inf)
    expect = np.exp(e - e.max(axis=1, keepdims=True))
    expect /= expect.sum(axis=1, keepdims=True)
    assert_rel(a, expect, tol=1e-12, what="weights")
    assert_rel(res.pooled, np.einsum("bt,btd->bd", a, o), tol=1e-12, what="context")


# -- transformer ----------------------------------------------------------------------------------------


def _embed(spec, params, x: np.ndarray) -> torch.Tensor:
    h = x @ params["input_proj.weight"].T + params["input_proj.bias"]
    steps = x.shape[1]
    if spec.positional == "learned":
        h = h + params["pos_embedding"][:steps]
    elif spec.positional == "sinusoidal":
        from experiments.spec import sinusoidal_positions

        h = h + sinusoidal_positions(steps, spec.d_model)
    return torch.from_numpy(h)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_transformer_matches_torch_encoder(norm_first: bool, activation: str, num_layers: int) -> None:
    positional = "learned" if norm_first else "sinusoidal"
    spec = _spec(
        "transformer",
        norm_first=norm_first,
        activation=activation,
        num_layers=num_layers,
        positional=positional,
        max_len=16,
        layer_norm_eps=1e-6,
    )
    params = spec.random_params(seed=7)
    batch = random_batch(spec, batch=4, steps=6, seed=7)
    res = BACKEND.forward(_build(spec, params), batch)
    mask = valid(batch.lengths, 6)
    if num_layers == 1:
        ref = torch_encoder_layer(spec, params, 0)
    else:
        ref = nn.TransformerEncoder(torch_encoder_layer(spec, params, 0), num_layers, enable_nested_tensor=False)
        for i, layer in enumerate(ref.layers):
            layer.load_state_dict(torch_layer_state(params, i))
    ref.eval()
    with torch.no_grad():
        out = ref(_embed(spec, params, batch.x), src_key_padding_mask=torch.from_numpy(~mask))  # True = pad
        if norm_first:
            w, b = (torch.from_numpy(params[f"final_norm.{n}"]) for n in ("weight", "bias"))
            out = F.layer_norm(out, (spec.d_model,), w, b, eps=spec.layer_norm_eps)
    assert_rel(res.outputs[mask], out.numpy()[mask], tol=1e-11, what="valid outputs")
    assert np.all(res.outputs[~mask] == 0.0)


def test_transformer_causal_matches_torch() -> None:
    spec = _spec("transformer", causal=True, num_layers=1, positional="none")
    params = spec.random_params(seed=8)
    batch = random_batch(spec, batch=3, steps=5, seed=8)
    res = BACKEND.forward(_build(spec, params), batch)
    mask = valid(batch.lengths, 5)
    ref = torch_encoder_layer(spec, params, 0).eval()
    with torch.no_grad():
        causal = torch.ones(5, 5, dtype=torch.bool).triu(1)  # torch's convention: True = masked
        out = ref(_embed(spec, params, batch.x), src_mask=causal, src_key_padding_mask=torch.from_numpy(~mask))
    assert_rel(res.outputs[mask], out.numpy()[mask], tol=1e-11, what="valid outputs")
    # last-valid-step pooling, the default when causal
    np.testing.assert_array_equal(res.pooled, res.outputs[np.arange(3), batch.lengths - 1])


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"causal": True, "norm_first": True, "head_kind": "per_step_classify"},
        {"activation": "gelu", "positional": "learned", "max_len": 8, "pooling": "last"},
    ],
)
def test_transformer_fused_equals_reference(fields: dict) -> None:
    spec = _spec("transformer", **fields)
    params = spec.random_params(seed=9)
    fast, slow = _build(spec, params, "on"), _build(spec, params, "off")
    assert (BACKEND.execution_path(fast), BACKEND.execution_path(slow)) == ("fused_attention", "reference")
    for ragged in (True, False):
        batch = random_batch(spec, batch=4, steps=6, seed=10, ragged=ragged)
        a, b = BACKEND.forward(fast, batch), BACKEND.forward(slow, batch)
        for name in ("outputs", "pooled", "logits"):
            assert_rel(getattr(a, name), getattr(b, name), what=name)
        ga, gb = BACKEND.loss_and_grads(fast, batch), BACKEND.loss_and_grads(slow, batch)
        assert_rel(ga.inputs, gb.inputs, what="dL/dx")
        assert_grads_rel(ga.params, gb.params)


def test_transformer_mean_pooling() -> None:
    spec = _spec("transformer")
    batch = random_batch(spec, batch=4, steps=6, seed=11)
    res = BACKEND.forward(_build(spec, spec.random_params(seed=11)), batch)
    expect = res.outputs.sum(axis=1) / batch.lengths[:, None]
    assert_rel(res.pooled, expect, tol=1e-14, what="mean over valid steps")


# -- every architecture ---------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_padding_never_changes_a_result(arch: str) -> None:
    """T3: each sequence's results do not depend on what sits in the padding (nor do the gradients)."""
    spec = _spec(arch, num_layers=2)
    model = _build(spec, spec.random_params(seed=12))
    batch = random_batch(spec, batch=4, steps=6, seed=12)
    batch.lengths[:] = [5, 2, 1, 3]  # no sequence fills all T steps
    mask = valid(batch.lengths, 6)
    res = BACKEND.forward(model, batch)
    grads = BACKEND.loss_and_grads(model, batch)
    batch.x[~mask] = 1e3
    res2 = BACKEND.forward(model, batch)
    for name in ("outputs", "pooled", "logits"):
        np.testing.assert_array_equal(getattr(res, name), getattr(res2, name), err_msg=name)
    assert np.all(res.outputs[~mask] == 0.0)
    assert np.all(grads.inputs[~mask] == 0.0)
    assert np.isfinite(grads.loss)


@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm", "transformer"])
def test_unidirectional_outputs_are_causal(arch: str) -> None:
    """T2: with a one-way model, output t depends on inputs up to t only."""
    fields = {"causal": True} if arch == "transformer" else {}
    spec = _spec(arch, **fields)
    model = _build(spec, spec.random_params(seed=13))
    batch = random_batch(spec, batch=2, steps=6, seed=13, ragged=False)
    res = BACKEND.forward(model, batch)
    batch.x[:, 3:] += 1.0
    res2 = BACKEND.forward(model, batch)
    np.testing.assert_array_equal(res.outputs[:, :3], res2.outputs[:, :3])
    assert not np.allclose(res.outputs[:, 3:], res2.outputs[:, 3:])


# -- paths by name (the grid's ``path`` may name a kernel, as jax's ``scan_batch``) --------------------


def test_torch_path_names_are_the_model_files_paths() -> None:
    import inspect

    import torch_impl
    from experiments.backend import PATH_NAMES

    # every model file in the registry, so that a new architecture's paths are covered with no edit here
    # (attention_lstm.py runs recurrent.py's encoder and names no paths of its own)
    files = {inspect.getmodule(cls) for cls in torch_impl.MODELS.values()}
    assert set(PATH_NAMES["torch"]) == {name for module in files for name in getattr(module, "EXECUTION_PATHS", ())}


@pytest.mark.parametrize("path", ["aten", "reference"])
def test_recurrent_paths_by_name_build(path: str) -> None:
    spec = _spec("gru")
    params = spec.random_params(seed=0)
    model = _build(spec, params, path)
    assert BACKEND.execution_path(model) == path
    batch = random_batch(spec, batch=3, steps=5, seed=0)
    assert_rel(BACKEND.forward(model, batch).outputs, BACKEND.forward(_build(spec, params), batch).outputs)


@pytest.mark.parametrize("path", ["fused_attention", "scan", "bogus"])
def test_a_path_the_recurrent_family_does_not_have_is_a_user_error(path: str) -> None:
    from experiments.errors import UserError

    spec = _spec("lstm")
    with pytest.raises(UserError, match="path"):
        _build(spec, spec.random_params(seed=0), path)


def test_gates_with_a_kernel_by_name_raise() -> None:
    spec = _spec("lstm")
    model = _build(spec, spec.random_params(seed=0), "aten")
    with pytest.raises(PathUnavailable):
        BACKEND.forward(model, random_batch(spec, batch=3, steps=5, seed=0), return_extras=True)
