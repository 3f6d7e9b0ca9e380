"""The jax ``cudnn`` path (``jax.experimental.rnn``, cuDNN's LSTM): packing, the encoder around it, the switch.

cuDNN itself needs a GPU. On CPU, ``jax.experimental.rnn.lstm_ref`` (pure JAX) reads the same
flat weight vector through jax's own ``unpack_lstm_weights``; ``cudnn_lstm.lstm_ref_kernel`` puts
it behind ``rnn.lstm``'s signature, so everything of ours around the kernel (packing, stacking,
directions, ragged lengths, dropout between calls, gates, precision) is checked here against the
reference and scan paths, in float64 (lstm_ref computes in the inputs' dtype). The ``gpu`` test at
the end runs cuDNN itself against the scan path where a CUDA device is visible.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jax_helpers import case_spec, make_batch, tiny_spec
from _verify_helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import rnn

import jax_impl
from experiments.errors import PathUnavailable
from experiments.spec import make_spec
from jax_impl import recurrent
from jax_impl.kernels import cudnn_lstm
from jax_impl.layers import KeyStream, matmul_precision
from jax_impl.recurrent import WEIGHT_KINDS, cudnn_encoder, encoder_apply, path_reason, recurrent_apply, resolve_path

BE = jax_impl.BACKEND
TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64: the same math in another order
NO_KEYS = KeyStream(None)


def _layers(spec: Any, p: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    sfx = ("", "_reverse")[: spec.directions]
    return [[tuple(p[f"rnn.{k}_l{i}{s}"] for k in WEIGHT_KINDS) for s in sfx] for i in range(spec.num_layers)]


# sizes small enough that every example's compiles stay short; lengths ragged, 1 <= n <= T
sizes = st.fixed_dictionaries(
    {
        "input_size": st.integers(1, 4),
        "hidden_size": st.integers(1, 5),
        "num_layers": st.integers(1, 2),
        "bidirectional": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


@st.composite
def ragged_batches(draw: Any) -> tuple[int, np.ndarray]:
    seq_len = draw(st.integers(1, 6))
    lengths = draw(st.lists(st.integers(1, seq_len), min_size=1, max_size=4))
    return seq_len, np.asarray(lengths, dtype=np.int32)


def _case(size: dict[str, Any], seq_len: int, lengths: np.ndarray) -> tuple[Any, dict[str, Any], Any, Any]:
    fields = {k: v for k, v in size.items() if k != "seed"}
    spec = make_spec("lstm", **fields)
    params = {k: jnp.asarray(v) for k, v in spec.random_params(seed=size["seed"]).items()}
    rng = np.random.default_rng(size["seed"])
    x = jnp.asarray(rng.standard_normal((len(lengths), seq_len, spec.input_size)))  # noise at padded steps too
    return spec, params, x, jnp.asarray(lengths)


# -- the flat weight vector -----------------------------------------------------------------------
@settings(max_examples=examples(quick=10, thorough=100))
@given(size=sizes)
def test_packing_is_the_layout_jax_unpacks_bit_for_bit(size: dict[str, Any]) -> None:
    """Every tensor lands where ``rnn.unpack_lstm_weights`` (the layout cuDNN is driven with) reads it,
    pseudo-layer D * layer + direction, and the vector has exactly cuDNN's parameter count."""
    spec, params, _, _ = _case(size, 1, np.ones(1, np.int32))
    layers = _layers(spec, params)
    flat = cudnn_lstm.pack_lstm_weights(layers)
    args = (spec.input_size, spec.hidden_size, spec.num_layers, spec.bidirectional)
    assert flat.shape == (rnn.get_num_params_in_lstm(*args),)
    unpacked = rnn.unpack_lstm_weights(flat, *args)
    for i, directions in enumerate(layers):
        for d, ours in enumerate(directions):
            for kind, theirs, mine in zip(WEIGHT_KINDS, unpacked, ours, strict=True):
                np.testing.assert_array_equal(theirs[spec.directions * i + d], mine, err_msg=f"{kind} {i} {d}")


