"""The kernel a torch recurrent model names (``execution_path``) is the kernel that runs: checked in
the profiler, one training step per case. oneDNN's fused RNN primitive shows as
``aten::mkldnn_rnn_layer`` (forward) and ``aten::mkldnn_rnn_layer_backward``; ATen's per-step kernel
as ``aten::mm`` ... every step and neither of those. Then: onednn and aten compute the same numbers.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from _torch_helpers import random_batch
from torch.profiler import ProfilerActivity, profile

from experiments.errors import PathUnavailable
from experiments.spec import OptimizerSpec, make_spec
from torch_impl import BACKEND
from torch_impl.recurrent import backend_flag

FWD, BWD = "aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward"
RECURRENT = ("rnn", "lstm", "gru", "bilstm", "attention_lstm")
PRECISIONS = ("float32", "float64", "bfloat16")
STEPS = 6

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


def _spec(arch: str, **fields):
    return make_spec(arch, **{"input_size": 3, "hidden_size": 8, "head_out": 3, **fields})


def _model(arch: str, precision: str = "float32", path: str = "auto", **fields):
    spec = _spec(arch, **fields)
    return spec, BACKEND.build(spec, spec.random_params(seed=1), precision=precision, path=path)


def _ops(fn) -> set[str]:
    """The names of every op the profiler saw while ``fn()`` ran (forward and autograd's backward)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key for e in prof.key_averages()}


def _train_step_ops(model, spec, *, ragged: bool) -> set[str]:
    state = BACKEND.make_train_state(model, OptimizerSpec(name="sgd", lr=1e-3))
    batch = BACKEND.prepare_batch(state, random_batch(spec, 4, STEPS, seed=2, ragged=ragged))
    return _ops(lambda: BACKEND.train_step(state, batch))


def _onednn_flag(enabled: bool) -> contextlib.AbstractContextManager[None]:
    """oneDNN on or off process-wide for a block (the flag ``auto`` reads at call time)."""
    return backend_flag(torch.backends.mkldnn, enabled)


def _assert_kernel(ops: set[str], kernel: str) -> None:
    """``onednn`` exactly when the fused primitive ran, forward AND backward; ``aten`` never shows it."""
    assert kernel in ("onednn", "aten"), kernel
    fused = kernel == "onednn"
    assert (FWD in ops, BWD in ops) == (fused, fused), (kernel, sorted(o for o in ops if "rnn" in o or "lstm" in o))
    if not fused:
        assert "aten::mm" in ops or "aten::addmm" in ops  # the per-step matmuls ran instead


# -- the rule, one training step per case ------------------------------------------------------------


@needs_onednn
@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("arch", RECURRENT)
def test_named_kernel_is_the_one_that_runs(arch: str, precision: str, ragged: bool) -> None:
    """``auto``: what the model names for a full batch runs; a ragged batch runs ``aten`` (packed)."""
    spec, model = _model(arch, precision)
    named = BACKEND.execution_path(model)
    fused_expected = arch in ("lstm", "bilstm", "attention_lstm") and precision == "float32"
    if precision == "bfloat16" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        fused_expected = arch in ("lstm", "bilstm", "attention_lstm")  # a CPU with native bf16
    assert named == ("onednn" if fused_expected else "aten")
    _assert_kernel(_train_step_ops(model, spec, ragged=ragged), "aten" if ragged else named)


@needs_onednn
@pytest.mark.parametrize(
    "fields",
    [
        {"num_layers": 2, "dropout": 0.3},  # dropout between layers, in train mode
        {"num_layers": 2, "bidirectional": True},
        {"head_kind": "per_step_regress"},
    ],
)
def test_onednn_covers_layers_directions_and_dropout(fields: dict) -> None:
    spec, model = _model("lstm", **fields)
    assert BACKEND.execution_path(model) == "onednn"
    _assert_kernel(_train_step_ops(model, spec, ragged=False), "onednn")


@needs_onednn
def test_eval_forward_without_grad_runs_the_named_kernel() -> None:
    spec, model = _model("lstm")
    batch = random_batch(spec, 4, STEPS, seed=2, ragged=False)
    assert FWD in _ops(lambda: BACKEND.forward(model, batch))
    _, aten = _model("lstm", path="aten")
    assert FWD not in _ops(lambda: BACKEND.forward(aten, batch))


@needs_onednn
@pytest.mark.parametrize("path", ["aten", "onednn", "on"])
def test_a_path_by_name_runs_that_kernel(path: str) -> None:
    spec, model = _model("lstm", path=path)
    named = BACKEND.execution_path(model)
    assert named == ("onednn" if path == "on" else path)
    _assert_kernel(_train_step_ops(model, spec, ragged=False), named)


@needs_onednn
def test_auto_follows_the_global_flag_and_named_kernels_override_it() -> None:
    """oneDNN turned off process-wide: ``auto`` names and runs ``aten``; ``onednn`` still runs oneDNN."""
    spec, auto = _model("lstm")
    _, forced = _model("lstm", path="onednn")
    with _onednn_flag(False):
        assert BACKEND.execution_path(auto) == "aten"
        _assert_kernel(_train_step_ops(auto, spec, ragged=False), "aten")
        assert BACKEND.execution_path(forced) == "onednn"
        _assert_kernel(_train_step_ops(forced, spec, ragged=False), "onednn")
    assert not torch.backends.mkldnn.enabled or BACKEND.execution_path(auto) == "onednn"


@needs_onednn
@pytest.mark.parametrize(("path", "flag_in_backward"), [("aten", True), ("onednn", False)])
def test_the_backward_follows_the_forwards_kernel(path: str, flag_in_backward: bool) -> None:
    """The flags are set around the forward only; the backward, run under the opposite flag, is the
    forward kernel's own backward (autograd recorded it)."""
    spec, model = _model("lstm", path=path)
    b = BACKEND.prepare_batch(model, random_batch(spec, 4, STEPS, seed=2, ragged=False))
    model.train()
    loss = model(b.x, b.lengths, b.mask).logits.square().sum()
    with _onednn_flag(flag_in_backward):
        ops = _ops(loss.backward)
    assert (BWD in ops) == (path == "onednn")


# -- a kernel by name that cannot run raises ---------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "precision"),
    [("gru", "float32"), ("rnn", "float32"), ("lstm", "float64"), ("bilstm", "float64")],
)
def test_onednn_that_cannot_run_raises(arch: str, precision: str) -> None:
    spec, model = _model(arch, precision, path="onednn")
    with pytest.raises(PathUnavailable, match="onednn"):
        BACKEND.execution_path(model)
    with pytest.raises(PathUnavailable, match="onednn"):
        BACKEND.forward(model, random_batch(spec, 3, STEPS, seed=0, ragged=False))


