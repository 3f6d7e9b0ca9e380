"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"), stacked, unidirectional.

Their gates read x_t only, so each layer is the linear recurrence h_t = a_t * h_{t-1} + b_t
(elementwise, h_0 = 0), which a parallel scan computes for every t at once.

Semantics both backends implement (batch-first), layer input u_t (B, in), k = W_ih u_t + b_ih:

    g(v) = v + 1/2 if v >= 0 else sigmoid(v)          # the paper's positive candidate function
    log g(v) = log(relu(v) + 1/2) if v >= 0 else -softplus(-v)
    mingru:  (k_z, k_h) = split(k, 2)                 # gate blocks in order z, h
             z = sigmoid(k_z);  a_t = 1 - z;  b_t = z * g(k_h)
             log a_t = -softplus(k_z);  log b_t = -softplus(-k_z) + log g(k_h)
    minlstm: (k_f, k_i, k_h) = split(k, 3)            # order f, i, h
             f = sigmoid(k_f), i = sigmoid(k_i);  a_t = f / (f + i);  b_t = i / (f + i) * g(k_h)
             d = softplus(-k_f) - softplus(-k_i)      # = log(i / f)
             log a_t = -softplus(d);  log b_t = -softplus(-d) + log g(k_h)

Two paths over the same parameters:

- ``parallel_scan`` (Heinsen 2023), all steps at once in log space, with h_0 = 0:
  A_t = sum_{s<=t} log a_s;  log h_t = A_t + logcumsumexp_t(log b_s - A_s);  h_t = exp(log h_t).
  The sums are reassociated: it differs from the step loop by round-off that grows with T
  (``tests/test_parallel_scan.py`` states and measures the bound).
- ``reference``: the step loop h_t = a_t * h_{t-1} + b_t in linear space.

Ragged batches: padded steps follow the valid ones and the recurrence is causal, so they can
never reach a valid step; inputs at padded steps are replaced by zero before the first layer
(so that garbage there is never exponentiated and gets exactly zero gradient), outputs there are
exactly zero, and the final state is h at each sequence's own last step.

- Layer l > 0 reads layer l-1's outputs, with dropout between layers in training only.
- ``final_states``: ``h`` (layers, B, H), each at the sequence's own length.
- Pooled features: the last layer's final h, (B, H).

Canonical parameters, per layer l: ``rnn.weight_ih_l{l}`` (G*H, in) and ``rnn.bias_ih_l{l}``
(G*H,), G = 2 (z, h) or 3 (f, i, h); then ``head.*``. There is no hidden-to-hidden matrix.
"""

from __future__ import annotations

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
)

MinCell = Literal["mingru", "minlstm"]
MIN_GATES: dict[str, int] = {"mingru": 2, "minlstm": 3}
MIN_GATE_NAMES: dict[str, tuple[str, ...]] = {"mingru": ("z", "h"), "minlstm": ("f", "i", "h")}
# Values a plain step loop keeps per step and layer for backward: the G pre-activations, the
# coefficients a and b, and h (the product a * h_{t-1} needs h_{t-1}).
STORED_PER_STEP: dict[str, int] = {"mingru": 2 + 3, "minlstm": 3 + 3}


@dataclass(frozen=True)
class MinRNNSpec(ArchSpec):
    """``mingru`` and ``minlstm``: stacked layers of width ``hidden_size`` and a linear head."""

    arch: str = "mingru"
    cell: MinCell = "mingru"
    input_size: int = 8
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0  # between layers, in training only
    head: HeadSpec = field(default_factory=HeadSpec)

    @classmethod
    def fields_for_size(cls, hidden: int) -> dict[str, int]:
        return {"hidden_size": hidden}

    def validate(self) -> None:
        if self.cell not in MIN_GATES:
            raise UserError("cell", f"unknown cell {self.cell!r}", "use mingru or minlstm")
        require_positive("input_size", self.input_size)
        require_positive("hidden_size", self.hidden_size)
        require_positive("num_layers", self.num_layers)
        require_probability("dropout", self.dropout)
        self.head.validate()

    @property
    def gates(self) -> int:
        return MIN_GATES[self.cell]

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def pooled_size(self) -> int:
        return self.hidden_size

    def layer_inputs(self) -> list[int]:
        return [self.input_size] + [self.hidden_size] * (self.num_layers - 1)

    def param_schema(self) -> dict[str, tuple[int, ...]]:
        g, h = self.gates, self.hidden_size
        schema: dict[str, tuple[int, ...]] = {}
        for layer, layer_in in enumerate(self.layer_inputs()):
            schema[f"rnn.weight_ih_l{layer}"] = (g * h, layer_in)
            schema[f"rnn.bias_ih_l{layer}"] = (g * h,)
        return {**schema, **head_schema(self.head, self.head_features())}

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """``nn.Linear``'s default per layer (U(-1/sqrt(in), 1/sqrt(in))), as the paper's code does."""
        rng = np.random.default_rng(seed)
        params: dict[str, np.ndarray] = {}
        for name, shape in self.param_schema().items():
            fan_in = self.layer_inputs()[int(name.rsplit("_l", 1)[1])] if name.startswith("rnn.") else None
            params[name] = linear_init(rng, shape, fan_in or self.head_features())
        return params

    def param_count(self) -> int:
        g, h = self.gates, self.hidden_size
        encoder = sum(g * h * (layer_in + 1) for layer_in in self.layer_inputs())
        return encoder + self.head.out_size * (self.head_features() + 1)

    def forward_flops(self, batch: int, seq_len: int) -> int:
        """The input projections (2 B T G H in per layer), as the recurrent family counts its matmuls.

        The scan's elementwise work, O(B T H) per layer (a cumulative sum, a log-cumsum-exp, a few
        exp/log/softplus), is left out by the same convention; there is no recurrent matmul at all.
        """
        g, h = self.gates, self.hidden_size
        matmuls = sum(2 * batch * seq_len * g * h * layer_in for layer_in in self.layer_inputs())
        return matmuls + head_flops(self.head, batch, seq_len, self.head_features())

    def stored_activations(self, batch: int, seq_len: int, attention_path: str = "reference") -> int:
        per_step = STORED_PER_STEP[self.cell] * self.hidden_size * self.num_layers
        return batch * seq_len * (self.input_size + per_step)
