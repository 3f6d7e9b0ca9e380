"""Within each backend, the parallel scan against the sequential step loop, at a tolerance stated as a
function of T and dtype (the scan reassociates sums; it is never bit-equal to the loop).

The bound. The log-space scan (Heinsen 2023) computes log h_t = A_t + logcumsumexp(log b - A)_t
with A_t = sum_{s<=t} log a_s. Each of the two terms has magnitude ~ |A_t| ~ t E|log a|, and they
cancel: the absolute error of log h_t, i.e. the relative error of h_t, is a few eps |A_t|. At
PyTorch-default initial weights and N(0, 1) inputs E|log a| is about 0.7, so the elementwise
relative error of every output is stated as

    scan_tolerance(T, dtype) = 3 * eps(dtype) * T

Measured on a 2-core CPU (AMD EPYC, no GPU), B=2 H=16, mingru and minlstm, torch and jax: the
error over eps * T was 0.42-0.74 at T=16, 0.61-0.94 at T=256, 0.64-1.09 at T=1024 and 0.63-1.20
at T=4096, float32 and float64 alike (float32 T=4096: 3.1e-4 to 5.9e-4 against a bound of
1.5e-3; float64: 8.2e-13 to 9.1e-13 against 2.7e-12). ``pytest -s`` prints each measurement.

The measure. The bound is checked per channel (each batch element and output unit over T), on the
error relative to that channel's largest |output|: a signed recurrence (the LRU's Re(C x_t) + D u_t)
crosses zero, where an elementwise ratio is unbounded whatever the scan does, while the
reassociated sums' error scales with the channel's magnitude. Where every output is positive
(minGRU, minLSTM: h > 0 at every step) the stricter elementwise ratio is checked against the same
bound too. Measured for the LRU (T 16..4096, both dtypes and backends): 2.5-12.5 eps per channel.

Architectures: every registered one whose model files name a ``parallel_scan`` path (a new one is
covered with no edit here).
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from experiments.backend import Batch
from experiments.spec import ARCHITECTURES, make_spec, size_fields

BACKEND_NAMES = ("torch", "jax")


def parallel_archs() -> list[str]:
    models = importlib.import_module("torch_impl").MODELS
    return [a for a in ARCHITECTURES if "parallel_scan" in getattr(inspect.getmodule(models[a]), "EXECUTION_PATHS", ())]


PARALLEL = parallel_archs()


def scan_tolerance(seq_len: int, dtype: str) -> float:
    """The stated elementwise relative bound on parallel vs sequential outputs (module docstring)."""
    return 3.0 * float(np.finfo(dtype).eps) * seq_len


def per_step_spec(arch: str, **fields):
    sizes = {**size_fields(arch, 16), **fields}
    return make_spec(arch, input_size=4, head_kind="per_step_regress", head_out=1, **sizes)


def both_paths(backend, spec, params, batch, precision):
    """(parallel, sequential) models on one backend, checking each names the path it runs."""
    fast = backend.build(spec, params, precision=precision, path="on")
    slow = backend.build(spec, params, precision=precision, path="off")
    assert backend.execution_path(fast) == "parallel_scan" and backend.execution_path(slow) == "reference"
    return fast, slow


def test_there_are_parallel_architectures() -> None:
    assert {"mingru", "minlstm"} <= set(PARALLEL)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("seq_len", [64, 4096])
@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", PARALLEL)
def test_parallel_equals_sequential_within_the_stated_bound(
    backends, arch: str, backend_name: str, seq_len: int, precision: str
) -> None:
    backend = backends[backend_name]
    spec = per_step_spec(arch)
    params = spec.init_params(0)
    rng = np.random.default_rng(seq_len)
    batch = Batch(x=rng.standard_normal((2, seq_len, spec.input_size)), lengths=np.array([seq_len, seq_len]))
    fast, slow = both_paths(backend, spec, params, batch, precision)
    a = backend.forward(fast, batch).outputs.astype(np.float64)
    r = backend.forward(slow, batch).outputs.astype(np.float64)
    assert np.all(np.isfinite(a))
    tol = scan_tolerance(seq_len, precision)
    scale = np.max(np.abs(r), axis=1, keepdims=True)  # (B, 1, H): each channel's largest |output| over T
    err = float(np.max(np.abs(a - r) / scale))
    print(f"{arch} {backend_name} {precision} T={seq_len}: {err:.3g} = {err / (tol / 3):.2f} eps*T (bound {tol:.3g})")
    assert err <= tol, f"relative error per channel {err:.3g} > {tol:.3g} = 3 eps T"
    if np.all(r > 0.0):  # h > 0 at every step: the elementwise ratio is defined, and bounded alike
        elementwise = float(np.max(np.abs(a - r) / r))
        assert elementwise <= tol, f"elementwise relative error {elementwise:.3g} > {tol:.3g} = 3 eps T"


def ragged_batch(spec, seq_len: int, scale: float, seed: int) -> tuple[Batch, np.ndarray]:
    """Lengths (T, 37, 1), inputs of ``scale`` at valid steps, garbage of size 1e3 and NaN targets at
    padded ones (both must never matter); returns the batch and its padded-step mask."""
    rng = np.random.default_rng(seed)
    lengths = np.array([seq_len, 37, 1])
    x = scale * rng.standard_normal((3, seq_len, spec.input_size))
    padded = np.arange(seq_len)[None, :] >= lengths[:, None]
    x[padded] = 1e3 * rng.standard_normal(x[padded].shape)
    y = rng.standard_normal((3, seq_len, 1))
    y[padded] = np.nan
    return Batch(x=x, lengths=lengths, y=y), padded


def check_finite_and_masked(g, padded: np.ndarray) -> None:
    assert np.isfinite(g.loss) and np.all(np.isfinite(g.inputs))
    assert all(np.all(np.isfinite(v)) for v in g.params.values())
    assert np.all(g.inputs[padded] == 0.0), "padded steps must get exactly no gradient"


@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", PARALLEL)
def test_gradients_agree_on_a_ragged_batch(backends, arch: str, backend_name: str) -> None:
    """Two layers, ragged, float64, unit-scale inputs: parameter and input gradients of the two paths
    agree to the stated bound (relative to the largest entry), and padded steps get exactly nothing."""
    backend = backends[backend_name]
    seq_len = 200
    spec = per_step_spec(arch, num_layers=2)
    batch, padded = ragged_batch(spec, seq_len, 1.0, seed=2)
    fast, slow = both_paths(backend, spec, spec.init_params(1), batch, "float64")
    ga, gr = backend.loss_and_grads(fast, batch), backend.loss_and_grads(slow, batch)
    check_finite_and_masked(ga, padded)
    check_finite_and_masked(gr, padded)
    tol = scan_tolerance(seq_len, "float64")
    scale = max(float(np.max(np.abs(v))) for v in gr.params.values())
    params = max(float(np.max(np.abs(ga.params[k] - gr.params[k]))) for k in gr.params) / scale
    inputs = float(np.max(np.abs(ga.inputs - gr.inputs))) / float(np.max(np.abs(gr.inputs)))
    print(f"{arch} {backend_name} grads T={seq_len}: params {params:.3g}, inputs {inputs:.3g} (bound {tol:.3g})")
    assert params <= tol and inputs <= tol


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("backend_name", BACKEND_NAMES)
@pytest.mark.parametrize("arch", PARALLEL)
def test_gradients_stay_finite_with_saturated_gates(backends, arch: str, backend_name: str, precision: str) -> None:
    """Inputs of scale 30 (softplus saturates: log a down to about -60 a step, A_t to -1e4 over the
    sequence): the parallel path's gradients are finite and zero at padded steps, in both dtypes.
    (Agreement with the loop is not asserted here: the bound scales with |A_t|, not with T alone.)"""
    backend = backends[backend_name]
    spec = per_step_spec(arch, num_layers=2)
    batch, padded = ragged_batch(spec, 200, 30.0, seed=3)
    fast = backend.build(spec, spec.random_params(4), precision=precision, path="on")
    check_finite_and_masked(backend.loss_and_grads(fast, batch), padded)
