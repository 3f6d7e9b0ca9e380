"""Optimizers (optax) set up to match torch's update rules, and the jitted training step.

- ``adam``: ``optax.adam(lr, b1, b2, eps=eps, eps_root=0.0)``; a weight decay is torch's
  coupled L2: ``chain(add_decayed_weights(wd), adam)`` (the decay is added to the gradient).
- ``adamw``: ``optax.adamw(..., weight_decay=wd)``, always passed explicitly (optax's
  default 1e-4 is not torch's 1e-2).
- ``sgd``: ``optax.sgd(lr, momentum or None)``; coupled weight decay as for adam.
- ``clip_norm``: torch's ``clip_grad_norm_`` on the raw gradients, before any decay:
  g *= min(1, c / (||g|| + 1e-6)) (not ``optax.clip_by_global_norm``, which divides by ||g||).

The training step is one ``jax.jit`` over a pure function of the flat parameter dict
and the optimizer state, both donated, so that no Python runs per step beyond the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.spec import OptimizerSpec
from experiments.spec.optim import CLIP_EPS
from jax_impl.layers import Params, head_loss, step_mask


def torch_clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """torch's ``clip_grad_norm_``: scale by min(1, max_norm / (||g|| + 1e-6))."""

    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]:
        del params
        norm = optax.tree.norm(updates)
        coef = jnp.minimum(1.0, max_norm / (norm + CLIP_EPS))
        return jax.tree.map(lambda g: g * coef.astype(g.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(spec: OptimizerSpec) -> optax.GradientTransformation:
    spec.validate()
    parts: list[optax.GradientTransformation] = []
    if spec.clip_norm is not None:
        parts.append(torch_clip_by_global_norm(float(spec.clip_norm)))
    if spec.name == "adam":
        if spec.weight_decay:
            parts.append(optax.add_decayed_weights(spec.weight_decay))
        parts.append(optax.adam(spec.lr, b1=spec.beta1, b2=spec.beta2, eps=spec.eps, eps_root=0.0))
    elif spec.name == "adamw":
        parts.append(
            optax.adamw(
                spec.lr, b1=spec.beta1, b2=spec.beta2, eps=spec.eps, eps_root=0.0, weight_decay=spec.weight_decay
            )
        )
    elif spec.name == "sgd":
        if spec.weight_decay:
            parts.append(optax.add_decayed_weights(spec.weight_decay))
        parts.append(optax.sgd(spec.lr, momentum=spec.momentum or None))
    else:  # validate() already refused it
        raise ValueError(spec.name)
    return parts[0] if len(parts) == 1 else optax.chain(*parts)


def make_loss_fn(model: Any, *, train: bool):
    """``loss(params, x, lengths, y, key)`` of a model's head, a pure function."""
    forward = model.pure(train=train)
    head = model.spec.head

    def loss_fn(params: Params, x: jax.Array, lengths: jax.Array, y: jax.Array, key: jax.Array | None) -> jax.Array:
        out = forward(params, x, lengths, key)
        return head_loss(head, out["logits"], y, step_mask(lengths, x.shape[1]))

    return loss_fn


_STEP_FNS: dict[tuple, Any] = {}


def make_step_fn(model: Any, optimizer: OptimizerSpec):
    """One jitted step ``(params, opt_state, step, key, x, lengths, y) -> (params, opt_state, step + 1, loss)``,
    one per model configuration and optimizer in a process (so a second train state reuses its compile)."""
    cache_key = (*model.static_key(), model.device, optimizer)
    if cache_key not in _STEP_FNS:
        _STEP_FNS[cache_key] = _build_step_fn(model, make_optimizer(optimizer))
    return _STEP_FNS[cache_key]


def _build_step_fn(model: Any, tx: optax.GradientTransformation):
    loss_fn = make_loss_fn(model, train=True)

    def step_fn(params, opt_state, step, key, x, lengths, y):
        dropout_key = jax.random.fold_in(key, step)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, lengths, y, dropout_key)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, step + 1, loss

    return jax.jit(step_fn, donate_argnums=(0, 1))


@dataclass
class TrainState:
    """What ``train_step`` advances: parameters, optimizer state, step counter, dropout key."""

    model: Any
    optimizer: OptimizerSpec
    params: Params
    opt_state: Any
    step: jax.Array
    key: jax.Array
    step_fn: Any = field(repr=False)
    last: Any = None
    mesh: Any = None  # a Mesh over the host's CPU devices when the step is data parallel, else None


# Data parallel over the CPU's cores. XLA:CPU runs a recurrent step on one core (the same time
# under `taskset -c 0`), while torch's oneDNN RNN uses them all. A worker started with
# `--xla_force_host_platform_device_count=N` (experiments/worker.py) has N CPU devices; the
# training step then replicates the parameters and splits the batch over them (the same mean
# loss and gradients, summed over the shards by XLA), and the step runs on N cores. Measured:
# LSTM B32 T100 H128 fwd+bwd 13.1 -> 11.2 ms on 2 cores. A batch that does not split evenly runs
# replicated (every device the whole batch), as fast as one device. Forward passes, gradients
# for verification and evaluation stay on device 0.
BATCH_AXIS = "batch"


def cpu_mesh(model: Any) -> Any:
    """A 1-D mesh over the host's CPU devices for a CPU model, or None where there is one device."""
    if model.device != "cpu":
        return None
    devices = jax.devices("cpu")
    if len(devices) < 2:
        return None
    from jax.sharding import Mesh

    return Mesh(np.array(devices), (BATCH_AXIS,))


def batch_sharding(mesh: Any, batch_size: int) -> Any:
    """Split the batch axis over the mesh, or replicate it where it does not split evenly."""
    from jax.sharding import NamedSharding, PartitionSpec

    split = batch_size % mesh.devices.size == 0
    return NamedSharding(mesh, PartitionSpec(BATCH_AXIS) if split else PartitionSpec())


def data_parallel_degree(state: TrainState, batch_size: int) -> int:
    """How many devices share a batch of this size in ``state``'s step (1: not data parallel)."""
    if state.mesh is None or batch_size % state.mesh.devices.size:
        return 1
    return int(state.mesh.devices.size)


def make_train_state(model: Any, optimizer: OptimizerSpec, params: Params, seed: int = 0) -> TrainState:
    tx = make_optimizer(optimizer)
    params = jax.tree.map(jnp.copy, params)  # donated each step: never the model's own buffers
    step, key = jnp.zeros((), jnp.int32), jax.random.key(seed)
    mesh = cpu_mesh(model)
    if mesh is not None:  # replicated on every device; the step's sharding follows its inputs
        from jax.sharding import NamedSharding, PartitionSpec

        params, step, key = jax.device_put((params, step, key), NamedSharding(mesh, PartitionSpec()))
    return TrainState(
        model=model,
        optimizer=optimizer,
        params=params,
        opt_state=tx.init(params),
        step=step,
        key=key,
        step_fn=make_step_fn(model, optimizer),
        mesh=mesh,
    )
