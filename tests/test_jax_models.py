"""The JAX/Flax NNX models: the spec's math, against Flax's own cells and attention, path against path.

Everything in float64 unless a test says otherwise; shapes are tiny (jit compiles dominate).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jax_helpers import CASES, LENGTHS, case_spec, embed, make_batch, single, tiny_spec
from flax import nnx
from flax.nnx.nn.attention import dot_product_attention_weights

import jax_impl
from experiments.backend import Batch
from experiments.errors import PathUnavailable
from experiments.spec import ARCHITECTURES, GATES, make_spec
from jax_impl.kernels.scan import fold_width
from jax_impl.layers import KeyStream, param_vars
from jax_impl.transformer import self_attention

BE = jax_impl.BACKEND
TOL = {"rtol": 1e-10, "atol": 1e-12}


def test_models_cover_the_registry() -> None:
    assert tuple(jax_impl.MODELS) == ARCHITECTURES


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_round_trip_is_bit_identical_and_dtypes_are_explicit(arch: str, precision: str) -> None:
    spec = tiny_spec(arch)
    params = spec.random_params(seed=1)
    if precision == "float32":
        params = {k: v.astype(np.float32) for k, v in params.items()}
    model = BE.build(spec, params, precision=precision)
    dtype = jnp.dtype(precision)
    for name, var in param_vars(model).items():
        assert var.get_value().dtype == dtype, name
    out = BE.export_params(model)
    assert list(out) == list(spec.param_schema())  # same names (modules keep the schema's order)
    for name, value in params.items():
        assert out[name].dtype == dtype, name
        assert out[name].shape == value.shape, name
        assert np.array_equal(out[name], value), name  # bits, not closeness
    again = BE.export_params(BE.build(spec, out, precision=precision))
    assert all(np.array_equal(again[k], out[k]) for k in out)


def test_loading_refuses_wrong_names_and_shapes() -> None:
    spec = tiny_spec("lstm")
    params = spec.random_params(0)
    with pytest.raises(KeyError):
        BE.build(spec, {**params, "rnn.extra": np.zeros(3)}, precision="float64")
    bad = dict(params)
    bad["head.bias"] = np.zeros(7)
    with pytest.raises(ValueError):
        BE.build(spec, bad, precision="float64")


# -- Flax's own cells as an outside reference for forward values -----------------------------
def _flax_cell(cell: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray):
    """A Flax cell holding torch's weights, the two biases merged (Flax keeps one)."""
    in_f, hidden = w_ih.shape[1], w_hh.shape[1]
    kw = {"dtype": jnp.float64, "param_dtype": jnp.float64, "rngs": nnx.Rngs(0)}
    f64 = partial(jnp.asarray, dtype=jnp.float64)
    if cell == "lstm":
        c = nnx.LSTMCell(in_f, hidden, **kw)
        for k, (dense_i, dense_h) in enumerate([(c.ii, c.hi), (c.if_, c.hf), (c.ig, c.hg), (c.io, c.ho)]):
            block = slice(k * hidden, (k + 1) * hidden)
            dense_i.kernel.set_value(f64(w_ih[block].T))
            dense_h.kernel.set_value(f64(w_hh[block].T))
            dense_h.bias.set_value(f64(b_ih[block] + b_hh[block]))
        return c
    if cell == "gru":
        c = nnx.GRUCell(in_f, hidden, **kw)
        c.dense_i.kernel.set_value(f64(w_ih.T))
        c.dense_i.bias.set_value(f64(b_ih + b_hh))  # only valid with b_hn = 0 (Flax's GRUCell has none)
        c.dense_h.kernel.set_value(f64(w_hh.T))
        return c
    c = nnx.SimpleCell(in_f, hidden, **kw)
    c.dense_i.kernel.set_value(f64(w_ih.T))
    c.dense_i.bias.set_value(f64(b_ih + b_hh))
    c.dense_h.kernel.set_value(f64(w_hh.T))
    return c


