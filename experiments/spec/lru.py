"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
Sequences"), stacked, unidirectional.

Each layer is a complex diagonal linear recurrence, so a parallel scan computes every step at once.
Semantics both backends implement (batch-first), width H = ``hidden_size``, state N = ``state_size``:

    e_t = W_enc x_t + b_enc                                   # (H,) the linear encoder, u^0 = e
    per layer l, on its input u_t (H,):
      lambda = exp(-exp(nu_log) + i exp(theta_log))           # (N,) complex, |lambda| = exp(-exp(nu_log)) < 1
      gamma  = exp(gamma_log)                                 # (N,) real, initially sqrt(1 - |lambda|^2)
      B = B_re + i B_im  (N, H),  C = C_re + i C_im  (H, N)
      x_t = lambda * x_{t-1} + gamma * (B u_t),  x_0 = 0      # (N,) complex, elementwise products
      y_t = Re(C x_t) + D * u_t = C_re Re(x_t) - C_im Im(x_t) + D * u_t     # (H,) real
      u_t <- u_t + W_mlp GELU(y_t) + b_mlp                    # the block: LRU, then an MLP, with a skip

The block is the paper's "LRU + MLP with a skip" at its simplest: one linear layer after an exact
(erf) GELU, added to the block's input, and no normalisation (the reference code's LayerNorm and
GLU are left out; one MLP keeps the block a residual map of the same width). ``dropout`` (training
only) drops GELU(y) before the MLP, in every layer. The parameters are real; the complex values
(lambda, B, C, x) are built inside, in complex128 for float64 and complex64 for float32. The
products B u and C x are real matmuls of the real and imaginary parts.

Two paths over the same parameters:

- ``parallel_scan``: the pairs (lambda^k, x) composed by the associative operator
  (a_1, b_1) . (a_2, b_2) = (a_2 a_1, a_2 b_1 + b_2), all steps in O(log T) rounds.
  It reassociates the sums: it differs from the step loop by round-off (``tests/test_parallel_scan.py``).
- ``reference``: the step loop x_t = lambda x_{t-1} + b_t.

Ragged batches: padded steps follow the valid ones and the recurrence is causal, so they can never
reach a valid step. Inputs at padded steps are replaced by zero before the encoder (garbage there
never enters any product and gets exactly zero gradient), every layer's outputs there are exactly
zero, and a final value is taken at each sequence's own last step (a gather from the outputs).

- ``final_states``: ``h`` (layers, B, H), each block's output at the sequence's last step (what the
  next layer and the head read; the complex state x itself, N wide, is internal).
- Pooled features: the last layer's output at the sequence's last step, (B, H).

