"""Small pieces every JAX model shares: dtypes, torch-layout Linear and LayerNorm, the head, losses, masks.

Every model in ``jax_impl`` is an NNX module whose ``nnx.Param`` leaves sit at the
paths of the canonical parameter names (``rnn.weight_ih_l0``, ``layers.0.norm1.weight``,
...): joining a leaf's path with dots gives its canonical name. The math itself is
written as pure functions of a flat dict ``{canonical name: array}``, so that a
training step is one ``jax.jit`` over a plain pytree (no graph traversal per step),
and the module's ``__call__`` is those same functions applied to its own parameters.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.spec.common import HeadSpec

Array = jax.Array
Params = dict[str, Array]

DTYPES: dict[str, Any] = {
    "float64": jnp.float64,
    "float32": jnp.float32,
    "tf32": jnp.float32,
    "bfloat16": jnp.bfloat16,
}
# jax.default_matmul_precision names: float32 means true IEEE float32 (no TF32 on GPU).
MATMUL_PRECISION: dict[str, str] = {
    "float64": "highest",
    "float32": "highest",
    "tf32": "default",
    "bfloat16": "default",
}


def dtype_of(precision: str) -> Any:
    """The parameter/compute dtype of a named precision."""
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}")
    if precision == "float64" and not jax.config.jax_enable_x64:
        raise RuntimeError("float64 needs jax_enable_x64 (jax_impl turns it on at import)")
    return DTYPES[precision]


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Trace (or run) under the matmul precision a named precision asks for."""
    with jax.default_matmul_precision(MATMUL_PRECISION[precision]):
        yield


def param(value: Any, dtype: Any) -> nnx.Param:
    """An ``nnx.Param`` holding ``value`` as exactly ``dtype`` (never Flax's float32 default)."""
    arr = jnp.asarray(np.asarray(value), dtype=dtype)
    assert arr.dtype == jnp.dtype(dtype), (arr.dtype, dtype)
    return nnx.Param(arr)


def set_param(var: nnx.Param, value: Any) -> None:
    """Replace a parameter's value keeping its dtype explicitly (``var[...] = x`` would cast silently)."""
    old = var.get_value()
    arr = jnp.asarray(np.asarray(value), dtype=old.dtype)
    if arr.shape != old.shape:
        raise ValueError(f"shape {arr.shape} != {old.shape}")
    var.set_value(arr)


# -- canonical names <-> module ----------------------------------------------------
def param_vars(module: nnx.Module) -> dict[str, nnx.Param]:
    """``{canonical name: nnx.Param}`` of a model, in the module's path order."""
    state = nnx.state(module, nnx.Param)
    out = {}
    for path, var in nnx.to_flat_state(state):
        out[".".join(str(p) for p in path)] = var
    return out


def param_arrays(module: nnx.Module) -> Params:
    return {name: var.get_value() for name, var in param_vars(module).items()}


def load_params(module: nnx.Module, params: Mapping[str, Any], dtype: Any) -> None:
    """Load canonical ``params`` (exactly the module's names) and assert every dtype after."""
    variables = param_vars(module)
    missing, extra = set(variables) - set(params), set(params) - set(variables)
    if missing or extra:
        raise KeyError(f"parameter names differ: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for name, var in variables.items():
        set_param(var, params[name])
    check_dtypes(module, dtype)


def check_dtypes(module: nnx.Module, dtype: Any) -> None:
    for name, var in param_vars(module).items():
        got = var.get_value().dtype
        if got != jnp.dtype(dtype):
            raise TypeError(f"{name} is {got}, expected {jnp.dtype(dtype)}")


# -- modules holding torch-layout parameters ---------------------------------------
class Linear(nnx.Module):
    """``weight`` (out, in), ``bias`` (out,) as torch's ``nn.Linear``; y = x W^T + b."""

    def __init__(self, in_features: int, out_features: int, dtype: Any, *, bias: bool = True) -> None:
        self.weight = param(np.zeros((out_features, in_features)), dtype)
        if bias:
            self.bias = param(np.zeros((out_features,)), dtype)


class LayerNorm(nnx.Module):
    """``weight`` and ``bias`` (d,); the eps comes from the spec, never a framework default."""

    def __init__(self, features: int, dtype: Any) -> None:
        self.weight = param(np.ones((features,)), dtype)
        self.bias = param(np.zeros((features,)), dtype)


# -- pure functions over arrays ----------------------------------------------------
def linear(x: Array, weight: Array, bias: Array | None = None) -> Array:
    y = jnp.einsum("...i,oi->...o", x, weight)
    return y if bias is None else y + bias


def layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = jnp.mean(centred * centred, axis=-1, keepdims=True)  # biased, as torch
    return centred * jax.lax.rsqrt(var + jnp.asarray(eps, x.dtype)) * weight + bias


def dropout(x: Array, rate: float, key: Array | None) -> Array:
    """Inverted dropout; identity when ``key`` is None (eval) or the rate is 0."""
    if key is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / jnp.asarray(1.0 - rate, x.dtype), jnp.zeros((), x.dtype))


class KeyStream:
    """Successive dropout keys from one key (None in eval: every draw is None)."""

    def __init__(self, key: Array | None) -> None:
        self.key = key
        self.count = 0

    def next(self) -> Array | None:
        if self.key is None:
            return None
        self.count += 1
        return jax.random.fold_in(self.key, self.count)


def step_mask(lengths: Array, seq_len: int) -> Array:
    """(B, T) bool, True at valid steps."""
    return jnp.arange(seq_len)[None, :] < lengths[:, None]


def head_forward(p: Params, features: Array) -> Array:
    return linear(features, p["head.weight"], p["head.bias"])


def head_loss(head: HeadSpec, logits: Array, y: Array, mask: Array) -> Array:
    """The head's loss (``HeadSpec``); targets at padded steps are ignored."""
    if head.kind == "classify":
        return jnp.mean(_cross_entropy(logits, y))
    if head.kind == "regress":
        diff = logits - y.astype(logits.dtype)
        return jnp.mean(diff * diff)
    maskf = mask.astype(logits.dtype)
    count = jnp.maximum(jnp.sum(maskf), 1.0)
    if head.kind == "per_step_classify":
        ce = _cross_entropy(logits, jnp.where(mask, y, 0))
        return jnp.sum(ce * maskf) / count
    if head.kind == "per_step_regress":
        diff = logits - y.astype(logits.dtype)
        per_step = jnp.sum(diff * diff, axis=-1)
        return jnp.sum(per_step * maskf) / (count * logits.shape[-1])
    raise ValueError(f"unknown head {head.kind!r}")


def _cross_entropy(logits: Array, y: Array) -> Array:
    logz = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, y[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return logz - picked


def sinusoidal_table(seq_len: int, d_model: int, dtype: Any) -> Array:
    """The spec's table (computed in float64 in NumPy, then cast)."""
    from experiments.spec import sinusoidal_positions

    return jnp.asarray(sinusoidal_positions(seq_len, d_model), dtype=dtype)


def inv_sqrt(n: int) -> float:
    return 1.0 / math.sqrt(n)
