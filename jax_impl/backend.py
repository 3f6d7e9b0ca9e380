"""The JAX backend object: ``experiments.backend.Backend`` over the NNX models of ``jax_impl``.

Arrays cross the seam as NumPy, batch-first, canonical (torch) parameter names.
Every computation runs as a ``jax.jit`` of a pure function of the flat parameter dict,
cached per model configuration, traced under the precision's matmul setting
(float32: ``highest``, true IEEE float32; tf32: ``default``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.backend import (
    Batch,
    Device,
    ForwardResult,
    Gradients,
    PathChoice,
    Precision,
    available_cores,
    cpu_name,
    time_repeats,
)
from experiments.errors import UserError
from experiments.spec import ArchSpec, OptimizerSpec
from jax_impl import optim
from jax_impl.layers import (
    MATMUL_PRECISION,
    DeviceBatch,
    SequenceModel,
    export_params,
    matmul_precision,
    param_arrays,
    precision_dtype,
    resolve_device,
    to_numpy,
)


def _flushes_subnormals(dev: Any) -> bool:
    """Whether XLA flushes float32 subnormals to zero on ``dev`` (XLA:CPU does; measured, not assumed):
    1e-36 x 1e-3 is 1e-39, a subnormal, or 0 where flushed."""
    x = jax.device_put(jnp.float32(1e-36), dev)
    return bool(jax.jit(lambda a: a * jnp.float32(1e-3))(x) == 0)


def _model_of(state_or_model: Any) -> SequenceModel:
    return state_or_model.model if isinstance(state_or_model, optim.TrainState) else state_or_model


def _no_key(loss_fn: Any) -> Any:
    """``loss(params, x, lengths, y)``: the loss with dropout off (no key)."""
    return lambda p, x, n, y: loss_fn(p, x, n, y, None)


def _buffer_key(a: jax.Array) -> Any:
    """One key per device buffer: its address where jax gives one, else the array's identity."""
    try:
        return ("ptr", a.unsafe_buffer_pointer())
    except (ValueError, RuntimeError):  # a sharded array (ValueError), a runtime without the call: identity
        return ("id", id(a))


