"""The torch backend adapter: the protocol, parameters, losses, training, precision, device info."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _torch_helpers import random_batch, valid

from experiments.backend import DESCRIBE_KEYS, Backend, Batch
from experiments.errors import UserError
from experiments.spec import ARCHITECTURES, OptimizerSpec, make_spec, size_fields
from torch_impl import BACKEND, MODELS
from torch_impl.layers import DeviceBatch

SMALL = {"input_size": 3, "head_out": 3}


def _spec(arch: str, **fields):
    # any other architecture: its spec's own size fields (a new one needs no edit here)
    size = {"d_model": 16, "num_heads": 2, "d_ff": 24} if arch == "transformer" else size_fields(arch, 6)
    return make_spec(arch, **{**SMALL, **size, **fields})


def test_registry_and_protocol() -> None:
    assert tuple(MODELS) == ARCHITECTURES
    assert isinstance(BACKEND, Backend)
    assert BACKEND.name == "torch"
    assert MODELS["bilstm"] is MODELS["lstm"]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_build_export_round_trip_is_bit_identical(arch: str) -> None:
    spec = _spec(arch, num_layers=2)
    params = spec.random_params(seed=1)
    model = BACKEND.build(spec, params, precision="float64")
    out = BACKEND.export_params(model)
    assert list(out) == list(spec.param_schema())
    for name, value in params.items():
        assert out[name].dtype == np.float64
        np.testing.assert_array_equal(out[name], value, err_msg=name)
    # float32: exactly the cast; names equal the module's own state_dict names
    out32 = BACKEND.export_params(BACKEND.build(spec, params, precision="float32"))
    for name, value in params.items():
        np.testing.assert_array_equal(out32[name], value.astype(np.float32), err_msg=name)
    assert set(dict(model.named_parameters())) == set(params)


def test_build_rejects_wrong_params() -> None:
    spec = _spec("lstm")
    params = spec.random_params(seed=0)
    with pytest.raises(UserError, match="params"):
        BACKEND.build(spec, {k: v for k, v in params.items() if k != "head.bias"})
    bad = dict(params)
    bad["head.bias"] = np.zeros(7)
    with pytest.raises(UserError, match=r"head\.bias"):
        BACKEND.build(spec, bad)
    with pytest.raises(UserError, match="precision"):
        BACKEND.build(spec, params, precision="float16")
    with pytest.raises(UserError, match="path"):
        BACKEND.build(spec, params, path="fast")


def test_precision_flags_and_dtypes() -> None:
    spec = _spec("lstm")
    params = spec.random_params(seed=0)
    try:
        BACKEND.build(spec, params, precision="tf32")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert BACKEND.describe("cpu", "tf32")["allow_tf32_matmul"] is True
        model = BACKEND.build(spec, params, precision="float32")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert model.head.weight.dtype == torch.float32
    finally:
        BACKEND.build(spec, params, precision="float64")
    bf16 = BACKEND.build(spec, params, precision="bfloat16")
    res = BACKEND.forward(bf16, random_batch(spec, 3, 4, seed=0))
    assert res.logits.dtype == np.float32 and np.all(np.isfinite(res.logits))
    exported = BACKEND.export_params(bf16)["head.weight"]
    np.testing.assert_array_equal(exported, torch.from_numpy(params["head.weight"]).bfloat16().float().numpy())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message a CPU-only install gives")
def test_cuda_missing_is_a_user_error() -> None:
    spec = _spec("gru")
    with pytest.raises(UserError, match="device"):
        BACKEND.build(spec, spec.random_params(seed=0), device="cuda")


def test_prepare_batch() -> None:
    spec = _spec("gru", head_kind="per_step_classify")
    model = BACKEND.build(spec, spec.random_params(seed=0), precision="float64")
    full = BACKEND.prepare_batch(model, random_batch(spec, 3, 5, seed=0, ragged=False))
    assert isinstance(full, DeviceBatch) and full.lengths is None and full.mask is None
    ragged_np = random_batch(spec, 3, 5, seed=0)
    ragged = BACKEND.prepare_batch(model, ragged_np)
    assert ragged.lengths.device.type == "cpu" and ragged.lengths.dtype == torch.int64
    assert ragged.mask.dtype == torch.bool
    np.testing.assert_array_equal(ragged.mask.numpy(), valid(ragged_np.lengths, 5))
    assert ragged.x.dtype == torch.float64 and ragged.y.dtype == torch.int64
    with pytest.raises(UserError, match="lengths"):
        BACKEND.prepare_batch(model, Batch(x=ragged_np.x, lengths=np.array([0, 5, 5])))


# -- losses ------------------------------------------------------------------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("head", ["classify", "regress", "per_step_classify", "per_step_regress"])
def test_losses_follow_the_head_spec(head: str) -> None:
    """Each head's loss against NumPy; garbage targets at padded steps (NaN, class 10**6) are ignored."""
    spec = _spec("lstm", head_kind=head)
    model = BACKEND.build(spec, spec.random_params(seed=2), precision="float64")
    batch = random_batch(spec, 4, 6, seed=2)
    logits = BACKEND.forward(model, batch).logits
    mask = valid(batch.lengths, 6)
    y = batch.y
    if head == "classify":
        expect = -_log_softmax(logits)[np.arange(4), y].mean()
    elif head == "regress":
        expect = ((logits - y) ** 2).mean()
    elif head == "per_step_classify":
        lp = _log_softmax(logits)
        b, t = np.nonzero(mask)
        expect = -lp[b, t, y[b, t]].mean()
    else:
        expect = ((logits - y) ** 2)[mask].mean()
    grads = BACKEND.loss_and_grads(model, batch)
    assert abs(grads.loss - expect) <= 1e-12 * abs(expect)
    assert all(np.all(np.isfinite(g)) for g in grads.params.values())
    assert grads.inputs.shape == batch.x.shape


