"""An LSTM encoder whose outputs are pooled by attention, then a sequence-level head.

Semantics both backends implement. ``o`` (B, T, D) are the encoder's outputs
(D = directions * H, zero at padded steps, exactly as in ``recurrent.py``) and
``q`` (B, D) its pooled final state (the recurrent family's pooled features).

- ``score="additive"`` (Bahdanau):  e_t = w_s . tanh(W_k o_t + b_k + W_q q)
- ``score="dot"`` (Luong, dot):      e_t = o_t . q
- Padded steps: e_t = -inf, so their weight is exactly zero.
  a = softmax_t(e);  context = sum_t a_t o_t   (B, D)
- The head reads ``context``; ``extras["attention"]`` is ``a`` (B, T).

Canonical parameters: the encoder's ``rnn.*`` (as ``recurrent.py``), and for the
additive score ``attn.key.weight`` (A, D), ``attn.key.bias`` (A,),
``attn.query.weight`` (A, D), ``attn.score.weight`` (1, A); then ``head.*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from experiments.errors import UserError
from experiments.spec.common import ArchSpec, HeadSpec, head_flops, head_schema, linear_init
from experiments.spec.recurrent import (
    EncoderFields,
    _validate_encoder,
    encoder_forget_bias,
    encoder_forward_flops,
    encoder_init,
    encoder_param_count,
    encoder_schema,
    encoder_stored_activations,
)

Score = Literal["additive", "dot"]


@dataclass(frozen=True)
class AttentionLSTMSpec(EncoderFields, ArchSpec):
    arch: str = "attention_lstm"
    score: Score = "additive"
    attention_size: int | None = None  # A; defaults to D = directions * hidden_size
    head: HeadSpec = field(default_factory=HeadSpec)

    @classmethod
    def fields_for_size(cls, hidden: int) -> dict[str, int]:
        return {"hidden_size": hidden}

    def validate(self) -> None:
        _validate_encoder(self, "lstm")
        if self.score not in ("additive", "dot"):
            raise UserError("score", f"unknown attention score {self.score!r}", "use additive or dot")
        if self.attention_size is not None and self.attention_size < 1:
            raise UserError("attention_size", f"must be a positive integer, got {self.attention_size!r}")
        self.head.validate()
        if self.head.per_step:
            raise UserError("head.kind", "attention pooling feeds a sequence-level head", "use classify or regress")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.directions * self.hidden_size

    @property
    def pooled_size(self) -> int:
        return self.output_size

    @property
    def attn_size(self) -> int:
        return self.attention_size or self.output_size

    @property
    def effective_forget_bias(self) -> float | None:
        return encoder_forget_bias(self)

    def _attention_schema(self) -> dict[str, tuple[int, ...]]:
        if self.score == "dot":
            return {}
        a, d = self.attn_size, self.output_size
        return {
            "attn.key.weight": (a, d),
            "attn.key.bias": (a,),
            "attn.query.weight": (a, d),
            "attn.score.weight": (1, a),
        }

    def param_schema(self) -> dict[str, tuple[int, ...]]:
        return {
            **encoder_schema(self, "lstm"),
            **self._attention_schema(),
            **head_schema(self.head, self.pooled_size),
        }

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        params = encoder_init(self, "lstm", rng)
        for name, shape in self._attention_schema().items():
            fan_in = shape[-1] if len(shape) == 2 else self.output_size
            params[name] = linear_init(rng, shape, fan_in)
        feats = self.pooled_size
        params["head.weight"] = linear_init(rng, (self.head.out_size, feats), feats)
        params["head.bias"] = linear_init(rng, (self.head.out_size,), feats)
        return params

    def param_count(self) -> int:
        a, d = self.attn_size, self.output_size
        attention = 0 if self.score == "dot" else a * d + a + a * d + a
        return encoder_param_count(self, "lstm") + attention + self.head.out_size * (self.pooled_size + 1)

    def forward_flops(self, batch: int, seq_len: int) -> int:
        a, d = self.attn_size, self.output_size
        if self.score == "additive":
            scores = 2 * batch * seq_len * d * a + 2 * batch * d * a + 2 * batch * seq_len * a
        else:
            scores = 2 * batch * seq_len * d
        context = 2 * batch * seq_len * d
        return (
            encoder_forward_flops(self, "lstm", batch, seq_len)
            + scores
            + context
            + head_flops(self.head, batch, seq_len, self.pooled_size)
        )

    def stored_activations(self, batch: int, seq_len: int, attention_path: str = "reference") -> int:
        # additive: tanh(W_k o + W_q q) (B, T, A); both: scores and weights (B, T) each.
        hidden = batch * seq_len * self.attn_size if self.score == "additive" else 0
        return encoder_stored_activations(self, "lstm", batch, seq_len) + hidden + 2 * batch * seq_len
