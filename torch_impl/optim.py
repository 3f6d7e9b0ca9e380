"""Train state and train step: the optimizers of ``experiments/spec/optim.py`` and global-norm clipping,
the torch way. ``jax_impl/optim.py`` has the same public names (``make_optimizer``, ``TrainState``,
``make_train_state``, ``train_step``).

A train step does exactly what a hand-written torch loop does (zero_grad(set_to_none),
forward, loss, backward, clip_grad_norm_, step) and returns the loss tensor without
reading it, so the device is never waited on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from experiments.spec import OptimizerSpec
from torch_impl.layers import DeviceBatch, SequenceModel, head_loss


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
    """What ``train_step`` advances: the model's own parameters, through torch's optimizer object
    (which holds the moment buffers)."""

    model: SequenceModel
    optimizer: OptimizerSpec
    params: list[nn.Parameter]
    torch_optimizer: torch.optim.Optimizer


def make_train_state(model: SequenceModel, optimizer: OptimizerSpec, *, seed: int = 0) -> TrainState:
    """Seeds torch's generators with ``seed``: the dropout stream of the steps that follow."""
    torch.manual_seed(seed)
    if model.head.weight.is_cuda:
        torch.cuda.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    return TrainState(model, optimizer, params, make_optimizer(params, optimizer))


def train_step(state: TrainState, batch: DeviceBatch) -> torch.Tensor:
    """One optimizer step in train mode; the loss as a device scalar, not read."""
    model = state.model
    if not model.training:
        model.train()
    state.torch_optimizer.zero_grad(set_to_none=True)
    out = model(batch.x, batch.lengths, batch.mask)
    loss = head_loss(model.spec.head, out.logits, batch.y, batch.mask)
    loss.backward()
    clip = state.optimizer.clip_norm
    if clip is not None:
        # g *= min(1, clip_norm / (||g|| + 1e-6)), on the device, without a sync
        torch.nn.utils.clip_grad_norm_(state.params, clip)
    state.torch_optimizer.step()
    return loss.detach()
