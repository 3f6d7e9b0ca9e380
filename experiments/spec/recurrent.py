"""The recurrent family: vanilla RNN (tanh), LSTM, GRU, uni- or bidirectional, stacked.

Semantics both backends implement (batch-first, PyTorch conventions):

- Cells, with ``a = W_ih x_t + b_ih`` and ``r_h = W_hh h_{t-1} + b_hh``:
    rnn:  h_t = tanh(a + r_h)
    lstm: (i, f, g, o) = split(a + r_h, 4)        # gate blocks in order i, f, g, o
          c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g);  h_t = sigmoid(o) * tanh(c_t)
    gru:  (a_r, a_z, a_n), (h_r, h_z, h_n) = split(a, 3), split(r_h, 3)   # order r, z, n
          r = sigmoid(a_r + h_r); z = sigmoid(a_z + h_z)
          n = tanh(a_n + r * h_n)                  # reset applied after the hidden matmul (b_hn inside)
          h_t = (1 - z) * n + z * h_{t-1}
- Initial states are zero. Each sequence ``b`` runs over its own ``lengths[b]``
  steps; the reverse direction starts at step ``lengths[b] - 1``. Outputs at
  padded steps are exactly zero; padded steps never change a result.
- Layer l > 0 reads the concatenated (forward, reverse) outputs of layer l-1,
  with dropout between layers in training only.
- ``final_states``: ``h`` of shape (layers * directions, B, H), index
  2 * layer + direction (torch's ``h_n``), each taken at the sequence's own
  length; LSTM adds ``c`` alike.
- Pooled features: the last layer's final ``h`` of each direction,
  concatenated (forward, reverse): (B, directions * H).

Canonical parameters, per layer l and direction suffix ("" or "_reverse"):
``rnn.weight_ih_l{l}{sfx}`` (G*H, in), ``rnn.weight_hh_l{l}{sfx}`` (G*H, H),
``rnn.bias_ih_l{l}{sfx}`` (G*H,), ``rnn.bias_hh_l{l}{sfx}`` (G*H,), with G = 1, 4, 3.
Strip the ``rnn.`` prefix and they are ``nn.RNN/LSTM/GRU``'s own names.
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
    retention_to_forget_bias,
    uniform,
)

CellType = Literal["rnn", "lstm", "gru"]  # the recurrent cell (not a grid cell: experiments.cell)
GATES: dict[str, int] = {"rnn": 1, "lstm": 4, "gru": 3}
GATE_NAMES: dict[str, tuple[str, ...]] = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
# Values kept per step, layer and direction for backward by a plain implementation:
# rnn h; lstm 4 gate activations + c + tanh(c) + h; gru 3 gates + W_hn h + b_hn + h.
STORED_PER_STEP: dict[str, int] = {"rnn": 1, "lstm": 7, "gru": 5}


@dataclass(frozen=True)
class EncoderFields:
    """The LSTM/GRU/RNN encoder settings, shared with the attention-LSTM."""

    input_size: int = 8
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    # LSTM only: the forget-gate bias as a value, or from a retention length N
    # (claim L3). Either sets b_ih[f] = bias and b_hh[f] = 0, so their sum is the bias.
    forget_bias: float | None = None
    forget_retention: int | None = None


def _validate_encoder(spec: EncoderFields, cell: str) -> None:
    require_positive("input_size", spec.input_size)
    require_positive("hidden_size", spec.hidden_size)
    require_positive("num_layers", spec.num_layers)
    require_probability("dropout", spec.dropout)
    if spec.forget_bias is not None and spec.forget_retention is not None:
        raise UserError("forget_bias", "set either forget_bias or forget_retention, not both")
    if (spec.forget_bias is not None or spec.forget_retention is not None) and cell != "lstm":
        raise UserError("forget_bias", f"only an LSTM has a forget gate, not {cell!r}")
    if spec.forget_retention is not None:
        require_positive("forget_retention", spec.forget_retention)


def encoder_forget_bias(spec: EncoderFields) -> float | None:
    if spec.forget_retention is not None:
        return retention_to_forget_bias(spec.forget_retention)
    return spec.forget_bias


def encoder_schema(spec: EncoderFields, cell: str, prefix: str = "rnn.") -> dict[str, tuple[int, ...]]:
    g, h = GATES[cell], spec.hidden_size
    dirs = 2 if spec.bidirectional else 1
    schema: dict[str, tuple[int, ...]] = {}
    for layer in range(spec.num_layers):
        layer_in = spec.input_size if layer == 0 else dirs * h
        for sfx in ("", "_reverse")[:dirs]:
            schema[f"{prefix}weight_ih_l{layer}{sfx}"] = (g * h, layer_in)
            schema[f"{prefix}weight_hh_l{layer}{sfx}"] = (g * h, h)
            schema[f"{prefix}bias_ih_l{layer}{sfx}"] = (g * h,)
            schema[f"{prefix}bias_hh_l{layer}{sfx}"] = (g * h,)
    return schema


def encoder_init(
    spec: EncoderFields, cell: str, rng: np.random.Generator, prefix: str = "rnn."
) -> dict[str, np.ndarray]:
    """torch's RNN default: every weight and bias from U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(spec.hidden_size)
    params = {name: uniform(rng, shape, bound) for name, shape in encoder_schema(spec, cell, prefix).items()}
    bias = encoder_forget_bias(spec)
    if bias is not None:
        h = spec.hidden_size
        forget = slice(h, 2 * h)  # gate order i, f, g, o: the forget block is the second
        for name in params:
            if "bias_ih" in name:
                params[name][forget] = bias
            elif "bias_hh" in name:
                params[name][forget] = 0.0
    return params


