"""A small Transformer encoder: ``experiments/spec/transformer.py``, batch-first.

Attention paths (the ``auto | on | off`` switch):
- fast (``on``, the ``auto`` default): ``F.scaled_dot_product_attention``, which picks
  its fused kernel (flash / memory-efficient on GPU) or its math kernel; float64 works.
  Its boolean ``attn_mask`` is True where a key TAKES PART; torch's ``key_padding_mask``
  (``nn.MultiheadAttention``) is the opposite, True = padding. We keep ours: True = valid.
- reference (``off``): softmax(q k^T / sqrt(d/h) + mask) v, written out, with the
  probabilities stored (what the spec's ``stored_activations(attention_path="reference")``
  counts).

Mapping to ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` (the tests build one from our
parameters: ``torch_encoder_layer`` in ``tests/_torch_helpers.py``): its packed
``self_attn.in_proj_weight`` (3d, d) is ``concat([q_proj.weight, k_proj.weight, v_proj.weight], dim=0)``
and ``in_proj_bias`` (3d,) is ``concat([q_proj.bias, k_proj.bias, v_proj.bias])``; ``self_attn.out_proj``,
``linear1``, ``linear2``, ``norm1``, ``norm2`` carry over under the same names.
``input_proj``, positions, ``final_norm``, pooling and the head have no counterpart there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from experiments.errors import UserError
from experiments.spec.transformer import TransformerSpec, sinusoidal_positions
from torch_impl.layers import Output, SequenceModel, check_path, make_head, valid_mask

EXECUTION_PATHS = ("fused_attention", "reference")  # what ``execution_path`` names


class SelfAttention(nn.Module):
    """Separate ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (each (d, d) + bias)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, steps, _ = t.shape
        return t.view(b, steps, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, T, d/h)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool, fused: bool) -> torch.Tensor:
        """``attn_mask`` bool, True = the key takes part, broadcastable to (B, h, T, T); or None.
        ``is_causal`` only when ``attn_mask`` is None (then it alone masks)."""
        q, k, v = self._heads(self.q_proj(x)), self._heads(self.k_proj(x)), self._heads(self.v_proj(x))
        p = self.dropout if self.training else 0.0
        if fused:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p, is_causal=is_causal)
        else:
            out = reference_attention(q, k, v, attn_mask, is_causal, p)
        b, _, steps, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, steps, -1))


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool, dropout_p: float
) -> torch.Tensor:
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if is_causal:
        attn_mask = causal_mask(q.shape[-2], q.device)
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if dropout_p > 0:
        probs = F.dropout(probs, dropout_p, training=True)
    return torch.matmul(probs, v)


def causal_mask(steps: int, device: torch.device) -> torch.Tensor:
    """(T, T) bool, True where key j <= query i."""
    return torch.ones(steps, steps, dtype=torch.bool, device=device).tril()


class EncoderLayer(nn.Module):
    def __init__(self, spec: TransformerSpec) -> None:
        super().__init__()
        d = spec.d_model
        self.norm_first = spec.norm_first
        self.dropout = spec.dropout
        self.gelu = spec.activation == "gelu"
        self.self_attn = SelfAttention(d, spec.num_heads, spec.dropout)
        self.linear1 = nn.Linear(d, spec.d_ff)
        self.linear2 = nn.Linear(spec.d_ff, d)
        self.norm1 = nn.LayerNorm(d, eps=spec.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d, eps=spec.layer_norm_eps)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.dropout, training=True) if self.training and self.dropout > 0 else x

    def _sa(self, x: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool, fused: bool) -> torch.Tensor:
        return self._drop(self.self_attn(x, attn_mask, is_causal, fused))

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.linear1(x)
        hidden = F.gelu(hidden) if self.gelu else F.relu(hidden)  # exact (erf) GELU
        return self._drop(self.linear2(self._drop(hidden)))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None, is_causal: bool, fused: bool) -> torch.Tensor:
        if self.norm_first:
            x = x + self._sa(self.norm1(x), attn_mask, is_causal, fused)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, attn_mask, is_causal, fused))
        return self.norm2(x + self._ff(x))


class TransformerModel(SequenceModel):
    """``input_proj``, positions, ``layers`` of ``EncoderLayer``, ``final_norm`` (pre-norm only), ``head``."""

    def __init__(self, spec: TransformerSpec, path: str = "auto") -> None:
        super().__init__(spec, path)
        self.fused = check_path(path, EXECUTION_PATHS) not in ("off", "reference")
        self.causal = spec.causal
        self.pooling = spec.resolved_pooling
        self.per_step = spec.head.per_step
        d = spec.d_model
        self.input_proj = nn.Linear(spec.input_size, d)
        if spec.positional == "learned":
            self.pos_embedding = nn.Parameter(torch.zeros(spec.max_len, d))
        # sinusoidal table: computed on first use for the longest T seen, not saved
        self.register_buffer("pe", torch.zeros(0, d), persistent=False)
        self.layers = nn.ModuleList(EncoderLayer(spec) for _ in range(spec.num_layers))
        self.final_norm = nn.LayerNorm(d, eps=spec.layer_norm_eps) if spec.norm_first else None
        self.head = make_head(spec)

    def execution_path(self) -> str:
        return "fused_attention" if self.fused else "reference"

    def _positions(self, steps: int, ref: torch.Tensor) -> torch.Tensor | None:
        positional = self.spec.positional
        if positional == "learned":
            if steps > self.spec.max_len:
                raise UserError("max_len", f"sequence length {steps} exceeds max_len={self.spec.max_len}")
            return self.pos_embedding[:steps]
        if positional == "sinusoidal":
            if self.pe.shape[0] < steps or self.pe.dtype != ref.dtype or self.pe.device != ref.device:
                self.pe = torch.from_numpy(sinusoidal_positions(steps, self.spec.d_model)).to(ref.device, ref.dtype)
            return self.pe[:steps]
        return None

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ) -> Output:
        """``lengths`` (B,) int64 on the CPU or None (all full); ``mask`` (B, T) on the device, or derived."""
        steps = x.shape[1]
        if lengths is not None and mask is None:
            mask = valid_mask(lengths.to(x.device), steps)
        h = self.input_proj(x)
        pos = self._positions(steps, h)
        if pos is not None:
            h = h + pos
        attn_mask, is_causal = None, False
        if mask is not None:
            attn_mask = mask[:, None, None, :]  # (B, 1, 1, T): True = key takes part
            if self.causal:
                attn_mask = attn_mask & causal_mask(steps, x.device)
        elif self.causal:
            is_causal = True
        for layer in self.layers:
            h = layer(h, attn_mask, is_causal, self.fused)
        if self.final_norm is not None:
            h = self.final_norm(h)
        if mask is not None:
            h = torch.where(mask[..., None], h, 0.0)
        pooled = pool(h, mask, self.pooling)
        logits = self.head(h if self.per_step else pooled)
        return Output(h, pooled, logits, None, None, {})


def pool(h: torch.Tensor, mask: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """Mean over valid steps (``h`` is zero at padded ones) or the last valid step."""
    if mask is None:
        return h.mean(dim=1) if pooling == "mean" else h[:, -1]
    counts = mask.sum(dim=1)
    if pooling == "mean":
        return h.sum(dim=1) / counts[:, None].to(h.dtype)
    return h[torch.arange(h.shape[0], device=h.device), counts - 1]