def test_gradients_match_finite_differences() -> None:
    """loss_and_grads differentiates the loss it reports (central differences, float64)."""
    spec = _spec("gru", bidirectional=True, head_kind="regress")
    params = spec.random_params(seed=3)
    batch = random_batch(spec, 3, 4, seed=3)
    grads = BACKEND.loss_and_grads(BACKEND.build(spec, params, precision="float64"), batch)
    rng = np.random.default_rng(0)
    for name in ("rnn.weight_hh_l0_reverse", "rnn.bias_hh_l0", "head.weight"):
        index = tuple(rng.integers(0, n) for n in params[name].shape)
        eps = 1e-6
        losses = []
        for sign in (1, -1):
            moved = {k: v.copy() for k, v in params.items()}
            moved[name][index] += sign * eps
            losses.append(BACKEND.loss_and_grads(BACKEND.build(spec, moved, precision="float64"), batch).loss)
        numeric = (losses[0] - losses[1]) / (2 * eps)
        assert abs(numeric - grads.params[name][index]) <= 1e-7 * max(1.0, abs(numeric)), name


# -- forward with dropout ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_dropout_is_seeded_and_train_only(arch: str) -> None:
    spec = _spec(arch, num_layers=2, dropout=0.5)
    model = BACKEND.build(spec, spec.random_params(seed=4), precision="float64")
    batch = random_batch(spec, 3, 5, seed=4)
    a = BACKEND.forward(model, batch, train=True, seed=1).outputs
    b = BACKEND.forward(model, batch, train=True, seed=1).outputs
    c = BACKEND.forward(model, batch, train=True, seed=2).outputs
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    e1, e2 = BACKEND.forward(model, batch).outputs, BACKEND.forward(model, batch, seed=9).outputs
    np.testing.assert_array_equal(e1, e2)
    assert not np.array_equal(a, e1)
    assert not model.training  # forward leaves the mode as it found it


# -- training ------------------------------------------------------------------------------------------


