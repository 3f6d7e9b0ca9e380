"""LSTM encoder + attention pooling: ``experiments/spec/attention_lstm.py``.

The encoder is the recurrent family's (same fast/reference paths, same ``rnn.*``
parameters). ``o`` (B, T, D) are its outputs, ``q`` (B, D) its pooled final state.
- additive (Bahdanau): e_t = w_s . tanh(W_k o_t + b_k + W_q q)
- dot (Luong):         e_t = o_t . q
Padded steps get e_t = -inf, hence exactly zero weight; a = softmax_t(e);
context = sum_t a_t o_t feeds the head; ``extras["attention"]`` is ``a``.
"""

from __future__ import annotations

import torch
from torch import nn

from experiments.spec.attention_lstm import AttentionLSTMSpec
from torch_impl.layers import Output, make_head, valid_mask
from torch_impl.recurrent import EncoderModel, pool_final


class AdditiveAttention(nn.Module):
    """``attn.key`` (A, D) + bias, ``attn.query`` (A, D) without bias, ``attn.score`` (1, A) without bias."""

    def __init__(self, features: int, attn_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(features, attn_size)
        self.query = nn.Linear(features, attn_size, bias=False)
        self.score = nn.Linear(attn_size, 1, bias=False)

    def forward(self, o: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.score(torch.tanh(self.key(o) + self.query(q)[:, None, :])).squeeze(-1)


def attention_pool(
    scores: torch.Tensor, o: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(context (B, D), weights (B, T)); padded steps are -inf before the softmax."""
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    context = torch.bmm(weights[:, None, :], o).squeeze(1)
    return context, weights


class AttentionLSTMModel(EncoderModel):
    """The LSTM encoder, ``attn`` (additive score only) and a linear ``head``."""

    def __init__(self, spec: AttentionLSTMSpec, path: str = "auto") -> None:
        super().__init__(spec, "lstm", path)
        self.attn = AdditiveAttention(spec.output_size, spec.attn_size) if spec.score == "additive" else None
        self.head = make_head(spec)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ) -> Output:
        """``lengths`` (B,) int64 on the CPU or None (all full); ``mask`` (B, T) on the device, or derived."""
        enc = self.encode(x, lengths, return_extras)
        o = enc.outputs  # (B, T, D)
        q = pool_final(enc.h, self.directions)  # (B, D)
        if lengths is not None and mask is None:
            mask = valid_mask(lengths.to(x.device), x.shape[1])
        scores = self.attn(o, q) if self.attn is not None else torch.bmm(o, q[:, :, None]).squeeze(-1)
        context, weights = attention_pool(scores, o, mask)
        logits = self.head(context)
        extras = {"attention": weights, "gates": enc.gates} if return_extras else {}
        return Output(o, context, logits, enc.h, enc.c, extras)