@pytest.mark.parametrize("case", ["rnn", "lstm", "gru", "bilstm"])
def test_recurrent_matches_flax_cells(case: str) -> None:
    """Stacked Flax cells, stepped by hand over full-length sequences (reverse = flipped time).

    nnx.GRUCell has no b_hn: for the GRU this comparison sets b_hn = 0 (the other
    biases stay non-zero); ``test_gru_reset_bias_inside_the_product`` covers b_hn.
    Flax carries (c, h); torch returns (h, c) with h_n index 2 * layer + direction.
    """
    spec = case_spec(case)
    cell, hidden, dirs = spec.cell, spec.hidden_size, spec.directions
    params = spec.random_params(seed=2)
    if cell == "gru":
        for name in params:
            if "bias_hh" in name:
                params[name][2 * hidden :] = 0.0
    batch = make_batch(spec, lengths=np.array([5, 5, 5]))
    got = BE.forward(BE.build(spec, params, precision="float64"), batch)

    inp = jnp.asarray(batch.x)
    for layer in range(spec.num_layers):
        outs = []
        for d, sfx in enumerate(("", "_reverse")[:dirs]):
            names = [f"rnn.{k}_l{layer}{sfx}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            fc = _flax_cell(cell, *(params[n] for n in names))
            zeros = jnp.zeros((inp.shape[0], hidden), jnp.float64)
            carry = (zeros, zeros) if cell == "lstm" else zeros
            seq = inp[:, ::-1] if d == 1 else inp
            ys = []
            for t in range(seq.shape[1]):
                carry, y = fc(carry, seq[:, t])
                ys.append(y)
            ys = jnp.stack(ys, axis=1)
            outs.append(ys[:, ::-1] if d == 1 else ys)
            index = dirs * layer + d
            h_final = carry[1] if cell == "lstm" else carry
            np.testing.assert_allclose(got.final_states["h"][index], h_final, **TOL)
            if cell == "lstm":
                np.testing.assert_allclose(got.final_states["c"][index], carry[0], **TOL)
        inp = jnp.concatenate(outs, axis=-1)
    np.testing.assert_allclose(got.outputs, inp, **TOL)


def test_gru_reset_bias_inside_the_product() -> None:
    """n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) with non-zero b_hn, by NumPy."""
    spec = case_spec("gru")
    p = spec.random_params(seed=3)
    batch = make_batch(spec, lengths=np.array([5, 5, 5]))
    got = BE.forward(BE.build(spec, p, precision="float64"), batch)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    w_ih, w_hh, b_ih, b_hh = (p[f"rnn.{k}_l0"] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    assert np.all(np.abs(b_hh[8:]) > 0)
    hid = spec.hidden_size
    h = np.zeros((3, hid))
    for t in range(5):
        a, r_h = batch.x[:, t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r = sig(a[:, :hid] + r_h[:, :hid])
        z = sig(a[:, hid : 2 * hid] + r_h[:, hid : 2 * hid])
        n = np.tanh(a[:, 2 * hid :] + r * r_h[:, 2 * hid :])
        h = (1 - z) * n + z * h
        np.testing.assert_allclose(got.outputs[:, t], h, **TOL)


# -- attention against Flax's MultiHeadAttention ----------------------------------------------
def _plain_attention(query, key, value, bias=None, mask=None, **kw):
    """Flax's own plain path: dot_product_attention_weights, then the weighted sum."""
    w = dot_product_attention_weights(query, key, bias=bias, mask=mask, dtype=query.dtype, deterministic=True)
    return jnp.einsum("...hqk,...khd->...qhd", w, value)


def _flax_mha(p: dict, prefix: str, d: int, heads: int, dtype, attention_fn=None) -> nnx.MultiHeadAttention:
    kw = {} if attention_fn is None else {"attention_fn": attention_fn}
    mha = nnx.MultiHeadAttention(
        num_heads=heads, in_features=d, decode=False, dtype=dtype, param_dtype=dtype, rngs=nnx.Rngs(0), **kw
    )
    dh = d // heads
    for ours, theirs in (("q_proj", mha.query), ("k_proj", mha.key), ("v_proj", mha.value)):
        theirs.kernel.set_value(jnp.asarray(p[f"{prefix}{ours}.weight"].T.reshape(d, heads, dh), dtype))
        theirs.bias.set_value(jnp.asarray(p[f"{prefix}{ours}.bias"].reshape(heads, dh), dtype))
    mha.out.kernel.set_value(jnp.asarray(p[f"{prefix}out_proj.weight"].T.reshape(heads, dh, d), dtype))
    mha.out.bias.set_value(jnp.asarray(p[f"{prefix}out_proj.bias"], dtype))
    return mha


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("precision", "path"), [("float64", "reference"), ("float32", "fused_attention")])
def test_attention_matches_flax_multihead(causal: bool, precision: str, path: str) -> None:
    spec = tiny_spec("transformer", causal=causal)
    dtype = jnp.dtype(precision)
    p = {k: jnp.asarray(v, dtype) for k, v in spec.random_params(seed=4).items()}
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.standard_normal((3, 5, spec.d_model)), dtype)
    lengths = jnp.asarray(LENGTHS, jnp.int32)
    ours = self_attention(p, "layers.0.self_attn.", x, lengths, spec, path, KeyStream(None))
    # Flax: mask True = attend (torch's key_padding_mask is the opposite)
    valid = np.arange(5)[None, :] < LENGTHS[:, None]
    mask = np.broadcast_to(valid[:, None, None, :], (3, 1, 5, 5))
    if causal:
        mask = mask & np.tril(np.ones((5, 5), bool))
    mha = _flax_mha(
        {k: np.asarray(v) for k, v in p.items()},
        "layers.0.self_attn.",
        spec.d_model,
        spec.num_heads,
        dtype,
        _plain_attention if precision == "float64" else None,
    )
    theirs = mha(x, mask=jnp.asarray(mask), deterministic=True)
    tol = TOL if precision == "float64" else {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(ours, theirs, **tol)


# -- paths ----------------------------------------------------------------------------------------
# per-step heads give the custom VJP a cotangent at every step, classify heads only at the
# final state; attention pooling gives both.
FAST_VS_REFERENCE = ["rnn", "lstm", "gru", "bilstm", "attention_lstm"]


# the tiny cases hoist the input projection; input 1 into H=8 folds it into the step's matmul
FOLDED = {"input_size": 1, "hidden_size": 8}


@pytest.mark.parametrize("fold", [False, True], ids=["hoisted", "folded"])
@pytest.mark.parametrize("layout", ["scan_batch", "scan_feature"])
@pytest.mark.parametrize("case", FAST_VS_REFERENCE)
def test_scan_path_equals_reference_path(case: str, layout: str, fold: bool) -> None:
    """The custom-VJP scan (either layout, input projection hoisted or folded into the step) against
    the plain scan: values, gates, every gradient."""
    spec = case_spec(case, **(FOLDED if fold else {}))
    cell = "lstm" if case in ("bilstm", "attention_lstm") else case
    folds = fold_width(cell, spec.input_size, spec.hidden_size) > 0
    if fold and cell == "gru":
        assert not folds  # the GRU always hoists
    else:
        assert folds == fold
    params = spec.random_params(seed=6)
    batch = make_batch(spec)
    fast = BE.build(spec, params, precision="float64", path=layout)
    ref = BE.build(spec, params, precision="float64", path="off")
    assert (BE.execution_path(fast), BE.execution_path(ref)) == (layout, "reference")
    a, b = BE.forward(fast, batch, return_extras=True), BE.forward(ref, batch, return_extras=True)
    for name in ("outputs", "pooled", "logits"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), **TOL, err_msg=name)
    for key in b.final_states:
        np.testing.assert_allclose(a.final_states[key], b.final_states[key], **TOL, err_msg=key)
    for key in b.extras:
        np.testing.assert_allclose(a.extras[key], b.extras[key], **TOL, err_msg=key)
    ga, gb = BE.loss_and_grads(fast, batch), BE.loss_and_grads(ref, batch)
    assert ga.loss == pytest.approx(gb.loss, rel=1e-12)
    np.testing.assert_allclose(ga.inputs, gb.inputs, **TOL)
    for name in gb.params:
        np.testing.assert_allclose(ga.params[name], gb.params[name], **TOL, err_msg=name)


def test_fused_attention_equals_reference() -> None:
    """float32: the fused path computes its softmax in float32 (hence float64 never takes it)."""
    spec = case_spec("transformer_pre")
    params = spec.random_params(seed=7)
    batch = make_batch(spec)
    fast = BE.build(spec, params, precision="float32", path="on")
    ref = BE.build(spec, params, precision="float32", path="off")
    assert (BE.execution_path(fast), BE.execution_path(ref)) == ("fused_attention", "reference")
    a, b = BE.forward(fast, batch), BE.forward(ref, batch)
    np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.logits, b.logits, rtol=1e-5, atol=1e-5)
    ga, gb = BE.loss_and_grads(fast, batch), BE.loss_and_grads(ref, batch)
    np.testing.assert_allclose(ga.inputs, gb.inputs, rtol=1e-4, atol=1e-5)
    for name in gb.params:
        np.testing.assert_allclose(ga.params[name], gb.params[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_paths_that_cannot_apply_raise() -> None:
    lstm = tiny_spec("lstm")
    with pytest.raises(PathUnavailable):  # cuDNN's LSTM needs a CUDA device (this is a CPU)
        BE.build(lstm, lstm.init_params(0), precision="float32", path="on")
    tf = tiny_spec("transformer")
    with pytest.raises(PathUnavailable):  # the fused softmax is float32
        BE.build(tf, tf.init_params(0), precision="float64", path="on")
    assert BE.execution_path(BE.build(tf, tf.init_params(0), precision="float64")) == "reference"
    dropped = tiny_spec("transformer", dropout=0.1)
    with pytest.raises(PathUnavailable):  # no attention-weight dropout in jax.nn.dot_product_attention
        BE.build(dropped, dropped.init_params(0), precision="float32", path="on")
    assert BE.execution_path(BE.build(dropped, dropped.init_params(0), precision="float32")) == "reference"


# -- ragged batches ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_ragged_batch_equals_each_sequence_alone(case: str) -> None:
    """Each sequence, put among fresh rows at another position with fresh noise at its padded
    steps, gives the same values at its valid steps; padded steps are exactly zero in
    outputs, gates, attention weights and input gradients."""
    spec = case_spec(case)
    model = BE.build(spec, spec.random_params(seed=8), precision="float64")
    batch = make_batch(spec)
    full = BE.forward(model, batch, return_extras=True)
    grads = BE.loss_and_grads(model, batch)
    mask = batch.mask
    assert np.all(full.outputs[~mask] == 0.0)
    if "gates" in full.extras:
        g = full.extras["gates"]
        cell = getattr(spec, "cell", "lstm")
        assert g.shape == (spec.num_layers * spec.directions, 3, 5, GATES[cell] * spec.hidden_size)
        assert np.all(g[:, ~mask] == 0.0)
    if "attention" in full.extras:
        assert np.all(full.extras["attention"][~mask] == 0.0)
        np.testing.assert_allclose(full.extras["attention"].sum(-1), 1.0, rtol=1e-12)
    assert np.all(grads.inputs[~mask] == 0.0)  # padded steps never change a result
    for b, n in enumerate(LENGTHS):
        at = (b + 1) % len(LENGTHS)
        alone = BE.forward(model, embed(batch, b, at, seed=20 + b), return_extras=True)
        _assert_row(spec, alone, at, full, b, n)


def _assert_row(spec, alone, at: int, full, b: int, n: int) -> None:
    np.testing.assert_allclose(alone.outputs[at, :n], full.outputs[b, :n], **TOL)
    np.testing.assert_allclose(alone.pooled[at], full.pooled[b], **TOL)
    logits = full.logits[b, :n] if spec.head.per_step else full.logits[b]
    np.testing.assert_allclose(alone.logits[at, :n] if spec.head.per_step else alone.logits[at], logits, **TOL)
    for key, value in alone.final_states.items():
        np.testing.assert_allclose(value[:, at], full.final_states[key][:, b], **TOL, err_msg=key)
    if "gates" in alone.extras:
        np.testing.assert_allclose(alone.extras["gates"][:, at, :n], full.extras["gates"][:, b, :n], **TOL)


def test_bilstm_sequence_cut_to_its_length() -> None:
    """Truly alone: batch of one, T = its length (the reverse direction starts at the last step)."""
    spec = case_spec("bilstm")
    model = BE.build(spec, spec.random_params(seed=8), precision="float64")
    batch = make_batch(spec)
    full = BE.forward(model, batch, return_extras=True)
    for b in (1, 2):
        alone = BE.forward(model, single(batch, b, spec.head.per_step), return_extras=True)
        _assert_row(spec, alone, 0, full, b, int(LENGTHS[b]))


def test_padding_content_never_matters() -> None:
    spec = case_spec("bilstm")
    model = BE.build(spec, spec.random_params(seed=9), precision="float64")
    batch = make_batch(spec)
    noisy = Batch(x=batch.x.copy(), lengths=batch.lengths, y=batch.y)
    noisy.x[~batch.mask] = 1e3
    a, b = BE.forward(model, batch), BE.forward(model, noisy)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    np.testing.assert_array_equal(a.final_states["h"], b.final_states["h"])


# -- the module itself ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["lstm", "transformer"])
def test_module_call_equals_jitted_forward(case: str) -> None:
    """The NNX module called op by op (jit disabled) and under nnx.jit == the backend's jitted forward."""
    spec = case_spec(case)
    model = BE.build(spec, spec.random_params(seed=10), precision="float64")
    batch = make_batch(spec)
    x, n = jnp.asarray(batch.x), jnp.asarray(batch.lengths, jnp.int32)
    jitted = BE.forward(model, batch)
    with jax.disable_jit():
        eager = model(x, n)
    np.testing.assert_allclose(eager["outputs"], jitted.outputs, **TOL)
    np.testing.assert_allclose(eager["logits"], jitted.logits, **TOL)
    if case == "lstm":
        via_nnx = nnx.jit(lambda m, x, n: m(x, n)["logits"])(model, x, n)
        np.testing.assert_allclose(via_nnx, jitted.logits, **TOL)


@pytest.mark.parametrize("arch", ["bilstm", "transformer"])
def test_dropout_only_in_training(arch: str) -> None:
    spec = tiny_spec(arch, dropout=0.5)  # between the bilstm's two layers; everywhere in the transformer
    model = BE.build(spec, spec.random_params(seed=11), precision="float64")
    batch = make_batch(spec)
    e1, e2 = BE.forward(model, batch, seed=1), BE.forward(model, batch, seed=2)
    np.testing.assert_array_equal(e1.outputs, e2.outputs)
    t1, t1b, t2 = (BE.forward(model, batch, train=True, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(t1.outputs, t1b.outputs)  # seeded
    assert not np.allclose(t1.outputs, t2.outputs)
    assert not np.allclose(t1.outputs, e1.outputs)
    assert np.all(t1.outputs[~batch.mask] == 0.0)


def test_forget_bias_reaches_the_model() -> None:
    spec = make_spec("lstm", input_size=2, hidden_size=3, forget_retention=50)
    exported = BE.export_params(BE.build(spec, spec.init_params(0), precision="float64"))
    f = slice(3, 6)
    np.testing.assert_allclose(exported["rnn.bias_ih_l0"][f], spec.effective_forget_bias)
    assert np.all(exported["rnn.bias_hh_l0"][f] == 0.0)


def test_jit_is_reused_across_models_of_one_config() -> None:
    spec = case_spec("rnn")
    a = BE.build(spec, spec.random_params(1), precision="float64")
    b = BE.build(spec, spec.random_params(2), precision="float64")
    batch = make_batch(spec)
    ra, rb = BE.forward(a, batch), BE.forward(b, batch)
    assert not np.allclose(ra.outputs, rb.outputs)  # the parameters, not a stale closure
    assert jax.tree.structure(a.static_key()) is not None and a.static_key() == b.static_key()


# -- the spec's math, written again in NumPy -------------------------------------------------------
def _np_layer_norm(z: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = z.mean(-1, keepdims=True)
    var = ((z - mean) ** 2).mean(-1, keepdims=True)
    return (z - mean) / np.sqrt(var + eps) * w + b


def _np_transformer(spec, p: dict, x: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The transformer spec docstring in NumPy: (outputs, logits)."""
    batch, seq_len, _ = x.shape
    d, heads = spec.d_model, spec.num_heads
    h = x @ p["input_proj.weight"].T + p["input_proj.bias"]
    t = np.arange(seq_len)[:, None]
    if spec.positional == "sinusoidal":
        i2 = np.arange(0, d, 2)[None, :]
        pe = np.zeros((seq_len, d))
        pe[:, 0::2], pe[:, 1::2] = np.sin(t / 10000 ** (i2 / d)), np.cos(t / 10000 ** (i2 / d))
        h = h + pe
    elif spec.positional == "learned":
        h = h + p["pos_embedding"][:seq_len]
    keys_ok = np.arange(seq_len)[None, None, None, :] < lengths[:, None, None, None]
    if spec.causal:
        keys_ok = keys_ok & (np.arange(seq_len)[None, :] <= t)[None, None]
    erf = np.vectorize(math.erf)

    def lin(z, name):
        return z @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def sa(z, pre):
        q, k, v = (lin(z, f"{pre}self_attn.{n}_proj").reshape(batch, seq_len, heads, d // heads) for n in "qkv")
        s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d // heads)
        s = np.where(keys_ok, s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        a = a / a.sum(-1, keepdims=True)
        return lin(np.einsum("bhqk,bkhd->bqhd", a, v).reshape(batch, seq_len, d), f"{pre}self_attn.out_proj")

    def ff(z, pre):
        u = lin(z, f"{pre}linear1")
        u = np.maximum(u, 0) if spec.activation == "relu" else 0.5 * u * (1 + erf(u / np.sqrt(2)))
        return lin(u, f"{pre}linear2")

    def ln(z, name):
        return _np_layer_norm(z, p[f"{name}.weight"], p[f"{name}.bias"], spec.layer_norm_eps)

    for i in range(spec.num_layers):
        pre = f"layers.{i}."
        if spec.norm_first:
            h = h + sa(ln(h, f"{pre}norm1"), pre)
            h = h + ff(ln(h, f"{pre}norm2"), pre)
        else:
            h = ln(h + sa(h, pre), f"{pre}norm1")
            h = ln(h + ff(h, pre), f"{pre}norm2")
    if spec.norm_first:
        h = ln(h, "final_norm")
    valid = np.arange(seq_len)[None, :] < lengths[:, None]
    out = np.where(valid[..., None], h, 0.0)
    if spec.resolved_pooling == "mean":
        pooled = out.sum(1) / lengths[:, None]
    else:
        pooled = out[np.arange(batch), lengths - 1]
    feats = out if spec.head.per_step else pooled
    return out, feats @ p["head.weight"].T + p["head.bias"]


@pytest.mark.parametrize("case", ["transformer", "transformer_pre"])
def test_transformer_matches_numpy(case: str) -> None:
    """Positions, the spec's LayerNorm eps (1e-3 here, neither framework's default), exact GELU,
    masks, both norm placements and poolings, against NumPy."""
    spec = case_spec(case)
    p = spec.random_params(seed=70)
    batch = make_batch(spec, seed=71)
    got = BE.forward(BE.build(spec, p, precision="float64"), batch)
    outputs, logits = _np_transformer(spec, p, batch.x, batch.lengths)
    np.testing.assert_allclose(got.outputs, outputs, **TOL)
    np.testing.assert_allclose(got.logits, logits, **TOL)


def test_attention_pooling_matches_numpy() -> None:
    """e_t = w_s . tanh(W_k o_t + b_k + W_q q), masked softmax, context, on the encoder's own o and q."""
    spec = case_spec("attention_lstm")
    p = spec.random_params(seed=72)
    batch = make_batch(spec, seed=73)
    got = BE.forward(BE.build(spec, p, precision="float64"), batch, return_extras=True)
    o = got.outputs
    h = got.final_states["h"]
    q = np.concatenate([h[-2], h[-1]], axis=-1)  # last layer, (forward, reverse)
    e = np.tanh(o @ p["attn.key.weight"].T + p["attn.key.bias"] + (q @ p["attn.query.weight"].T)[:, None])
    e = (e @ p["attn.score.weight"].T)[..., 0]
    e = np.where(batch.mask, e, -np.inf)
    a = np.exp(e - e.max(-1, keepdims=True))
    a = a / a.sum(-1, keepdims=True)
    np.testing.assert_allclose(got.extras["attention"], a, **TOL)
    np.testing.assert_allclose(got.pooled, np.einsum("bt,btd->bd", a, o), **TOL)
    np.testing.assert_allclose(got.logits, got.pooled @ p["head.weight"].T + p["head.bias"], **TOL)


def test_jax_path_names_are_the_model_files_paths() -> None:
    """The grid refuses a path by name that the backend's table lacks: the table must be the models'."""
    import inspect

    import jax_impl
    from experiments.backend import PATH_NAMES

    # every model file in the registry, so that a new architecture's paths are covered with no edit here
    # (attention_lstm.py runs recurrent.py's encoder and names no paths of its own)
    files = {inspect.getmodule(cls) for cls in jax_impl.MODELS.values()}
    assert set(PATH_NAMES["jax"]) == {name for module in files for name in getattr(module, "EXECUTION_PATHS", ())}