@needs_onednn
def test_onednn_with_a_ragged_batch_raises_never_falls_back() -> None:
    spec, model = _model("lstm", path="onednn")
    with pytest.raises(PathUnavailable, match="packed"):
        BACKEND.forward(model, random_batch(spec, 3, STEPS, seed=0, ragged=True))
    _, aten = _model("lstm", path="aten")
    BACKEND.forward(aten, random_batch(spec, 3, STEPS, seed=0, ragged=True))  # aten takes any batch


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for cuDNN where there is none")
def test_cudnn_on_cpu_raises() -> None:
    _, model = _model("lstm", path="cudnn")
    with pytest.raises(PathUnavailable, match="cudnn"):
        BACKEND.execution_path(model)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("path", ["auto", "aten", "onednn"])
def test_cuda_kernels(path: str) -> None:
    spec = _spec("lstm")
    model = BACKEND.build(spec, spec.random_params(seed=1), precision="float32", device="cuda", path=path)
    if path == "onednn":
        with pytest.raises(PathUnavailable):
            BACKEND.execution_path(model)
        return
    assert BACKEND.execution_path(model) == ("cudnn" if path == "auto" else "aten")
    state = BACKEND.make_train_state(model, OptimizerSpec(name="sgd", lr=1e-3))
    batch = BACKEND.prepare_batch(state, random_batch(spec, 4, STEPS, seed=2, ragged=False))
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        BACKEND.train_step(state, batch)
        torch.cuda.synchronize()
    ops = {e.key for e in prof.key_averages()}
    assert ("aten::_cudnn_rnn" in ops) == (path == "auto")


# -- onednn and aten agree ---------------------------------------------------------------------------

# Measured (float32, inputs N(0, 1), random_params seeds 0-4, torch 2.13, AVX2 CPU, max |a - b| / max |b|
# over outputs, final states and every gradient): lstm/bilstm 2 layers (H=8, T=6) 4e-7 to 7.5e-7; H=64
# and H=128 at T=50 1.3e-6; attention_lstm bidirectional 3.4e-6 (a parameter gradient through the
# softmax, where terms cancel). Both kernels sum the same products in another order, a few ulp of
# float32 (eps 1.2e-7) that grow with T. 2e-5 is 6x the worst seen; swapping the i and f blocks of one
# bias (a gate-order bug) moves the outputs by 3.3e-2 relative, 1600x more.
REL_KERNELS = 2e-5


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@needs_onednn
@pytest.mark.parametrize(
    ("arch", "fields"),
    [
        ("lstm", {"num_layers": 2}),
        ("bilstm", {"num_layers": 2}),
        ("attention_lstm", {"bidirectional": True}),
        ("lstm", {"head_kind": "per_step_classify"}),
    ],
)
def test_onednn_and_aten_agree(arch: str, fields: dict) -> None:
    spec = _spec(arch, **fields)
    params = spec.random_params(seed=7)
    fused = BACKEND.build(spec, params, precision="float32", path="onednn")
    aten = BACKEND.build(spec, params, precision="float32", path="aten")
    batch = random_batch(spec, 4, STEPS, seed=7, ragged=False)
    a, b = BACKEND.forward(fused, batch), BACKEND.forward(aten, batch)
    worst = {}
    for name in ("outputs", "pooled", "logits"):
        worst[name] = _max_rel(getattr(a, name), getattr(b, name))
    for name in ("h", "c"):
        worst[name] = _max_rel(a.final_states[name], b.final_states[name])
    ga, gb = BACKEND.loss_and_grads(fused, batch), BACKEND.loss_and_grads(aten, batch)
    worst["loss"] = abs(ga.loss - gb.loss) / abs(gb.loss)
    worst["dL/dx"] = _max_rel(ga.inputs, gb.inputs)
    for name in params:
        worst[name] = _max_rel(ga.params[name], gb.params[name])
    assert max(worst.values()) <= REL_KERNELS, {k: v for k, v in worst.items() if v > REL_KERNELS}
    assert max(worst.values()) > 0  # two kernels really ran: bit-equal numbers would mean one ran twice
