"""The LRU, stacked: the math of ``experiments/spec/lru.py``.

Two paths over the same parameters (``encoder.*``, ``layers.{l}.*``, ``head.*``):

- ``parallel_scan`` (``auto`` and ``on``): the recurrence x_t = lambda x_{t-1} + b_t for every t at
  once, a Hillis-Steele scan over the time axis in ceil(log2 T) tensor steps (no loop over T).
- ``reference`` (``off``): the step loop, one Python step per time step.

There is no fused vendor kernel for the LRU, so ``on`` always holds (nothing can refuse it) and
``auto`` is ``on``; ``off`` and ``reference`` are the loop. ``execution_path()`` names the one
that runs. ``extras`` is empty. The parameters are real; lambda, B, C and the state are complex
(complex128 for float64, complex64 for float32), built inside ``forward``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from experiments.spec.lru import LRUSpec
from torch_impl.layers import Output, SequenceModel, check_path, last_step, make_head

EXECUTION_PATHS = ("parallel_scan", "reference")  # what ``execution_path`` names


def resolve_path(path: str) -> str:
    """``auto``/``on``/``parallel_scan`` -> parallel_scan; ``off``/``reference`` -> reference."""
    check_path(path, EXECUTION_PATHS)
    return "reference" if path in ("off", "reference") else "parallel_scan"


def parallel_scan(lam: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x_t = lam x_{t-1} + b_t from x_0 = 0 for all t at once: lam (N,), b (B, T, N) -> (B, T, N).

    Hillis-Steele over the pairs (lam^k, x): after the round of offset d, step t holds the
    composition of steps t-2d+1..t. lambda is the same at every step, so the pair's first part
    is lam^d wherever a round combines (t >= d): it is carried as one power, squared each round.
    At least one round runs (an empty one at T = 1), so that lam is in the graph and gets a zero
    gradient, not None (torch's optimizers skip a None gradient, weight decay included; optax does not)."""
    x, power = b, lam
    for j in range(max(1, (b.shape[1] - 1).bit_length())):  # ceil(log2 T) rounds
        d = 2**j
        x = torch.cat([x[:, :d], x[:, d:] + power * x[:, :-d]], dim=1)  # (B, T, N)
        power = power * power  # lam^(2d)
    return x


def step_loop(lam: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The same recurrence one step at a time (the reference): (B, T, N)."""
    x = torch.zeros_like(b[:, 0])  # (B, N)
    outs = []
    for t in range(b.shape[1]):
        x = lam * x + b[:, t]
        outs.append(x)
    return torch.stack(outs, dim=1)


class LRULayer(nn.Module):
    """One block's parameters, at the schema's names (``layers.{l}.nu_log``, ..., ``layers.{l}.mlp.*``)."""

    def __init__(self, spec: LRUSpec) -> None:
        super().__init__()
        for name, shape in spec.layer_schema(0).items():
            if not name.startswith("layers.0.mlp."):
                self.register_parameter(name.removeprefix("layers.0."), nn.Parameter(torch.zeros(shape)))
        self.mlp = nn.Linear(spec.hidden_size, spec.hidden_size)

    def coefficients(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """lambda (N,) and b = gamma * (B u) (B, T, N), complex; u (B, T, H) real."""
        modulus = torch.exp(-torch.exp(self.nu_log))  # (N,) |lambda|
        phase = torch.exp(self.theta_log)  # (N,)
        lam = torch.complex(modulus * torch.cos(phase), modulus * torch.sin(phase))  # (N,)
        gamma = torch.exp(self.gamma_log)[:, None]  # (N, 1)
        b = torch.complex(F.linear(u, self.B_re * gamma), F.linear(u, self.B_im * gamma))  # (B, T, N)
        return lam, b

    def readout(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """y = Re(C x) + D * u: (B, T, H)."""
        return F.linear(x.real, self.C_re) - F.linear(x.imag, self.C_im) + self.D * u


class LRUModel(SequenceModel):
    """``lru``: a linear ``encoder``, LRU + MLP residual blocks under ``layers`` and a linear ``head``."""

    def __init__(self, spec: LRUSpec, path: str = "auto") -> None:
        super().__init__(spec, path)
        self.resolved = resolve_path(path)
        self.encoder = nn.Linear(spec.input_size, spec.hidden_size)
        self.layers = nn.ModuleList([LRULayer(spec) for _ in range(spec.num_layers)])
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
        x = x if valid is None else torch.where(valid, x, 0.0)  # garbage at padded steps enters no product
        u = self.encoder(x)  # (B, T, H)
        u = u if valid is None else torch.where(valid, u, 0.0)
        finals = []
        for layer in self.layers:
            lam, b = layer.coefficients(u)  # (N,), (B, T, N)
            if self.resolved == "parallel_scan":
                states = parallel_scan(lam, b)  # (B, T, N) complex
            else:
                states = step_loop(lam, b)  # (B, T, N) complex
            z = F.gelu(layer.readout(states, u))  # (B, T, H), exact (erf) GELU
            if spec.dropout > 0 and self.training:
                z = F.dropout(z, spec.dropout, training=True)
            u = u + layer.mlp(z)  # (B, T, H), the skip
            u = u if valid is None else torch.where(valid, u, 0.0)  # zero at padded steps
            finals.append(last_step(u, lengths))
        h_n = torch.stack(finals)  # (L, B, H)
        pooled = h_n[-1]  # (B, H)
        logits = self.head(u if spec.head.per_step else pooled)
        return Output(u, pooled, logits, h_n, None, {})