def _first_step(spec, params, opt: OptimizerSpec, batch) -> tuple[dict, dict, torch.Tensor]:
    model = BACKEND.build(spec, params, precision="float64")
    grads = BACKEND.loss_and_grads(model, batch).params
    state = BACKEND.make_train_state(model, opt, seed=0)
    loss = BACKEND.train_step(state, BACKEND.prepare_batch(state, batch))
    return grads, BACKEND.state_params(state), loss


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_one_optimizer_step_follows_the_spec(name: str) -> None:
    """The first step of each rule, written out: SGD(momentum) moves by -lr g (the buffer starts at g);
    Adam by -lr g / (|g| + eps) with coupled L2; AdamW decays the weights apart from the gradient."""
    spec = _spec("attention_lstm", dropout=0.0)
    params = spec.random_params(seed=5)
    batch = random_batch(spec, 4, 5, seed=5)
    lr, wd, eps = 0.01, 0.1, 1e-8
    opt = OptimizerSpec(name=name, lr=lr, weight_decay=wd, momentum=0.9, eps=eps)
    grads, after, loss = _first_step(spec, params, opt, batch)
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0
    eval_loss = BACKEND.loss_and_grads(BACKEND.build(spec, params, precision="float64"), batch).loss
    assert abs(BACKEND.loss_value(loss) - eval_loss) <= 1e-12 * eval_loss  # dropout 0: train == eval
    for k, p in params.items():
        g = grads[k]
        if name == "sgd":
            expect = p - lr * (g + wd * p)
        elif name == "adam":
            gw = g + wd * p
            expect = p - lr * gw / (np.abs(gw) + eps)
        else:
            expect = p * (1 - lr * wd) - lr * g / (np.abs(g) + eps)
        np.testing.assert_allclose(after[k], expect, rtol=1e-9, atol=1e-12, err_msg=k)
        assert not np.array_equal(after[k], p) or np.all(g == 0), k


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_clipping_bounds_the_update(arch: str) -> None:
    """SGD lr=1: the step is the clipped gradient, g * min(1, c / (||g|| + 1e-6)), so its norm is <= c."""
    spec = _spec(arch)
    params = spec.random_params(seed=6)
    batch = random_batch(spec, 4, 5, seed=6)
    grads, unclipped, _ = _first_step(spec, params, OptimizerSpec(name="sgd", lr=1.0), batch)
    norm = np.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
    clip = norm / 4
    _, clipped, _ = _first_step(spec, params, OptimizerSpec(name="sgd", lr=1.0, clip_norm=clip), batch)
    step = np.sqrt(sum(float(np.sum((clipped[k] - params[k]) ** 2)) for k in params))
    free = np.sqrt(sum(float(np.sum((unclipped[k] - params[k]) ** 2)) for k in params))
    assert free == pytest.approx(norm, rel=1e-9)
    assert step <= clip * (1 + 1e-9)
    assert step == pytest.approx(clip * norm / (norm + 1e-6), rel=1e-9)


def test_training_lowers_the_loss() -> None:
    spec = _spec("lstm", num_layers=2, dropout=0.1)
    model = BACKEND.build(spec, spec.random_params(seed=7), precision="float32")
    state = BACKEND.make_train_state(model, OptimizerSpec(name="adam", lr=0.02, clip_norm=1.0), seed=0)
    batch = BACKEND.prepare_batch(state, random_batch(spec, 16, 8, seed=7))
    first = BACKEND.loss_value(BACKEND.train_step(state, batch))
    for _ in range(40):
        loss = BACKEND.train_step(state, batch)
    BACKEND.synchronize("cpu")
    assert BACKEND.loss_value(loss) < 0.5 * first


# -- device information --------------------------------------------------------------------------------


def test_describe_memory_and_gemm_times() -> None:
    info = BACKEND.describe("cpu", "float32")
    for key in ("device_kind", "device_name", "torch_version", "cuda_version", "cudnn_version", "threads"):
        assert key in info
    assert set(DESCRIBE_KEYS) <= set(info)  # the schema both backends share
    assert info["device_kind"] == "cpu" and info["torch_version"] == torch.__version__
    assert info["device_name"] != "cpu" and info["dtype"] == "float32"  # the processor's model name
    BACKEND.reset_peak_memory("cpu")
    assert BACKEND.peak_memory_bytes("cpu") is None
    n, times = BACKEND.gemm_times("cpu", "float64")
    assert n == 1024 and len(times) >= 3  # the driver takes the peak, 2 n^3 / min(times), and caches it
    flops = 2.0 * n**3 / min(times)
    assert 1e8 < flops < 1e14


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("arch", ["lstm", "gru", "bilstm", "attention_lstm"])
def test_cudnn_path_equals_reference_on_gpu(arch: str) -> None:
    spec = _spec(arch, num_layers=2)
    params = spec.random_params(seed=8)
    batch = random_batch(spec, 5, 7, seed=8)
    fast = BACKEND.build(spec, params, precision="float64", device="cuda", path="on")
    slow = BACKEND.build(spec, params, precision="float64", device="cuda", path="off")
    assert BACKEND.execution_path(fast) == "cudnn"
    a, b = BACKEND.forward(fast, batch), BACKEND.forward(slow, batch)
    np.testing.assert_allclose(a.outputs, b.outputs, rtol=0, atol=1e-12)
    ga, gb = BACKEND.loss_and_grads(fast, batch), BACKEND.loss_and_grads(slow, batch)
    np.testing.assert_allclose(ga.inputs, gb.inputs, rtol=0, atol=1e-12)
    for k in params:
        np.testing.assert_allclose(ga.params[k], gb.params[k], rtol=0, atol=1e-11, err_msg=k)
    BACKEND.reset_peak_memory("cuda")
    state = BACKEND.make_train_state(fast, OptimizerSpec(clip_norm=1.0))
    BACKEND.train_step(state, BACKEND.prepare_batch(state, batch))
    BACKEND.synchronize("cuda")
    assert BACKEND.peak_memory_bytes("cuda") > 0
    assert BACKEND.describe("cuda")["cudnn_version"]
