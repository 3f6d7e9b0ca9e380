"""An LSTM encoder pooled by attention: the math of ``experiments/spec/attention_lstm.py``.

``o`` (B, T, D) are the encoder's outputs (zero at padded steps), ``q`` (B, D) its
pooled final state.

- additive (Bahdanau): e_t = w_s . tanh(W_k o_t + b_k + W_q q)
- dot (Luong):         e_t = o_t . q
- padded steps get e_t = -inf, hence exactly zero weight; a = softmax_t(e),
  context = sum_t a_t o_t feeds the head; ``extras["attention"]`` is ``a``.

The encoder runs the recurrent family's paths (``scan`` or ``reference``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from experiments.spec.attention_lstm import AttentionLSTMSpec
from jax_impl.layers import (
    Array,
    KeyStream,
    Linear,
    Params,
    head_forward,
    linear,
    valid_mask,
)
from jax_impl.recurrent import DEFAULT_UNROLL, EncoderModel, encoder_apply, pool_final


def attention_pool(spec: AttentionLSTMSpec, p: Params, o: Array, q: Array, mask: Array) -> tuple[Array, Array]:
    """(context (B, D), weights (B, T)); padded steps weigh exactly zero."""
    if spec.score == "additive":
        keys = linear(o, p["attn.key.weight"], p["attn.key.bias"])  # (B, T, A)
        query = linear(q, p["attn.query.weight"])[:, None, :]  # (B, 1, A)
        e = linear(jnp.tanh(keys + query), p["attn.score.weight"])[..., 0]  # (B, T)
    else:
        e = jnp.einsum("btd,bd->bt", o, q)
    e = jnp.where(mask, e, -jnp.inf)
    a = jax.nn.softmax(e, axis=-1)
    a = jnp.where(mask, a, 0.0)  # exactly zero (it already is: exp(-inf) = 0)
    context = jnp.einsum("bt,btd->bd", a, o)
    return context, a


def attention_lstm_apply(
    spec: AttentionLSTMSpec,
    p: Params,
    x: Array,
    lengths: Array,
    *,
    path: str,
    train: bool = False,
    key: Array | None = None,
    return_extras: bool = False,
    unroll: int = DEFAULT_UNROLL,
) -> dict[str, Any]:
    keys = KeyStream(key if train else None)
    enc = encoder_apply(spec, "lstm", p, x, lengths, path=path, keys=keys, want_gates=return_extras, unroll=unroll)
    q = pool_final(enc["h"], 2 if spec.bidirectional else 1)  # (B, D)
    mask = valid_mask(lengths, x.shape[1])
    context, weights = attention_pool(spec, p, enc["outputs"], q, mask)
    logits = head_forward(p, context)
    extras = {"attention": weights, "gates": enc["gates"]} if return_extras else {}
    return {
        "outputs": enc["outputs"],
        "pooled": context,
        "logits": logits,
        "final_states": {"h": enc["h"], "c": enc["c"]},
        "extras": extras,
    }


class AdditiveAttention(nnx.Module):
    """``key`` (A, D) + bias, ``query`` (A, D) without bias, ``score`` (1, A) without bias."""

    def __init__(self, features: int, attn: int, dtype: Any) -> None:
        self.key = Linear(features, attn, dtype)
        self.query = Linear(features, attn, dtype, bias=False)
        self.score = Linear(attn, 1, dtype, bias=False)


class AttentionLSTMModel(EncoderModel):
    """The LSTM encoder (``rnn``), ``attn`` (additive score only) and a linear ``head``."""

    apply = staticmethod(attention_lstm_apply)

    def encoder_cell(self) -> str:
        return "lstm"

    def create_params(self, dtype: Any) -> None:
        super().create_params(dtype)
        if self.spec.score == "additive":
            self.attn = AdditiveAttention(self.spec.output_size, self.spec.attn_size, dtype)
