"""minGRU and minLSTM, stacked: the math of ``experiments/spec/minrnn.py``.

Two paths over the same parameters (``rnn.weight_ih_l{l}``, ``rnn.bias_ih_l{l}``, ``head.*``):

- ``parallel_scan`` (``auto`` and ``on``): every step at once in log space (Heinsen 2023),
  ``torch.cumsum`` and ``torch.logcumsumexp`` over time, a handful of kernels per layer whatever T.
- ``reference`` (``off``): the step loop h_t = a_t * h_{t-1} + b_t, one Python step per time step.

There is no fused vendor kernel for these cells, so ``on`` always holds (nothing can refuse it)
and ``auto`` is ``on``; ``off`` and ``reference`` are the loop. ``execution_path()`` names the
one that runs. ``extras`` is empty: the gates are a linear function of the input, not a state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from experiments.spec.minrnn import MinRNNSpec
from torch_impl.layers import Output, SequenceModel, check_path, last_step, make_head

EXECUTION_PATHS = ("parallel_scan", "reference")  # what ``execution_path`` names


def resolve_path(path: str) -> str:
    """``auto``/``on``/``parallel_scan`` -> parallel_scan; ``off``/``reference`` -> reference."""
    check_path(path, EXECUTION_PATHS)
    return "reference" if path in ("off", "reference") else "parallel_scan"


def log_g(v: torch.Tensor) -> torch.Tensor:
    """log of the paper's positive candidate g: log(v + 1/2) for v >= 0, log sigmoid(v) below.
    ``relu`` keeps the unused branch finite, so its gradient through ``where`` is zero, not NaN."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def log_coefficients(cell: str, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k (B, T, G*H) pre-activations -> (log a, log b), each (B, T, H), by the spec's formulas."""
    if cell == "mingru":
        k_z, k_h = k.chunk(2, dim=-1)
        return -F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h)
    k_f, k_i, k_h = k.chunk(3, dim=-1)
    d = F.softplus(-k_f) - F.softplus(-k_i)  # log(i / f)
    return -F.softplus(d), -F.softplus(-d) + log_g(k_h)


def g(v: torch.Tensor) -> torch.Tensor:
    """The paper's g in linear space: v + 1/2 for v >= 0, sigmoid(v) below."""
    return torch.where(v >= 0, F.relu(v) + 0.5, torch.sigmoid(v))


def coefficients(cell: str, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b), each (B, T, H), in linear space: what the step loop multiplies and adds."""
    if cell == "mingru":
        k_z, k_h = k.chunk(2, dim=-1)
        z = torch.sigmoid(k_z)
        return 1.0 - z, z * g(k_h)
    k_f, k_i, k_h = k.chunk(3, dim=-1)
    f, i = torch.sigmoid(k_f), torch.sigmoid(k_i)
    return f / (f + i), i / (f + i) * g(k_h)


def parallel_scan(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t from h_0 = 0 for all t at once, from log a, log b (B, T, H): (B, T, H)."""
    a_star = torch.cumsum(log_a, dim=1)  # (B, T, H): log of prod_{s<=t} a_s
    log_h = a_star + torch.logcumsumexp(log_b - a_star, dim=1)  # (B, T, H)
    return torch.exp(log_h)


def step_loop(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The same recurrence one step at a time (the reference): (B, T, H)."""
    h = torch.zeros_like(b[:, 0])  # (B, H)
    outs = []
    for t in range(b.shape[1]):
        h = a[:, t] * h + b[:, t]
        outs.append(h)
    return torch.stack(outs, dim=1)


class MinRNNParams(nn.Module):
    """Per layer l: ``weight_ih_l{l}`` (G*H, in) and ``bias_ih_l{l}`` (G*H,), as the schema names them."""

    def __init__(self, spec: MinRNNSpec) -> None:
        super().__init__()
        for name, shape in spec.param_schema().items():
            if name.startswith("rnn."):
                self.register_parameter(name.removeprefix("rnn."), nn.Parameter(torch.zeros(shape)))


class MinRNNModel(SequenceModel):
    """``mingru`` / ``minlstm``: stacked minimal recurrences under ``rnn`` and a linear ``head``."""

    def __init__(self, spec: MinRNNSpec, path: str = "auto") -> None:
        super().__init__(spec, path)
        self.resolved = resolve_path(path)
        self.rnn = MinRNNParams(spec)
        self.head = make_head(spec)

    def execution_path(self) -> str:
        return self.resolved

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        return_extras: bool = False,
    ) -> Output:
        """``lengths`` (B,) int64 on the CPU or None (all full); ``mask`` (B, T) True at valid steps."""
        spec = self.spec
        valid = None if mask is None else mask[..., None]  # (B, T, 1)
        u = x if valid is None else torch.where(valid, x, 0.0)  # garbage at padded steps never reaches exp
        finals = []
        for layer in range(spec.num_layers):
            if layer > 0 and spec.dropout > 0 and self.training:
                u = F.dropout(u, spec.dropout, training=True)
            k = F.linear(u, getattr(self.rnn, f"weight_ih_l{layer}"), getattr(self.rnn, f"bias_ih_l{layer}"))
            if self.resolved == "parallel_scan":
                h = parallel_scan(*log_coefficients(spec.cell, k))  # (B, T, H)
            else:
                h = step_loop(*coefficients(spec.cell, k))  # (B, T, H)
            u = h if valid is None else torch.where(valid, h, 0.0)  # (B, T, H), zero at padded steps
            finals.append(last_step(u, lengths))
        h_n = torch.stack(finals)  # (L, B, H)
        pooled = h_n[-1]  # (B, H)
        logits = self.head(u if spec.head.per_step else pooled)
        return Output(u, pooled, logits, h_n, None, {})
