"""Optimizer settings both backends honour with the same update rule.

Equivalences (DESIGN.md traps):
- ``adam``: torch ``Adam(lr, betas, eps)`` = optax ``adam(lr, b1, b2, eps=eps, eps_root=0)``;
  ``weight_decay`` is coupled L2 (added to the gradient), as torch's ``Adam`` does.
- ``adamw``: decoupled decay; torch ``AdamW(weight_decay=wd)`` = optax ``adamw(weight_decay=wd)``.
  The default is torch's 1e-2 (optax's is 1e-4): always passed explicitly.
- ``sgd``: torch ``SGD(lr, momentum)`` = optax ``sgd(lr, momentum)`` (buffer starts at the first gradient).
- ``clip_norm``: global-norm clipping done the torch way on both sides:
  g *= min(1, clip_norm / (||g|| + 1e-6)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from experiments.errors import UserError

OptimizerName = Literal["sgd", "adam", "adamw"]
CLIP_EPS = 1e-6


@dataclass(frozen=True)
class OptimizerSpec:
    name: OptimizerName = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    clip_norm: float | None = None

    def validate(self) -> None:
        if self.name not in ("sgd", "adam", "adamw"):
            raise UserError("optimizer.name", f"unknown optimizer {self.name!r}", "use sgd, adam or adamw")
        if not self.lr > 0:
            raise UserError("optimizer.lr", f"must be > 0, got {self.lr!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise UserError("optimizer.clip_norm", f"must be > 0 or unset, got {self.clip_norm!r}")