def encoder_param_count(spec: EncoderFields, cell: str) -> int:
    g, h = GATES[cell], spec.hidden_size
    dirs = 2 if spec.bidirectional else 1
    first = g * h * (spec.input_size + h + 2)
    rest = g * h * (dirs * h + h + 2)
    return dirs * (first + (spec.num_layers - 1) * rest)


def encoder_forward_flops(spec: EncoderFields, cell: str, batch: int, seq_len: int) -> int:
    """Matmul FLOPs: input projection and recurrent matmul per step, per layer and direction.

    Elementwise gate math is O(B T G H), negligible beside the O(B T G H (I + H))
    matmuls, and left out so that the figure matches the usual convention (DeepBench).
    """
    g, h = GATES[cell], spec.hidden_size
    dirs = 2 if spec.bidirectional else 1
    total = 0
    for layer in range(spec.num_layers):
        layer_in = spec.input_size if layer == 0 else dirs * h
        total += dirs * 2 * batch * seq_len * g * h * (layer_in + h)
    return total


def encoder_stored_activations(spec: EncoderFields, cell: str, batch: int, seq_len: int) -> int:
    dirs = 2 if spec.bidirectional else 1
    per_step = STORED_PER_STEP[cell] * spec.hidden_size * dirs * spec.num_layers
    return batch * seq_len * (spec.input_size + per_step)


@dataclass(frozen=True)
class RecurrentSpec(EncoderFields, ArchSpec):
    """``rnn``, ``lstm``, ``gru``; ``bilstm`` is ``lstm`` with ``bidirectional=True``."""

    arch: str = "lstm"
    cell: CellType = "lstm"
    head: HeadSpec = field(default_factory=HeadSpec)

    @classmethod
    def fields_for_size(cls, hidden: int) -> dict[str, int]:
        return {"hidden_size": hidden}

    def validate(self) -> None:
        if self.cell not in GATES:
            raise UserError("cell", f"unknown cell {self.cell!r}", "use rnn, lstm or gru")
        _validate_encoder(self, self.cell)
        self.head.validate()

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        return self.directions * self.hidden_size

    @property
    def pooled_size(self) -> int:
        return self.directions * self.hidden_size

    @property
    def effective_forget_bias(self) -> float | None:
        return encoder_forget_bias(self)

    def param_schema(self) -> dict[str, tuple[int, ...]]:
        return {**encoder_schema(self, self.cell), **head_schema(self.head, self.head_features())}

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        params = encoder_init(self, self.cell, rng)
        feats = self.head_features()
        params["head.weight"] = linear_init(rng, (self.head.out_size, feats), feats)
        params["head.bias"] = linear_init(rng, (self.head.out_size,), feats)
        return params

    def param_count(self) -> int:
        return encoder_param_count(self, self.cell) + self.head.out_size * (self.head_features() + 1)

    def forward_flops(self, batch: int, seq_len: int) -> int:
        return encoder_forward_flops(self, self.cell, batch, seq_len) + head_flops(
            self.head, batch, seq_len, self.head_features()
        )

    def stored_activations(self, batch: int, seq_len: int, attention_path: str = "reference") -> int:
        return encoder_stored_activations(self, self.cell, batch, seq_len)