class JaxBackend:
    name = "jax"

    def __init__(self, models: dict[str, type[SequenceModel]]) -> None:
        self.models = models
        self._jit: dict[tuple, Any] = {}
        self._last: Any = None
        self._mem_at_reset: dict[str, tuple[int, int]] = {}

    def numerics(self) -> contextlib.AbstractContextManager[None]:
        """The floating-point mode a cell runs in: XLA:CPU already flushes float32 subnormals to
        zero (``describe`` measures it), so there is nothing to set; torch's twin sets it."""
        return contextlib.nullcontext()

    # -- models ------------------------------------------------------------------
    def build(
        self,
        spec: ArchSpec,
        params: dict[str, np.ndarray],
        *,
        precision: Precision = "float32",
        device: Device = "cpu",
        path: PathChoice | str = "auto",
    ) -> SequenceModel:
        """A model holding exactly ``params`` cast to the precision's dtype.

        ``path``: ``auto | on | off`` (the protocol's switch), or a path by name
        (``EXECUTION_PATHS`` of the model's file). See each model file.
        """
        if spec.arch not in self.models:
            raise UserError("arch", f"unknown architecture {spec.arch!r}", f"use one of {', '.join(self.models)}")
        spec.validate()
        dev = resolve_device(device)
        with jax.default_device(dev):
            return self.models[spec.arch](spec, params, precision=precision, path=path, device=device)

    def export_params(self, model: SequenceModel) -> dict[str, np.ndarray]:
        return export_params(model)

    def execution_path(self, model: SequenceModel) -> str:
        return model.execution_path()

    # -- jitted pure functions -----------------------------------------------------
    def _cached(self, model: Any, kind: str, build: Any) -> Any:
        key = (*model.static_key(), model.device, kind)
        if key not in self._jit:
            self._jit[key] = build()
        return self._jit[key]

    def _inputs(self, model: Any, batch: Batch) -> tuple[jax.Array, jax.Array]:
        dev = resolve_device(model.device)
        dtype = precision_dtype(model.precision)
        x = jax.device_put(jnp.asarray(batch.x, dtype=dtype), dev)
        lengths = jax.device_put(jnp.asarray(batch.lengths, dtype=jnp.int32), dev)
        return x, lengths

    def _targets(self, model: Any, batch: Batch) -> jax.Array:
        if batch.y is None:
            raise ValueError("this batch has no targets")
        dev = resolve_device(model.device)
        if model.spec.head.is_classification:
            return jax.device_put(jnp.asarray(batch.y, dtype=jnp.int32), dev)
        return jax.device_put(jnp.asarray(batch.y, dtype=precision_dtype(model.precision)), dev)

    def forward(
        self, model: Any, batch: Batch, *, train: bool = False, seed: int = 0, return_extras: bool = False
    ) -> ForwardResult:
        # extras always computed (cheap beside a second compile per model), dropped when not asked for
        fn = self._cached(model, f"forward:{train}", lambda: jax.jit(model.pure(train=train, return_extras=True)))
        x, lengths = self._inputs(model, batch)
        key = jax.random.key(seed) if train else None
        out = fn(param_arrays(model), x, lengths, key)
        self._last = out
        out = to_numpy(out)
        extras = {k: v for k, v in out["extras"].items() if v is not None} if return_extras else {}
        final = {k: v for k, v in out["final_states"].items() if v is not None}
        return ForwardResult(
            outputs=out["outputs"], pooled=out["pooled"], logits=out["logits"], final_states=final, extras=extras
        )

    def loss_and_grads(self, model: Any, batch: Batch) -> Gradients:
        def build() -> Any:
            loss_fn = _no_key(optim.make_loss_fn(model, train=False))
            return jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1)))

        fn = self._cached(model, "loss_and_grads", build)
        x, lengths = self._inputs(model, batch)
        loss, (g_params, g_x) = fn(param_arrays(model), x, lengths, self._targets(model, batch))
        self._last = loss
        return Gradients(loss=float(loss), params=to_numpy(g_params), inputs=np.asarray(g_x))

    def saved_bytes(self, model: Any, batch: Batch) -> dict[str, int]:
        """Bytes the backward pass of the head's loss w.r.t. the parameters keeps (dropout off,
        as in ``loss_and_grads``): the residuals of ``jax.vjp`` of the jitted loss, i.e. the
        leaves of the returned ``vjp_fn``, on the model's own execution path (the scan path's
        custom VJP keeps what its ``fwd`` returns; the reference path what JAX's partial
        evaluation of the plain scan keeps).

        Each buffer counts once (by ``unsafe_buffer_pointer``, else by identity). Leaves that
        are the parameter arrays go to ``saved_param_bytes``; everything else, the input ``x``
        included when it is a residual (``saved_input_bytes`` says how much of it), integer
        masks and lengths too, goes to ``saved_bytes``. The jitted training step may fuse or
        recompute some of these inside XLA: this is the set partial evaluation hands the
        backward pass, the quantity torch's saved-tensor hooks count.
        """
        if batch.y is None:
            raise UserError("batch.y", "saved_bytes needs targets")
        loss_fn = self._cached(model, "loss", lambda: jax.jit(_no_key(optim.make_loss_fn(model, train=False))))
        x, lengths = self._inputs(model, batch)
        y = self._targets(model, batch)
        params = param_arrays(model)
        _, vjp_fn = jax.vjp(lambda p: loss_fn(p, x, lengths, y), params)
        leaves = [leaf for leaf in jax.tree_util.tree_leaves(vjp_fn) if isinstance(leaf, jax.Array)]
        # waited on, then dropped with vjp_fn: no work in flight, nothing held after the count
        jax.block_until_ready(leaves)
        param_keys = {_buffer_key(a) for a in jax.tree_util.tree_leaves(params)}
        buffers = {_buffer_key(leaf): int(leaf.nbytes) for leaf in leaves}
        param_bytes = sum(n for k, n in buffers.items() if k in param_keys)
        return {
            "saved_bytes": sum(buffers.values()) - param_bytes,
            "saved_param_bytes": param_bytes,
            "saved_input_bytes": buffers.get(_buffer_key(x), 0),
            "saved_buffers": sum(1 for k in buffers if k not in param_keys),
        }

    # -- training --------------------------------------------------------------------
    def make_train_state(self, model: SequenceModel, optimizer: OptimizerSpec, *, seed: int = 0) -> optim.TrainState:
        return optim.make_train_state(model, optimizer, seed=seed)

    def prepare_batch(self, state_or_model: Any, batch: Batch) -> DeviceBatch:
        model = _model_of(state_or_model)
        x, lengths = self._inputs(model, batch)
        arrays = DeviceBatch(x, lengths, self._targets(model, batch))
        if isinstance(state_or_model, optim.TrainState):  # maybe split over the CPU devices (optim.py)
            arrays = optim.place_batch(state_or_model, arrays)
        return arrays

    def train_step(self, state: optim.TrainState, batch: DeviceBatch | Batch) -> jax.Array:
        if isinstance(batch, Batch):
            batch = self.prepare_batch(state, batch)
        self._last = optim.train_step(state, batch)
        return self._last

    def loss_value(self, loss: Any) -> float:
        return float(loss)

    def state_params(self, state: optim.TrainState) -> dict[str, np.ndarray]:
        return {name: np.asarray(state.params[name]) for name in state.model.spec.param_schema()}

    def check_device(self, device: Device = "cpu") -> None:
        """Raise ``UserError`` (field ``device``) when ``device`` cannot be had here (jax.devices("gpu"))."""
        resolve_device(device)

    def synchronize(self, device: Device = "cpu") -> None:
        if self._last is not None:
            jax.block_until_ready(self._last)

    # -- memory ------------------------------------------------------------------------
    def reset_peak_memory(self, device: Device = "cpu") -> None:
        """XLA has no reset: remember the in-use and peak counters now (GPU only)."""
        if device == "cpu":
            return
        stats = resolve_device(device).memory_stats() or {}
        self._mem_at_reset[device] = (int(stats.get("bytes_in_use", 0)), int(stats.get("peak_bytes_in_use", 0)))

    def peak_memory_bytes(self, device: Device = "cpu") -> int | None:
        """``peak_bytes_in_use`` on GPU; None on CPU.

        When the process's peak has grown since ``reset_peak_memory`` the figure is
        exact; when it has not (this work peaked below an earlier one), the larger of
        the bytes in use at the reset and now, a lower bound.
        """
        if device == "cpu":
            return None
        stats = resolve_device(device).memory_stats()
        if not stats:
            return None
        peak, in_use = int(stats.get("peak_bytes_in_use", 0)), int(stats.get("bytes_in_use", 0))
        at_reset = self._mem_at_reset.get(device)
        if at_reset is None or peak > at_reset[1]:
            return peak
        return max(at_reset[0], in_use)

    # -- environment -------------------------------------------------------------------
    def describe(self, device: Device = "cpu", precision: Precision = "float32") -> dict[str, Any]:
        import flax
        import jaxlib
        import optax

        dev = resolve_device(device)
        gpu = dev.platform == "gpu"
        return {
            "backend": self.name,
            "device_kind": device,
            "device_name": dev.device_kind if gpu else cpu_name(),
            "precision": precision,
            "dtype": str(jnp.dtype(precision_dtype(precision))),
            "tf32": device == "cuda" and precision == "tf32",
            "cuda_version": getattr(dev.client, "platform_version", None) if gpu else None,
            "cudnn_version": None,  # jax has no public query for it
            "platform": dev.platform,
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
            "matmul_precision": MATMUL_PRECISION[precision],
            "x64": bool(jax.config.jax_enable_x64),
            "cpu_count": available_cores(),
            "flush_denormal": _flushes_subnormals(dev),  # torch_impl/backend.py flushes to match XLA:CPU
            # > 1: training steps split each batch over this many CPU devices (jax_impl/optim.py)
            "cpu_devices": len(jax.devices("cpu")) if device == "cpu" else None,
        }

    def gemm_times(self, device: Device = "cpu", precision: Precision = "float32") -> tuple[int, list[float]]:
        """n = 8192 on GPU, 1024 on CPU; one warm-up (the compile), then ``time_repeats``, each call
        waited on, under the precision's matmul setting."""
        dev = resolve_device(device)
        n = 1024 if device == "cpu" else 8192
        dtype = precision_dtype(precision)
        with matmul_precision(precision):
            mm = jax.jit(lambda a, b: a @ b)
            rng = np.random.default_rng(0)
            a = jax.device_put(jnp.asarray(rng.standard_normal((n, n)), dtype), dev)  # (n, n)
            b = jax.device_put(jnp.asarray(rng.standard_normal((n, n)), dtype), dev)  # (n, n)
            mm(a, b).block_until_ready()

            def once() -> float:
                t0 = time.perf_counter()
                mm(a, b).block_until_ready()
                return time.perf_counter() - t0

            return n, time_repeats(once)
