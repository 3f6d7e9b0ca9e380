"""minGRU and minLSTM, stacked: the math of ``experiments/spec/minrnn.py``, twin of ``torch_impl/minrnn.py``.

Two paths over the same parameters (``rnn.weight_ih_l{l}``, ``rnn.bias_ih_l{l}``, ``head.*``):

- ``parallel_scan`` (``auto`` and ``on``): every step at once in log space (Heinsen 2023),
  ``jnp.cumsum`` and ``jax.lax.cumlogsumexp`` over time.
- ``reference`` (``off``): the step loop h_t = a_t * h_{t-1} + b_t as a ``lax.scan``.

There is no fused vendor kernel for these cells, so ``on`` always holds (nothing can refuse it)
and ``auto`` is ``on``; ``off`` and ``reference`` are the loop. ``extras`` is empty.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.errors import UserError
from experiments.spec.minrnn import MinRNNSpec
from jax_impl.layers import (
    Array,
    KeyStream,
    Linear,
    Params,
    SequenceModel,
    dropout,
    head_forward,
    last_step,
    linear,
    param,
)

EXECUTION_PATHS = ("parallel_scan", "reference")  # what ``execution_path`` names


def resolve_path(path: str) -> str:
    """``auto``/``on``/``parallel_scan`` -> parallel_scan; ``off``/``reference`` -> reference."""
    if path in ("auto", "on", "parallel_scan"):
        return "parallel_scan"
    if path in ("off", "reference"):
        return "reference"
    raise UserError(
        "path", f"unknown path choice {path!r}", f"use auto, on, off or one of {', '.join(EXECUTION_PATHS)}"
    )


def log_g(v: Array) -> Array:
    """log of the paper's positive candidate g: log(v + 1/2) for v >= 0, log sigmoid(v) below.
    ``relu`` keeps the unused branch finite, so its gradient through ``where`` is zero, not NaN."""
    return jnp.where(v >= 0, jnp.log(jax.nn.relu(v) + 0.5), -jax.nn.softplus(-v))


def log_coefficients(cell: str, k: Array) -> tuple[Array, Array]:
    """k (B, T, G*H) pre-activations -> (log a, log b), each (B, T, H), by the spec's formulas."""
    if cell == "mingru":
        k_z, k_h = jnp.split(k, 2, axis=-1)
        return -jax.nn.softplus(k_z), -jax.nn.softplus(-k_z) + log_g(k_h)
    k_f, k_i, k_h = jnp.split(k, 3, axis=-1)
    d = jax.nn.softplus(-k_f) - jax.nn.softplus(-k_i)  # log(i / f)
    return -jax.nn.softplus(d), -jax.nn.softplus(-d) + log_g(k_h)


def g(v: Array) -> Array:
    """The paper's g in linear space: v + 1/2 for v >= 0, sigmoid(v) below."""
    return jnp.where(v >= 0, jax.nn.relu(v) + 0.5, jax.nn.sigmoid(v))


def coefficients(cell: str, k: Array) -> tuple[Array, Array]:
    """(a, b), each (B, T, H), in linear space: what the step loop multiplies and adds."""
    if cell == "mingru":
        k_z, k_h = jnp.split(k, 2, axis=-1)
        z = jax.nn.sigmoid(k_z)
        return 1.0 - z, z * g(k_h)
    k_f, k_i, k_h = jnp.split(k, 3, axis=-1)
    f, i = jax.nn.sigmoid(k_f), jax.nn.sigmoid(k_i)
    return f / (f + i), i / (f + i) * g(k_h)


def parallel_scan(log_a: Array, log_b: Array) -> Array:
    """h_t = a_t h_{t-1} + b_t from h_0 = 0 for all t at once, from log a, log b (B, T, H): (B, T, H)."""
    a_star = jnp.cumsum(log_a, axis=1)  # (B, T, H): log of prod_{s<=t} a_s
    log_h = a_star + jax.lax.cumlogsumexp(log_b - a_star, axis=1)  # (B, T, H)
    return jnp.exp(log_h)


def step_loop(a: Array, b: Array) -> Array:
    """The same recurrence one step at a time (the reference): (B, T, H)."""

    def step(h, ab):
        h = ab[0] * h + ab[1]  # (B, H)
        return h, h

    _, hs = jax.lax.scan(step, jnp.zeros_like(b[:, 0]), (jnp.swapaxes(a, 0, 1), jnp.swapaxes(b, 0, 1)))
    return jnp.swapaxes(hs, 0, 1)  # (B, T, H)


def minrnn_apply(
    spec: MinRNNSpec,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    path: str,
    train: bool = False,
    key: Array | None = None,
    return_extras: bool = False,
) -> dict[str, Any]:
    keys = KeyStream(key if train else None)
    valid = (jnp.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]  # (B, T, 1)
    u = jnp.where(valid, x, 0.0)  # garbage at padded steps never reaches exp
    finals = []
    for layer in range(spec.num_layers):
        if layer > 0:
            u = dropout(u, spec.dropout, keys.next())
        k = linear(u, p[f"rnn.weight_ih_l{layer}"], p[f"rnn.bias_ih_l{layer}"])  # (B, T, G*H)
        if path == "parallel_scan":
            h = parallel_scan(*log_coefficients(spec.cell, k))  # (B, T, H)
        else:
            h = step_loop(*coefficients(spec.cell, k))  # (B, T, H)
        u = jnp.where(valid, h, 0.0)  # (B, T, H), zero at padded steps
        finals.append(last_step(u, lengths))
    h_n = jnp.stack(finals)  # (L, B, H)
    pooled = h_n[-1]  # (B, H)
    logits = head_forward(p, u if spec.head.per_step else pooled)
    return {"outputs": u, "pooled": pooled, "logits": logits, "final_states": {"h": h_n}, "extras": {}}


class MinRNNParams(nnx.Module):
    """Per layer l: ``weight_ih_l{l}`` (G*H, in) and ``bias_ih_l{l}`` (G*H,), as the schema names them."""

    def __init__(self, spec: MinRNNSpec, dtype: Any) -> None:
        for name, shape in spec.param_schema().items():
            if name.startswith("rnn."):
                setattr(self, name.removeprefix("rnn."), param(np.zeros(shape), dtype))


class MinRNNModel(SequenceModel):
    """``mingru`` / ``minlstm``: stacked minimal recurrences under ``rnn`` and a linear ``head``."""

    apply = staticmethod(minrnn_apply)

    def choose_path(self, requested: str) -> str:
        return resolve_path(requested)

    def create_params(self, dtype: Any) -> None:
        self.rnn = MinRNNParams(self.spec, dtype)
        self.head = Linear(self.spec.head_features(), self.spec.head.out_size, dtype)
