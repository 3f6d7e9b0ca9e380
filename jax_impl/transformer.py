"""A small Transformer encoder: the math of ``experiments/spec/transformer.py``.

Separate q/k/v/out projections in torch's (out, in) layout, sinusoidal/learned/no
positions, post- or pre-LayerNorm (``final_norm`` after the last pre-norm layer),
the spec's LayerNorm eps (never Flax's 1e-6 default), ReLU or exact (erf) GELU.

Masks follow JAX's convention inside this file (True = attend); the padding mask
hides keys at padded steps, ``causal`` also every key j > i. Outputs are zero at
padded steps; pooling is the mean over valid steps or the last valid step.

Execution paths (``execution_path``):

- ``fused_attention``: ``jax.nn.dot_product_attention`` (implementation chosen by
  JAX: XLA on CPU) with ``key_value_seq_lengths`` for padding and ``is_causal``.
  It has no attention-weight dropout and computes its softmax in float32, so a spec
  with ``dropout > 0`` or a float64 model cannot use it: ``path="on"`` raises
  ``PathUnavailable``, ``auto`` takes ``reference`` knowingly (``execution_path`` says so).
- ``reference``: explicit softmax(q k^T / sqrt(d_head)) v, with dropout on the weights.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.errors import PathUnavailable
from experiments.spec.transformer import TransformerSpec
from jax_impl.layers import (
    Array,
    KeyStream,
    LayerNorm,
    Linear,
    Params,
    SequenceModel,
    dropout,
    head_forward,
    layer_norm,
    linear,
    param,
    sinusoidal_table,
    valid_mask,
)

EXECUTION_PATHS = ("fused_attention", "reference")  # what ``execution_path`` names


def resolve_path(requested: str, spec: TransformerSpec, precision: str) -> str:
    if requested in ("auto", "on", EXECUTION_PATHS[0]):
        if spec.dropout > 0.0:
            why = f"it has no attention-weight dropout (spec.dropout={spec.dropout})"
        elif precision == "float64":
            why = "it computes the softmax in float32 (a float64 model would silently lose precision)"
        else:
            return "fused_attention"
        if requested == "auto":
            return "reference"
        raise PathUnavailable(f"fused_attention (jax.nn.dot_product_attention): {why}; use path='off' (reference)")
    if requested in ("off", EXECUTION_PATHS[1]):
        return "reference"
    raise ValueError(f"unknown path {requested!r}")


def reference_attention(
    q: Array, k: Array, v: Array, mask: Array, rate: float, key: Array | None
) -> tuple[Array, Array]:
    """q, k, v (B, T, h, dh); mask (B, 1, T, T) True = attend -> (out (B, T, h, dh), weights (B, h, T, T))."""
    scale = jnp.asarray(1.0 / np.sqrt(q.shape[-1]), q.dtype)
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale
    s = jnp.where(mask, s, -jnp.inf)
    w = jax.nn.softmax(s, axis=-1)
    w_drop = dropout(w, rate, key)
    return jnp.einsum("bhqk,bkhd->bqhd", w_drop, v), w


def self_attention(
    p: Params, prefix: str, x: Array, lengths: Array, spec: TransformerSpec, path: str, keys: KeyStream
) -> Array:
    batch, seq_len, d = x.shape
    h = spec.num_heads
    q, k, v = (
        linear(x, p[f"{prefix}{n}_proj.weight"], p[f"{prefix}{n}_proj.bias"]).reshape(batch, seq_len, h, d // h)
        for n in ("q", "k", "v")
    )
    if path == "fused_attention":
        out = jax.nn.dot_product_attention(
            q, k, v, key_value_seq_lengths=lengths.astype(jnp.int32), is_causal=spec.causal
        )
    else:
        valid = valid_mask(lengths, seq_len)[:, None, None, :]  # (B, 1, 1, T): keys
        if spec.causal:
            valid = valid & jnp.tril(jnp.ones((seq_len, seq_len), bool))[None, None]
        out, _ = reference_attention(q, k, v, valid, spec.dropout, keys.next())
    out = out.reshape(batch, seq_len, d)
    return linear(out, p[f"{prefix}out_proj.weight"], p[f"{prefix}out_proj.bias"])


def feed_forward(p: Params, prefix: str, x: Array, spec: TransformerSpec, keys: KeyStream) -> Array:
    hidden = linear(x, p[f"{prefix}linear1.weight"], p[f"{prefix}linear1.bias"])
    hidden = jax.nn.relu(hidden) if spec.activation == "relu" else jax.nn.gelu(hidden, approximate=False)
    hidden = dropout(hidden, spec.dropout, keys.next())
    return linear(hidden, p[f"{prefix}linear2.weight"], p[f"{prefix}linear2.bias"])


def transformer_apply(
    spec: TransformerSpec,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    path: str,
    train: bool = False,
    key: Array | None = None,
    return_extras: bool = False,
) -> dict[str, Any]:
    del return_extras  # no extras for this family
    keys = KeyStream(key if train else None)
    seq_len = x.shape[1]
    dtype = p["input_proj.weight"].dtype
    eps = spec.layer_norm_eps
    h = linear(x, p["input_proj.weight"], p["input_proj.bias"])
    if spec.positional == "sinusoidal":
        h = h + sinusoidal_table(seq_len, spec.d_model, dtype)[None]
    elif spec.positional == "learned":
        h = h + p["pos_embedding"][None, :seq_len]
    rate = spec.dropout

    def norm(name: str, z: Array) -> Array:
        return layer_norm(z, p[f"{name}.weight"], p[f"{name}.bias"], eps)

    for i in range(spec.num_layers):
        pre = f"layers.{i}."

        def sa(z: Array, pre: str = pre) -> Array:
            return dropout(self_attention(p, f"{pre}self_attn.", z, lengths, spec, path, keys), rate, keys.next())

        def ff(z: Array, pre: str = pre) -> Array:
            return dropout(feed_forward(p, pre, z, spec, keys), rate, keys.next())

        if spec.norm_first:
            h = h + sa(norm(f"{pre}norm1", h))
            h = h + ff(norm(f"{pre}norm2", h))
        else:
            h = norm(f"{pre}norm1", h + sa(h))
            h = norm(f"{pre}norm2", h + ff(h))
    if spec.norm_first:
        h = norm("final_norm", h)
    mask = valid_mask(lengths, seq_len)
    outputs = jnp.where(mask[:, :, None], h, 0.0)
    if spec.resolved_pooling == "mean":
        pooled = jnp.sum(outputs, axis=1) / lengths[:, None].astype(dtype)
    else:
        last = (lengths - 1).astype(jnp.int32)
        pooled = jnp.take_along_axis(outputs, last[:, None, None], axis=1)[:, 0]
    logits = head_forward(p, outputs if spec.head.per_step else pooled)
    return {"outputs": outputs, "pooled": pooled, "logits": logits, "final_states": {}, "extras": {}}


class SelfAttention(nnx.Module):
    def __init__(self, d: int, dtype: Any) -> None:
        self.q_proj = Linear(d, d, dtype)
        self.k_proj = Linear(d, d, dtype)
        self.v_proj = Linear(d, d, dtype)
        self.out_proj = Linear(d, d, dtype)


class EncoderLayer(nnx.Module):
    def __init__(self, spec: TransformerSpec, dtype: Any) -> None:
        d, f = spec.d_model, spec.d_ff
        self.self_attn = SelfAttention(d, dtype)
        self.linear1 = Linear(d, f, dtype)
        self.linear2 = Linear(f, d, dtype)
        self.norm1 = LayerNorm(d, dtype)
        self.norm2 = LayerNorm(d, dtype)


class TransformerModel(SequenceModel):
    """``input_proj``, positions, ``layers`` of ``EncoderLayer``, ``final_norm`` (pre-norm only), ``head``."""

    apply = staticmethod(transformer_apply)

    def choose_path(self, requested: str) -> str:
        return resolve_path(requested, self.spec, self.precision)

    def create_params(self, dtype: Any) -> None:
        spec = self.spec
        self.input_proj = Linear(spec.input_size, spec.d_model, dtype)
        if spec.positional == "learned":
            self.pos_embedding = param(np.zeros((spec.max_len, spec.d_model)), dtype)
        self.layers = nnx.List([EncoderLayer(spec, dtype) for _ in range(spec.num_layers)])
        if spec.norm_first:
            self.final_norm = LayerNorm(spec.d_model, dtype)
        self.head = Linear(spec.head_features(), spec.head.out_size, dtype)