@settings(max_examples=examples(quick=5, thorough=60))
@given(size=sizes, ragged=ragged_batches())
def test_lstm_ref_on_packed_weights_equals_the_reference_and_scan_paths(size: dict[str, Any], ragged: Any) -> None:
    """jax's own LSTM on our packed vector == our reference and scan paths: outputs (zero at padded steps)
    and final h, c at each sequence's length, uni- and bidirectional, 1 or 2 layers, ragged lengths."""
    spec, params, x, lengths = _case(size, *ragged)

    @jax.jit
    def run(p: dict[str, Any], x: Any, n: Any) -> tuple[dict[str, Any], ...]:
        ref = encoder_apply(spec, "lstm", p, x, n, path="reference", keys=NO_KEYS)
        scan = encoder_apply(spec, "lstm", p, x, n, path="scan", keys=NO_KEYS)
        ours = cudnn_encoder(spec, "lstm", p, x, n, keys=NO_KEYS, kernel=cudnn_lstm.lstm_ref_kernel)
        return ref, scan, ours

    ref, scan, ours = run(params, x, lengths)
    assert ours["outputs"].dtype == jnp.float64
    assert ours["outputs"].shape == ref["outputs"].shape  # (B, T, D*H)
    assert ours["h"].shape == ours["c"].shape == ref["h"].shape  # (L*D, B, H)
    pad = ~(np.arange(x.shape[1])[None, :] < np.asarray(lengths)[:, None])
    assert np.all(np.asarray(ours["outputs"])[pad] == 0.0)
    for other in (ref, scan):
        for key in ("outputs", "h", "c"):
            np.testing.assert_allclose(ours[key], other[key], **TOL, err_msg=key)


def test_a_wrong_gate_order_is_seen() -> None:
    """The comparison above can fail: the g and o blocks swapped (MIOpen's order, ``rnn.swap_lstm_gates``),
    or W_ih and W_hh swapped, give other numbers."""
    spec = tiny_spec("lstm", hidden_size=4, input_size=4)
    p = {k: jnp.asarray(v) for k, v in spec.random_params(seed=1).items()}
    batch = make_batch(spec)
    x, n = jnp.asarray(batch.x), jnp.asarray(batch.lengths, jnp.int32)
    good = encoder_apply(spec, "lstm", p, x, n, path="reference", keys=NO_KEYS)["outputs"]
    hid = spec.hidden_size

    def swap_go(a: Any) -> Any:  # blocks i, f, g, o -> i, f, o, g
        return jnp.concatenate([a[: 2 * hid], a[3 * hid :], a[2 * hid : 3 * hid]])

    w_ih, w_hh, b_ih, b_hh = _layers(spec, p)[0][0]
    wrong = {
        "gates g, o swapped": [[tuple(swap_go(a) for a in (w_ih, w_hh, b_ih, b_hh))]],
        "W_ih, W_hh swapped": [[(w_hh, w_ih, b_ih, b_hh)]],
    }
    for what, layers in wrong.items():
        y, _, _ = cudnn_lstm.lstm_layers(
            x, n, layers, precision=jax.lax.Precision.HIGHEST, kernel=cudnn_lstm.lstm_ref_kernel
        )
        assert float(jnp.max(jnp.abs(y - good))) > 1e-2, what
    right, _, _ = cudnn_lstm.lstm_layers(
        x, n, _layers(spec, p), precision=jax.lax.Precision.HIGHEST, kernel=cudnn_lstm.lstm_ref_kernel
    )
    np.testing.assert_allclose(right, good, **TOL)


