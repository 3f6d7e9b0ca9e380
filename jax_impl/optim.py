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

``torch_impl/optim.py`` has the same public names (``make_optimizer``, ``TrainState``,
``make_train_state``, ``train_step``); the loss function and the data-parallel placement are jax only.
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
from jax_impl.layers import DeviceBatch, Params, SequenceModel, head_loss, param_arrays, valid_mask


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


def make_loss_fn(model: SequenceModel, *, train: bool) -> Any:
    """``loss(params, x, lengths, y, key)`` of a model's head, a pure function."""
    forward = model.pure(train=train)
    head = model.spec.head

    def loss_fn(params: Params, x: jax.Array, lengths: jax.Array, y: jax.Array, key: jax.Array | None) -> jax.Array:
        out = forward(params, x, lengths, key)
        return head_loss(head, out["logits"], y, valid_mask(lengths, x.shape[1]))

    return loss_fn


_STEP_FNS: dict[tuple, Any] = {}


def make_step_fn(model: SequenceModel, optimizer: OptimizerSpec) -> Any:
    """One jitted step ``(params, opt_state, step, key, x, lengths, y) -> (params, opt_state, step + 1, loss)``,
    one per model configuration and optimizer in a process (so a second train state reuses its compile)."""
    cache_key = (*model.static_key(), model.device, optimizer)
    if cache_key not in _STEP_FNS:
        _STEP_FNS[cache_key] = _build_step_fn(model, make_optimizer(optimizer))
    return _STEP_FNS[cache_key]


def _build_step_fn(model: SequenceModel, tx: optax.GradientTransformation) -> Any:
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

    model: SequenceModel
    optimizer: OptimizerSpec
    params: Params
    opt_state: Any
    step: jax.Array
    key: jax.Array
    step_fn: Any = field(repr=False)
    mesh: Any = None  # a Mesh over the host's CPU devices when the step is data parallel, else None
    placed: bool = False  # whether the first batch has decided ``mesh`` (``place_batch``)


# Data parallel over the CPU's cores: XLA:CPU runs a small recurrent step on one core, while torch's
# oneDNN RNN uses them all. A worker started with `--xla_force_host_platform_device_count=N`
# (experiments/run/worker.py) has N CPU devices; a small enough training step then replicates the
# parameters and splits the batch over them (the same mean loss; XLA sums the shards' gradients).
# Large steps do not gain (XLA already spreads their matmuls), so the step is split only when its
# analytic FLOPs per time step (spec.train_step_flops / T) are at most this, the measured crossover
# (benchmarks/NOTES.md), and the batch divides evenly. The choice is made on the first batch
# (``place_batch``), as the batch size is not known before.
DATA_PARALLEL_MAX_FLOPS_PER_STEP = 100e6
BATCH_AXIS = "batch"


def data_parallel_mesh(model: SequenceModel, batch_size: int, seq_len: int) -> Any:
    """A 1-D mesh over the host's CPU devices when a step of this size gains from splitting, else None."""
    devices = jax.devices("cpu") if model.device == "cpu" else []
    if len(devices) < 2 or batch_size % len(devices):
        return None
    if model.spec.train_step_flops(batch_size, seq_len) / seq_len > DATA_PARALLEL_MAX_FLOPS_PER_STEP:
        return None
    from jax.sharding import Mesh

    return Mesh(np.array(devices), (BATCH_AXIS,))


def place_batch(state: TrainState, arrays: DeviceBatch) -> DeviceBatch:
    """The batch (x first, batch-major) placed for ``state``'s step; on the first call, decide whether
    the step is data parallel and if so replicate the state over the mesh."""
    from jax.sharding import NamedSharding, PartitionSpec

    if not state.placed:
        state.placed = True
        batch_size, seq_len = int(arrays[0].shape[0]), int(arrays[0].shape[1])
        state.mesh = data_parallel_mesh(state.model, batch_size, seq_len)
        if state.mesh is not None:
            replicated = NamedSharding(state.mesh, PartitionSpec())
            state.params, state.opt_state, state.step, state.key = jax.device_put(
                (state.params, state.opt_state, state.step, state.key), replicated
            )
    if state.mesh is None:
        return arrays
    return jax.device_put(arrays, NamedSharding(state.mesh, PartitionSpec(BATCH_AXIS)))


def make_train_state(model: SequenceModel, optimizer: OptimizerSpec, *, seed: int = 0) -> TrainState:
    """``seed`` keys the dropout stream of the steps that follow."""
    tx = make_optimizer(optimizer)
    params = jax.tree.map(jnp.copy, param_arrays(model))  # donated each step: never the model's own buffers
    return TrainState(
        model=model,
        optimizer=optimizer,
        params=params,
        opt_state=tx.init(params),
        step=jnp.zeros((), jnp.int32),
        key=jax.random.key(seed),
        step_fn=make_step_fn(model, optimizer),
    )


def train_step(state: TrainState, batch: DeviceBatch) -> jax.Array:
    """One optimizer step in train mode; the loss as a device scalar, not waited on."""
    state.params, state.opt_state, state.step, loss = state.step_fn(
        state.params, state.opt_state, state.step, state.key, *batch
    )
    return loss
