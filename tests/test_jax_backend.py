"""The JAX backend object: the protocol, losses and gradients, optimizer steps the torch way, devices."""

from __future__ import annotations

import time

import jax
import numpy as np
import pytest
from _jax_helpers import case_spec, make_batch

import jax_impl
from experiments.backend import DESCRIBE_KEYS, Backend, Batch, cpu_name, load_backend
from experiments.errors import UserError
from experiments.spec import OptimizerSpec

BE = jax_impl.BACKEND


def test_backend_implements_the_protocol() -> None:
    assert isinstance(BE, Backend)
    assert BE.name == "jax"
    assert load_backend("jax") is BE
    assert jax.config.jax_enable_x64


# -- losses and gradients ------------------------------------------------------------------------
def _numpy_loss(spec, logits: np.ndarray, batch: Batch) -> float:
    """HeadSpec's losses, written again in NumPy."""
    kind, y, mask = spec.head.kind, batch.y, batch.mask
    if kind in ("classify", "per_step_classify"):
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        nll = -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
        return float(nll.mean() if kind == "classify" else nll[mask].mean())
    err = (logits - y) ** 2
    return float(err.mean() if kind == "regress" else err[mask].mean())


@pytest.mark.parametrize("case", ["rnn", "lstm", "gru", "attention_dot", "transformer"])
def test_loss_and_input_gradient(case: str) -> None:
    """Loss = the head's loss of the forward logits; dL/dx against central differences."""
    spec = case_spec(case)
    model = BE.build(spec, spec.random_params(seed=30), precision="float64")
    batch = make_batch(spec, seed=31)
    grads = BE.loss_and_grads(model, batch)
    logits = BE.forward(model, batch).logits
    assert grads.loss == pytest.approx(_numpy_loss(spec, logits, batch), rel=1e-12)
    assert set(grads.params) == set(spec.param_schema())
    assert all(grads.params[k].shape == v for k, v in spec.param_schema().items())
    assert grads.inputs.shape == batch.x.shape
    eps = 1e-6
    for b, t, i in [(0, 0, 0), (0, 4, 1), (2, 3, 2), (1, 1, 0)]:
        bumped = []
        for sign in (1, -1):
            x = batch.x.copy()
            x[b, t, i] += sign * eps
            bumped.append(BE.loss_and_grads(model, Batch(x=x, lengths=batch.lengths, y=batch.y)).loss)
        fd = (bumped[0] - bumped[1]) / (2 * eps)
        assert grads.inputs[b, t, i] == pytest.approx(fd, rel=1e-5, abs=1e-8)


# -- optimizer steps, against torch's update rules written in NumPy ------------------------------
OPTIMIZERS = {
    "adam": OptimizerSpec(name="adam", lr=0.05),
    "adam_l2": OptimizerSpec(name="adam", lr=0.05, weight_decay=0.1, beta1=0.8, beta2=0.99, eps=1e-6),
    "adamw": OptimizerSpec(name="adamw", lr=0.05, weight_decay=0.1),
    "sgd": OptimizerSpec(name="sgd", lr=0.1),
    "sgd_momentum_l2": OptimizerSpec(name="sgd", lr=0.1, momentum=0.9, weight_decay=0.01),
    "adam_clip": OptimizerSpec(name="adam", lr=0.05, clip_norm=0.05),
    "sgd_clip": OptimizerSpec(name="sgd", lr=0.1, clip_norm=0.05),
}


class TorchRule:
    """torch.optim's Adam / AdamW / SGD and clip_grad_norm_, step by step, in NumPy."""

    def __init__(self, opt: OptimizerSpec) -> None:
        self.opt, self.t, self.m, self.v, self.buf = opt, 0, {}, {}, {}

    def step(self, p: dict, g: dict) -> dict:
        o = self.opt
        self.t += 1
        if o.clip_norm is not None:
            norm = np.sqrt(sum(float((v**2).sum()) for v in g.values()))
            coef = min(1.0, o.clip_norm / (norm + 1e-6))
            g = {k: v * coef for k, v in g.items()}
        out = {}
        for k in p:
            grad = g[k] + o.weight_decay * p[k] if o.name in ("adam", "sgd") else g[k]
            if o.name == "sgd":
                if o.momentum:
                    self.buf[k] = grad if self.t == 1 else o.momentum * self.buf[k] + grad
                    grad = self.buf[k]
                out[k] = p[k] - o.lr * grad
                continue
            base = p[k] * (1 - o.lr * o.weight_decay) if o.name == "adamw" else p[k]
            self.m[k] = o.beta1 * self.m.get(k, 0.0) + (1 - o.beta1) * grad
            self.v[k] = o.beta2 * self.v.get(k, 0.0) + (1 - o.beta2) * grad**2
            m_hat = self.m[k] / (1 - o.beta1**self.t)
            v_hat = self.v[k] / (1 - o.beta2**self.t)
            out[k] = base - o.lr * m_hat / (np.sqrt(v_hat) + o.eps)
        return out


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_train_steps_follow_torchs_update_rule(name: str) -> None:
    """Two steps (bias correction and momentum show at the second) against torch's rule."""
    opt = OPTIMIZERS[name]
    spec = case_spec("rnn")
    p = spec.random_params(seed=40)
    batch = make_batch(spec, seed=41)
    model = BE.build(spec, p, precision="float64")
    state = BE.make_train_state(model, opt, seed=0)
    prepared = BE.prepare_batch(state, batch)
    rule = TorchRule(opt)
    expected = p
    for _ in range(2):
        g = BE.loss_and_grads(BE.build(spec, expected, precision="float64"), batch).params
        expected = rule.step(expected, g)
        loss = BE.train_step(state, prepared)
        assert isinstance(loss, jax.Array)
        got = BE.state_params(state)
        assert list(got) == list(spec.param_schema())
        for k in expected:
            np.testing.assert_allclose(got[k], expected[k], rtol=1e-10, atol=1e-12, err_msg=k)
    if name == "sgd":
        # torch keeps b_ih and b_hh apart: each moves by lr * g, so their sum moves twice as far
        # as one merged bias would (the Flax-cell trap); for a tanh RNN their gradients are equal.
        d_ih = got["rnn.bias_ih_l0"] - p["rnn.bias_ih_l0"]
        d_hh = got["rnn.bias_hh_l0"] - p["rnn.bias_hh_l0"]
        np.testing.assert_allclose(d_ih, d_hh, rtol=1e-10, atol=1e-14)
        assert np.abs(d_ih).max() > 0
    # the model the state was made from keeps its parameters (the state's are donated per step)
    assert all(np.array_equal(v, p[k]) for k, v in BE.export_params(model).items())