# -- the cudnn path through the model's function (the kernel swapped for lstm_ref) ---------------------
class Recorder:
    """``rnn.lstm``'s stand-in: ``lstm_ref_kernel``, remembering each call's static arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: Any, **static: Any) -> Any:
        self.calls.append(static)
        return cudnn_lstm.lstm_ref_kernel(*args, **static)


def _loss(apply_out: dict[str, Any], weights: dict[str, Any]) -> Any:
    """A loss with a cotangent on every output, final state and logit."""
    final = apply_out["final_states"]
    return (
        jnp.sum(apply_out["outputs"] * weights["outputs"])
        + jnp.sum(apply_out["logits"] * weights["logits"])
        + jnp.sum(final["h"] * weights["h"])
        + jnp.sum(final["c"] * weights["c"])
    )


# float32: lstm_ref and the scan both compute in float32 (the real kernel's dtype) over T <= 5 steps;
# the scan's sigmoid is tanh(z/2)/2 + 1/2 (an ulp of 1/2 off) and its sums run in another order, a few
# float32 ulps (~1e-7) per step. 2e-5 is 100x that, and 500x below what a packing error gives (above: > 1e-2).
F32 = {"rtol": 2e-5, "atol": 2e-5}


@pytest.mark.parametrize(
    ("case", "precision"),
    [("lstm", "float64"), ("bilstm", "float64"), ("attention_lstm", "float64"), ("bilstm", "float32")],
)
def test_cudnn_path_of_the_model_equals_the_scan_path(case: str, precision: str) -> None:
    """``recurrent_apply`` / the attention LSTM's apply with ``path="cudnn"``: every output, final state,
    the gates (taken from the scan kernel), and the gradients w.r.t. parameters and inputs, against ``scan``.
    One cuDNN call for the whole stack (no dropout in eval)."""
    spec = case_spec(case, num_layers=2) if case == "bilstm" else case_spec(case)
    dtype = jnp.float64 if precision == "float64" else jnp.float32
    params = {k: jnp.asarray(v, dtype) for k, v in spec.random_params(seed=4).items()}
    batch = make_batch(spec, seed=5)
    x, n = jnp.asarray(batch.x, dtype), jnp.asarray(batch.lengths, jnp.int32)
    fn = jax_impl.MODELS[spec.arch].apply  # the family's pure function: the path is an argument here
    tol = TOL if precision == "float64" else F32

    def run(path: str, p: dict[str, Any], x: Any) -> dict[str, Any]:
        with matmul_precision(precision):
            return fn(spec, p, x, n, path=path, return_extras=True)

    recorder = Recorder()
    with mock.patch.object(cudnn_lstm, "lstm_kernel", recorder):
        ours = jax.jit(lambda p, x: run("cudnn", p, x))(params, x)
        scan = jax.jit(lambda p, x: run("scan", p, x))(params, x)
        assert len(recorder.calls) == 1
        assert recorder.calls[0]["num_layers"] == spec.num_layers
        assert recorder.calls[0]["bidirectional"] == (spec.directions == 2)
        for name in ("outputs", "pooled", "logits"):
            np.testing.assert_allclose(ours[name], scan[name], **tol, err_msg=name)
        for name in scan["final_states"]:
            np.testing.assert_allclose(ours["final_states"][name], scan["final_states"][name], **tol, err_msg=name)
        for name in scan["extras"]:
            np.testing.assert_allclose(ours["extras"][name], scan["extras"][name], **tol, err_msg=name)

        rng = np.random.default_rng(6)
        weights = {
            "outputs": rng.standard_normal(scan["outputs"].shape),
            "logits": rng.standard_normal(scan["logits"].shape),
            "h": rng.standard_normal(scan["final_states"]["h"].shape),
            "c": rng.standard_normal(scan["final_states"]["c"].shape),
        }
        weights = {k: jnp.asarray(v, dtype) for k, v in weights.items()}

        def grads(path: str) -> Any:
            return jax.jit(jax.grad(lambda p, x: _loss(run(path, p, x), weights), argnums=(0, 1)))(params, x)

        (gp_ours, gx_ours), (gp_scan, gx_scan) = grads("cudnn"), grads("scan")
    np.testing.assert_allclose(gx_ours, gx_scan, **tol)
    for name in gp_scan:
        np.testing.assert_allclose(gp_ours[name], gp_scan[name], **tol, err_msg=name)


def test_dropout_between_layers_is_ours_one_call_per_layer() -> None:
    """Training with dropout between layers: one kernel call per layer, dropout 0 passed to cuDNN, and the
    same masks as the scan path (the same key stream), so the same numbers; in eval, one call."""
    spec = tiny_spec("bilstm", dropout=0.5)
    p = {k: jnp.asarray(v) for k, v in spec.random_params(seed=7).items()}
    batch = make_batch(spec)
    x, n = jnp.asarray(batch.x), jnp.asarray(batch.lengths, jnp.int32)
    key = jax.random.key(3)
    recorder = Recorder()
    ours = cudnn_encoder(spec, "lstm", p, x, n, keys=KeyStream(key), want_gates=True, kernel=recorder)
    scan = encoder_apply(spec, "lstm", p, x, n, path="scan", keys=KeyStream(key), want_gates=True)
    assert [c["num_layers"] for c in recorder.calls] == [1] * spec.num_layers
    assert all(c["dropout"] == 0.0 for c in recorder.calls)
    for name in ("outputs", "h", "c", "gates"):
        np.testing.assert_allclose(ours[name], scan[name], **TOL, err_msg=name)
    evaluated = cudnn_encoder(spec, "lstm", p, x, n, keys=KeyStream(None), kernel=recorder)
    assert recorder.calls[-1]["num_layers"] == spec.num_layers
    assert not np.allclose(evaluated["outputs"], ours["outputs"])  # the dropout did act in training


@pytest.mark.parametrize(
    ("precision", "expected", "tf32"),
    [("float32", jax.lax.Precision.HIGHEST, False), ("tf32", jax.lax.Precision.HIGH, True)],
)
def test_the_precision_reaches_cudnn_and_float32_turns_tf32_off(
    precision: str, expected: jax.lax.Precision, tf32: bool
) -> None:
    """Under the model's matmul precision, the kernel gets HIGHEST (float32) or HIGH (tf32); in the installed
    jax, HIGHEST is what turns cuDNN's TF32 off (``cudnn_allow_tf32=False``: CUDNN_FMA_MATH)."""
    spec = tiny_spec("lstm")
    p = {k: jnp.asarray(v, jnp.float32) for k, v in spec.random_params(seed=8).items()}
    batch = make_batch(spec)
    recorder = Recorder()
    with mock.patch.object(cudnn_lstm, "lstm_kernel", recorder), matmul_precision(precision):
        recurrent_apply(spec, p, jnp.asarray(batch.x, jnp.float32), jnp.asarray(batch.lengths), path="cudnn")
    (call,) = recorder.calls
    assert call["precision"] == expected
    assert rnn._lstm_cudnn_allow_tf32(call["precision"]) is tf32  # the installed API's own rule


