"""Train state: the optimizers of ``experiments/spec/optim.py`` and global-norm clipping, the torch way.

A train step does exactly what a hand-written torch loop does (zero_grad(set_to_none),
forward, loss, backward, clip_grad_norm_, step) and returns the loss tensor without
reading it, so the device is never waited on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from experiments.spec import HeadSpec, OptimizerSpec
from torch_impl.layers import head_loss


def make_optimizer(params: list[nn.Parameter], spec: OptimizerSpec) -> torch.optim.Optimizer:
    spec.validate()
    betas = (spec.beta1, spec.beta2)
    if spec.name == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay)
    if spec.name == "adam":  # weight_decay: coupled L2, added to the gradient
        return torch.optim.Adam(params, lr=spec.lr, betas=betas, eps=spec.eps, weight_decay=spec.weight_decay)
    # adamw: decoupled decay, always passed explicitly (torch's default 1e-2 is not optax's 1e-4)
    return torch.optim.AdamW(params, lr=spec.lr, betas=betas, eps=spec.eps, weight_decay=spec.weight_decay)


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    params: list[nn.Parameter]
    head: HeadSpec
    clip_norm: float | None
    spec: OptimizerSpec


def make_train_state(model: nn.Module, spec: OptimizerSpec) -> TrainState:
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    return TrainState(model, make_optimizer(params, spec), params, model.spec.head, spec.clip_norm, spec)


def train_step(
    state: TrainState, x: torch.Tensor, lengths: torch.Tensor | None, mask: torch.Tensor | None, y: torch.Tensor
) -> torch.Tensor:
    model = state.model
    if not model.training:
        model.train()
    state.optimizer.zero_grad(set_to_none=True)
    out = model(x, lengths, mask)
    loss = head_loss(state.head, out.logits, y, mask)
    loss.backward()
    if state.clip_norm is not None:
        # g *= min(1, clip_norm / (||g|| + 1e-6)), on the device, without a sync
        torch.nn.utils.clip_grad_norm_(state.params, state.clip_norm)
    state.optimizer.step()
    return loss.detach()