def test_float32_training_is_asynchronous_and_learns() -> None:
    spec = case_spec("lstm")
    model = BE.build(spec, spec.init_params(0), precision="float32")
    state = BE.make_train_state(model, OptimizerSpec(name="adam", lr=0.02))
    batch = make_batch(spec, seed=50)
    prepared = BE.prepare_batch(state, batch)
    x, lengths, y = prepared
    assert (x.dtype, lengths.dtype, y.dtype) == (np.float32, np.int32, np.float32)
    losses = []
    for _ in range(25):
        loss = BE.train_step(state, prepared)
        losses.append(loss)
    BE.synchronize("cpu")
    values = [BE.loss_value(v) for v in losses]
    assert all(isinstance(v, float) and np.isfinite(v) for v in values)
    assert values[-1] < 0.7 * values[0]
    params = BE.state_params(state)
    assert all(v.dtype == np.float32 for v in params.values())
    out = BE.forward(model, batch, return_extras=True)
    assert out.outputs.dtype == np.float32 and out.extras["gates"].dtype == np.float32


def test_train_step_with_dropout_is_seeded() -> None:
    spec = case_spec("rnn", dropout=0.3, num_layers=2)
    batch = make_batch(spec, seed=60)

    def run(seed: int) -> dict:
        model = BE.build(spec, spec.init_params(0), precision="float64")
        state = BE.make_train_state(model, OptimizerSpec(name="sgd", lr=0.1), seed=seed)
        for _ in range(2):
            BE.train_step(state, batch)  # a Batch is prepared on the way
        return BE.state_params(state)

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.allclose(a[k], c[k]) for k in a)


# -- device, memory, description -----------------------------------------------------------------
def test_describe_and_gemm_times() -> None:
    info = BE.describe("cpu", "float32")
    for key in ("device_kind", "device_name", "jax", "jaxlib", "flax", "optax", "precision", "matmul_precision"):
        assert key in info, key
    assert set(DESCRIBE_KEYS) <= set(info)  # the schema both backends share
    assert info["device_name"] == cpu_name()  # the processor's model name, as torch's backend says
    assert info["matmul_precision"] == "highest" and info["dtype"] == "float32"
    assert BE.describe("cpu", "tf32")["matmul_precision"] == "default"
    assert BE.describe("cpu", "float64")["dtype"] == "float64"
    t0 = time.perf_counter()
    n, times = BE.gemm_times("cpu", "float32")
    assert n == 1024 and len(times) >= 3  # the driver takes the peak, 2 n^3 / min(times), and caches it
    flops = 2.0 * n**3 / min(times)
    assert 1e8 < flops < 1e14
    assert time.perf_counter() - t0 < 10


def test_memory_on_cpu_is_unknown() -> None:
    BE.reset_peak_memory("cpu")
    assert BE.peak_memory_bytes("cpu") is None


def test_cuda_without_a_gpu_is_a_user_error() -> None:
    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("a GPU is visible")
    spec = case_spec("rnn")
    with pytest.raises(UserError):
        BE.build(spec, spec.init_params(0), device="cuda")


def test_tf32_is_a_float32_model() -> None:
    spec = case_spec("rnn")
    model = BE.build(spec, spec.init_params(0), precision="tf32")
    assert all(v.dtype == np.float32 for v in BE.export_params(model).values())
    assert model.precision == "tf32"


def test_bfloat16_model_runs_in_bfloat16() -> None:
    spec = case_spec("rnn")
    model = BE.build(spec, spec.init_params(0), precision="bfloat16")
    exported = BE.export_params(model)
    assert all(str(v.dtype) == "bfloat16" for v in exported.values())
    batch = make_batch(spec)
    out = BE.forward(model, batch)
    assert str(out.outputs.dtype) == "bfloat16" and np.all(np.isfinite(out.outputs.astype(np.float32)))
    state = BE.make_train_state(model, OptimizerSpec(name="sgd", lr=0.1))
    assert np.isfinite(BE.loss_value(BE.train_step(state, batch)))