# -- the switch ------------------------------------------------------------------------------------
def test_auto_and_on_by_cell_precision_and_device() -> None:
    """auto: cudnn for an LSTM on CUDA in float32 (TF32 off) or tf32; scan elsewhere, with the reason.
    on / cudnn: cudnn, or PathUnavailable with a one-line message naming why."""
    for precision in ("float32", "tf32"):
        for requested in ("auto", "on", "cudnn"):
            assert resolve_path(requested, "lstm", precision, "cuda") == "cudnn"
        assert path_reason("auto", "lstm", precision, "cuda") is None
    refused = {
        ("lstm", "float32", "cpu"): "CUDA",
        ("lstm", "float64", "cuda"): "float32",
        ("lstm", "bfloat16", "cuda"): "float32",
        ("gru", "float32", "cuda"): "LSTM only",
        ("rnn", "tf32", "cuda"): "LSTM only",
    }
    for (cell, precision, device), why in refused.items():
        assert resolve_path("auto", cell, precision, device) == "scan"
        reason = path_reason("auto", cell, precision, device)
        assert reason is not None and reason.startswith("auto chose scan, not cudnn") and why in reason
        for requested in ("on", "cudnn"):
            with pytest.raises(PathUnavailable, match=why) as info:
                resolve_path(requested, cell, precision, device)
            assert "\n" not in str(info.value)
            assert path_reason(requested, cell, precision, device) is None  # nothing fell back: it raised
    for device in ("cpu", "cuda"):
        assert resolve_path("off", "lstm", "float32", device) == "reference"
        for name in ("scan", "scan_batch", "scan_feature", "reference"):
            assert resolve_path(name, "lstm", "float32", device) == name
            assert path_reason(name, "lstm", "float32", device) is None
    with pytest.raises(ValueError, match="unknown path"):
        resolve_path("fused_attention", "lstm", "float32", "cuda")