Initialisation (the paper's, as its reference code): per layer, with u1, u2 ~ U(0, 1) (N,),
nu_log = log(-log(r_min^2 + u1 (r_max^2 - r_min^2)) / 2) (|lambda| uniform in area on the ring
[r_min, r_max]), theta_log = log(max_phase u2), gamma_log = log(sqrt(1 - |lambda|^2));
B_re, B_im ~ N(0, 1) / sqrt(2 H); C_re, C_im ~ N(0, 1) / sqrt(N); D ~ N(0, 1); the encoder and the
MLP as ``nn.Linear``'s default.

Canonical parameters: ``encoder.weight`` (H, in), ``encoder.bias`` (H,); per layer l
``layers.{l}.nu_log``, ``.theta_log``, ``.gamma_log`` (N,), ``.B_re``, ``.B_im`` (N, H), ``.C_re``,
``.C_im`` (H, N), ``.D`` (H,), ``.mlp.weight`` (H, H), ``.mlp.bias`` (H,); then ``head.*``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

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

# Values a plain step loop keeps per step and layer for backward: the layer input u (for B's and
# D's gradients), the complex state x (2N: C's gradient and lambda's, through x_{t-1}), y (GELU's
# input) and GELU(y) (the MLP weight's gradient).
STORED_PER_STEP_H, STORED_PER_STEP_N = 3, 2


@dataclass(frozen=True)
class LRUSpec(ArchSpec):
    """``lru``: a linear encoder, stacked LRU + MLP residual blocks of width ``hidden_size``, a linear head."""

    arch: str = "lru"
    input_size: int = 8
    hidden_size: int = 32
    state_size: int = 32  # N, complex
    num_layers: int = 1
    r_min: float = 0.0  # the ring |lambda| is drawn from at init (the reference code's defaults)
    r_max: float = 1.0
    max_phase: float = 6.28
    dropout: float = 0.0  # on GELU(y) before each block's MLP, in training only
    head: HeadSpec = field(default_factory=HeadSpec)

    # The init-only fields change init_params alone; the property tests draw these values.
    DRAW_OPTIONS: ClassVar[dict[str, tuple[Any, ...]]] = {
        "state_size": (1, 3),
        "r_min": (0.0, 0.9),
        "r_max": (0.999, 1.0),
        "max_phase": (6.28, math.pi / 10),
    }

    @classmethod
    def fields_for_size(cls, hidden: int) -> dict[str, int]:
        """A grid's ``hidden`` sets the width H and the state N = H."""
        return {"hidden_size": hidden, "state_size": hidden}

    def validate(self) -> None:
        require_positive("input_size", self.input_size)
        require_positive("hidden_size", self.hidden_size)
        require_positive("state_size", self.state_size)
        require_positive("num_layers", self.num_layers)
        require_probability("dropout", self.dropout)
        if not 0.0 <= self.r_min < self.r_max <= 1.0:
            raise UserError("r_min", f"need 0 <= r_min < r_max <= 1, got {self.r_min}, {self.r_max}")
        if not self.max_phase > 0.0:
            raise UserError("max_phase", f"must be positive, got {self.max_phase!r}")
        self.head.validate()

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def pooled_size(self) -> int:
        return self.hidden_size

    def layer_schema(self, layer: int) -> dict[str, tuple[int, ...]]:
        h, n = self.hidden_size, self.state_size
        shapes = {
            "nu_log": (n,),
            "theta_log": (n,),
            "gamma_log": (n,),
            "B_re": (n, h),
            "B_im": (n, h),
            "C_re": (h, n),
            "C_im": (h, n),
            "D": (h,),
            "mlp.weight": (h, h),
            "mlp.bias": (h,),
        }
        return {f"layers.{layer}.{name}": shape for name, shape in shapes.items()}

    def param_schema(self) -> dict[str, tuple[int, ...]]:
        schema = {"encoder.weight": (self.hidden_size, self.input_size), "encoder.bias": (self.hidden_size,)}
        for layer in range(self.num_layers):
            schema.update(self.layer_schema(layer))
        return {**schema, **head_schema(self.head, self.head_features())}

    def init_params(self, seed: int) -> dict[str, np.ndarray]:
        """The paper's init (module docstring), drawn in schema order."""
        rng = np.random.default_rng(seed)
        h, n = self.hidden_size, self.state_size
        params: dict[str, np.ndarray] = {}
        for name, shape in self.param_schema().items():
            kind = name.split(".", 2)[-1] if name.startswith("layers.") else name
            if kind == "nu_log":
                r2 = self.r_min**2 + rng.uniform(size=shape) * (self.r_max**2 - self.r_min**2)  # |lambda|^2
                params[name] = np.log(-0.5 * np.log(r2))
            elif kind == "theta_log":
                params[name] = np.log(self.max_phase * rng.uniform(size=shape))
            elif kind == "gamma_log":  # from this layer's nu_log, drawn just before
                modulus = np.exp(-np.exp(params[name.replace("gamma_log", "nu_log")]))  # |lambda|
                params[name] = np.log(np.sqrt(1.0 - modulus**2))
            elif kind in ("B_re", "B_im"):
                params[name] = rng.standard_normal(shape) / math.sqrt(2 * h)
            elif kind in ("C_re", "C_im"):
                params[name] = rng.standard_normal(shape) / math.sqrt(n)
            elif kind == "D":
                params[name] = rng.standard_normal(shape)
            else:  # encoder.*, layers.{l}.mlp.*, head.*: nn.Linear's default
                fan_in = {"encoder": self.input_size, "head": self.head_features()}.get(name.split(".")[0], h)
                params[name] = linear_init(rng, shape, fan_in)
        return params

    def param_count(self) -> int:
        h, n = self.hidden_size, self.state_size
        per_layer = 3 * n + 4 * n * h + h + h * (h + 1)
        encoder = h * (self.input_size + 1)
        return encoder + self.num_layers * per_layer + self.head.out_size * (self.head_features() + 1)

    def forward_flops(self, batch: int, seq_len: int) -> int:
        """The matmuls, as the recurrent family counts them: the encoder (2 B T H in), and per layer
        B u (real and imaginary parts: 2 B T 2N H), C x (2 B T H 2N) and the MLP (2 B T H H).

        The elementwise work, O(B T N) per layer (the recurrence's complex multiply-adds, O(log T)
        times that in the scan, GELU, the skip), is left out by the same convention."""
        h, n = self.hidden_size, self.state_size
        per_layer = 2 * 2 * n * h + 2 * h * 2 * n + 2 * h * h
        matmuls = batch * seq_len * (2 * h * self.input_size + self.num_layers * per_layer)
        return matmuls + head_flops(self.head, batch, seq_len, self.head_features())

    def stored_activations(self, batch: int, seq_len: int, attention_path: str = "reference") -> int:
        per_step = (STORED_PER_STEP_H * self.hidden_size + STORED_PER_STEP_N * self.state_size) * self.num_layers
        return batch * seq_len * (self.input_size + per_step)
