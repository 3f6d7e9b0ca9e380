"""A small Transformer encoder with a sequence-level or per-step head.

Semantics both backends implement (batch-first):

- x = input_proj(inputs) + pos, pos sinusoidal (pe[t, 2i] = sin(t / 10000^(2i/d)),
  pe[t, 2i+1] = cos(...)), learned (``pos_embedding`` (max_len, d)) or none.
- Self-attention per layer, h heads of size d/h:
  q, k, v = x W_q^T + b_q, ...;  s = q k^T / sqrt(d/h)
  keys at padded steps are masked (-inf); with ``causal`` so is every key j > i;
  softmax over keys; heads concatenated; out_proj.
  A query row always has a valid key (lengths >= 1), so no row is fully masked.
- Feed-forward: linear2(act(linear1(x))), act ReLU or GELU in its exact (erf) form.
- Post-norm (``norm_first=False``, torch's default):
      x = norm1(x + sa(x)); x = norm2(x + ff(x))
  Pre-norm: x = x + sa(norm1(x)); x = x + ff(norm2(x)); ``final_norm`` after the last layer.
  LayerNorm eps is ``layer_norm_eps`` on both sides (torch 1e-5 by default, Flax 1e-6: set explicitly).
- Dropout (training only) on attention weights, after attention, inside and after the feed-forward.
- ``outputs`` (B, T, d): the encoder output, zero at padded steps.
  Pooling: mean over valid steps, or the last valid step (the default when causal).

Canonical parameters: ``input_proj.weight`` (d, I), ``input_proj.bias``;
``pos_embedding`` (learned only); per layer i: ``layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}``
((d, d), (d,)), ``layers.{i}.linear1.*`` (d_ff, d), ``layers.{i}.linear2.*`` (d, d_ff),
``layers.{i}.norm1.*``, ``layers.{i}.norm2.*``; ``final_norm.*`` (pre-norm only); ``head.*``.
torch's packed ``in_proj_weight`` is ``concat([q_proj.weight, k_proj.weight, v_proj.weight], 0)``
(3d, d), and ``in_proj_bias`` likewise; ``out_proj`` maps to ``out_proj`` unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from experiments.errors import UserError
from experiments.spec.common import (
    ArchSpec,
    HeadSpec,
    head_flops,
    head_schema,
    linear_init,
    require_positive,
    require_probability,
    xavier_uniform,
)

Positional = Literal["sinusoidal", "learned", "none"]
Activation = Literal["relu", "gelu"]
Pooling = Literal["auto", "mean", "last"]


@dataclass(frozen=True)
class TransformerSpec(ArchSpec):
    arch: str = "transformer"
    input_size: int = 8
    d_model: int = 32
    num_heads: int = 4
    d_ff: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    norm_first: bool = False
    activation: Activation = "relu"
    layer_norm_eps: float = 1e-5
    positional: Positional = "sinusoidal"
    max_len: int = 4096
    causal: bool = False
    pooling: Pooling = "auto"
    head: HeadSpec = field(default_factory=HeadSpec)

    @classmethod
    def fields_for_size(cls, hidden: int) -> dict[str, int]:
        """d_model = hidden, d_ff = 4 d_model, heads of width >= 16 (at most 8 of them)."""
        heads = next((h for h in (8, 4, 2) if hidden % h == 0 and hidden // h >= 16), 1)
        return {"d_model": hidden, "d_ff": 4 * hidden, "num_heads": heads}

    def validate(self) -> None:
        require_positive("input_size", self.input_size)
        require_positive("d_model", self.d_model)
        require_positive("num_heads", self.num_heads)
        require_positive("d_ff", self.d_ff)
        require_positive("num_layers", self.num_layers)
        require_probability("dropout", self.dropout)
        if self.d_model % self.num_heads:
            raise UserError(
                "num_heads", f"{self.num_heads} heads do not divide d_model={self.d_model}", "pick a divisor of d_model"
            )
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise UserError("d_model", f"sinusoidal positions need an even d_model, got {self.d_model}")
        if self.positional not in ("sinusoidal", "learned", "none"):
            raise UserError("positional", f"unknown encoding {self.positional!r}", "use sinusoidal, learned or none")
        if self.activation not in ("relu", "gelu"):
            raise UserError("activation", f"unknown activation {self.activation!r}", "use relu or gelu (exact)")
        if self.pooling not in ("auto", "mean", "last"):
            raise UserError("pooling", f"unknown pooling {self.pooling!r}", "use auto, mean or last")
        if self.layer_norm_eps <= 0:
            raise UserError("layer_norm_eps", f"must be > 0, got {self.layer_norm_eps!r}")
        require_positive("max_len", self.max_len)
        self.head.validate()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def resolved_pooling(self) -> str:
        if self.pooling != "auto":
            return self.pooling
        return "last" if self.causal else "mean"

    @property
    def output_size(self) -> int:
        return self.d_model

    @property
    def pooled_size(self) -> int:
        return self.d_model

    def param_schema(self) -> dict[str, tuple[int, ...]]:
        d, f = self.d_model, self.d_ff
        schema: dict[str, tuple[int, ...]] = {"input_proj.weight": (d, self.input_size), "input_proj.bias": (d,)}
        if self.positional == "learned":
            schema["pos_embedding"] = (self.max_len, d)
        for i in range(self.num_layers):
            p = f"layers.{i}."
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                schema[f"{p}self_attn.{proj}.weight"] = (d, d)
                schema[f"{p}self_attn.{proj}.bias"] = (d,)
            schema[f"{p}linear1.weight"] = (f, d)
            schema[f"{p}linear1.bias"] = (f,)
            schema[f"{p}linear2.weight"] = (d, f)
            schema[f"{p}linear2.bias"] = (d,)
            for norm in ("norm1", "norm2"):
                schema[f"{p}{norm}.weight"] = (d,)
                schema[f"{p}{norm}.bias"] = (d,)
        if self.norm_first:
            schema["final_norm.weight"] = (d,)
            schema["final_norm.bias"] = (d,)
        schema.update(head_schema(self.head, self.head_features()))
        return schema

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """torch's defaults: Linear kaiming-uniform; attention in_proj xavier on the packed
        (3d, d) matrix with zero biases; out_proj bias zero; LayerNorm (1, 0); learned
        positions N(0, 0.02)."""
        rng = np.random.default_rng(seed)
        d, f, i_size = self.d_model, self.d_ff, self.input_size
        params: dict[str, np.ndarray] = {
            "input_proj.weight": linear_init(rng, (d, i_size), i_size),
            "input_proj.bias": linear_init(rng, (d,), i_size),
        }
        if self.positional == "learned":
            params["pos_embedding"] = rng.normal(0.0, 0.02, size=(self.max_len, d))
        for i in range(self.num_layers):
            p = f"layers.{i}."
            packed = xavier_uniform(rng, (3 * d, d))
            params[f"{p}self_attn.q_proj.weight"] = packed[:d].copy()
            params[f"{p}self_attn.k_proj.weight"] = packed[d : 2 * d].copy()
            params[f"{p}self_attn.v_proj.weight"] = packed[2 * d :].copy()
            for proj in ("q_proj", "k_proj", "v_proj"):
                params[f"{p}self_attn.{proj}.bias"] = np.zeros(d)
            params[f"{p}self_attn.out_proj.weight"] = linear_init(rng, (d, d), d)
            params[f"{p}self_attn.out_proj.bias"] = np.zeros(d)
            params[f"{p}linear1.weight"] = linear_init(rng, (f, d), d)
            params[f"{p}linear1.bias"] = linear_init(rng, (f,), d)
            params[f"{p}linear2.weight"] = linear_init(rng, (d, f), f)
            params[f"{p}linear2.bias"] = linear_init(rng, (d,), f)
            for norm in ("norm1", "norm2"):
                params[f"{p}{norm}.weight"] = np.ones(d)
                params[f"{p}{norm}.bias"] = np.zeros(d)
        if self.norm_first:
            params["final_norm.weight"] = np.ones(d)
            params["final_norm.bias"] = np.zeros(d)
        feats = self.head_features()
        params["head.weight"] = linear_init(rng, (self.head.out_size, feats), feats)
        params["head.bias"] = linear_init(rng, (self.head.out_size,), feats)
        return {name: params[name] for name in self.param_schema()}

    def param_count(self) -> int:
        d, f = self.d_model, self.d_ff
        per_layer = 4 * (d * d + d) + (f * d + f) + (d * f + d) + 4 * d
        total = d * self.input_size + d + self.num_layers * per_layer
        if self.positional == "learned":
            total += self.max_len * d
        if self.norm_first:
            total += 2 * d
        return total + self.head.out_size * (self.head_features() + 1)

    def forward_flops(self, batch: int, seq_len: int) -> int:
        """Projections, both T^2 attention matmuls (QK^T and AV, counted in full even
        when causal, as both paths compute them), and the feed-forward."""
        b, t, d, f = batch, seq_len, self.d_model, self.d_ff
        per_layer = 2 * b * t * d * (4 * d) + 2 * (2 * b * t * t * d) + 2 * b * t * d * f * 2
        return 2 * b * t * self.input_size * d + self.num_layers * per_layer + head_flops(self.head, b, t, d)

    def stored_activations(self, batch: int, seq_len: int, attention_path: str = "reference") -> int:
        """Per layer: the layer input, q, k, v, attention output, two norm inputs,
        the feed-forward hidden (pre and post activation); plus the attention
        probabilities (B, h, T, T) on the reference path, or only a log-sum-exp
        row statistic (B, h, T) on a fused path, which recomputes them."""
        b, t, d, f, h = batch, seq_len, self.d_model, self.d_ff, self.num_heads
        linear = b * t * (7 * d + 2 * f)
        attention = b * h * t * t if attention_path == "reference" else b * h * t
        return b * t * self.input_size + self.num_layers * (linear + attention)


def sinusoidal_positions(seq_len: int, d_model: int) -> np.ndarray:
    """(T, d) table; the one both backends add (computed in float64, cast by the caller)."""
    pos = np.arange(seq_len, dtype=np.float64)[:, None]
    div = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.zeros((seq_len, d_model))
    table[:, 0::2] = np.sin(pos * div)
    table[:, 1::2] = np.cos(pos * div)
    return table