def test_a_model_keeps_why_auto_chose_scan() -> None:
    """The built model: ``path`` (what the record's ``path`` reports) and ``path_reason``. A model for cuda is
    constructed here without a GPU (only the backend's ``build`` places it on the device)."""
    lstm, gru = tiny_spec("lstm"), tiny_spec("gru")
    on_cpu = BE.build(lstm, lstm.init_params(0), precision="float32")
    assert BE.execution_path(on_cpu) == "scan"
    assert "CUDA" in on_cpu.path_reason
    for arch in ("lstm", "bilstm", "attention_lstm"):
        spec = tiny_spec(arch)
        model = jax_impl.MODELS[arch](spec, precision="float32", path="auto", device="cuda")
        assert (model.execution_path(), model.path_reason) == ("cudnn", None)
    model = jax_impl.MODELS["gru"](gru, precision="tf32", path="auto", device="cuda")
    assert model.execution_path() == "scan" and "LSTM only" in model.path_reason
    with pytest.raises(PathUnavailable, match="LSTM only"):
        jax_impl.MODELS["gru"](gru, precision="float32", path="on", device="cuda")
    assert recurrent.EXECUTION_PATHS[-1] == "cudnn"  # a grid may ask for it by name


# -- cuDNN itself (a CUDA device) ---------------------------------------------------------------------
def _has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _has_gpu(), reason="needs a CUDA device visible to jax")
@pytest.mark.parametrize("case", ["lstm", "bilstm"])
def test_cudnn_equals_scan_on_the_gpu(case: str) -> None:
    """cuDNN's LSTM against the scan path on the same GPU, ragged batch: float32 (TF32 off) to float32
    rounding, and both against a float64 CPU reference: TF32 off is an order of magnitude closer than tf32
    at H = I = 256 (TF32 keeps 10 mantissa bits: ~5e-4 relative per product, ~1e-4 on a pre-activation)."""
    spec = case_spec(case, input_size=256, hidden_size=256, **({"num_layers": 2} if case == "bilstm" else {}))
    params = spec.init_params(0)
    lengths = np.array([50, 17, 33, 1, 50, 8, 29, 44], dtype=np.int64)
    batch = make_batch(spec, lengths=lengths, seed=1)  # x ~ N(0, 1)
    exact = BE.forward(BE.build(spec, params, precision="float64", path="reference"), batch)
    errors = {}
    for precision in ("float32", "tf32"):
        fast = BE.build(spec, params, precision=precision, device="cuda", path="cudnn")
        scan = BE.build(spec, params, precision=precision, device="cuda", path="scan")
        assert BE.execution_path(fast) == "cudnn"
        a, b = BE.forward(fast, batch), BE.forward(scan, batch)
        assert np.all(a.outputs[~batch.mask] == 0.0)
        errors[precision] = float(np.max(np.abs(a.outputs - exact.outputs)))
        if precision == "float32":
            np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-4, atol=1e-5)
            for name in b.final_states:
                np.testing.assert_allclose(a.final_states[name], b.final_states[name], rtol=1e-4, atol=1e-5)
            ga, gb = BE.loss_and_grads(fast, batch), BE.loss_and_grads(scan, batch)
            assert ga.loss == pytest.approx(gb.loss, rel=1e-5)
            grads = {"inputs": (ga.inputs, gb.inputs)} | {k: (ga.params[k], gb.params[k]) for k in gb.params}
            for name, (got, want) in grads.items():  # relative to each gradient's own scale (float32 sums)
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * float(np.max(np.abs(want))), err_msg=name)
    assert errors["float32"] < 5e-5, errors
    assert errors["tf32"] > 10 * errors["float32"], errors  # TF32 on is visible, so off above is real
