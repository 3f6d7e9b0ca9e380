"""The JAX backend object: ``experiments.backend.Backend`` over the NNX models of ``jax_impl``.

Arrays cross the seam as NumPy, batch-first, canonical (torch) parameter names.
Every computation runs as a ``jax.jit`` of a pure function of the flat parameter dict,
cached per model configuration, traced under the precision's matmul setting
(float32: ``highest``, true IEEE float32; tf32: ``default``).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.backend import Batch, Device, ForwardResult, Gradients, PathChoice, Precision
from experiments.errors import UserError
from experiments.spec import ArchSpec, OptimizerSpec
from jax_impl import optim
from jax_impl.layers import MATMUL_PRECISION, check_dtypes, dtype_of, matmul_precision, param_arrays

_PEAK_FLOPS: dict[tuple[str, str], float] = {}


def _device(device: str) -> jax.Device:
    if device == "cpu":
        return jax.devices("cpu")[0]
    if device == "cuda":
        try:
            return jax.devices("gpu")[0]
        except RuntimeError as exc:
            raise UserError("device", "no CUDA device visible to jax", "install jax[cuda] or use --device cpu") from exc
    raise UserError("device", f"unknown device {device!r}", "use cpu or cuda")


def _to_numpy(tree: Any) -> Any:
    return jax.tree.map(lambda a: np.asarray(a), tree)


class JaxBackend:
    name = "jax"

    def __init__(self) -> None:
        self._jit: dict[tuple, Any] = {}
        self._last: Any = None
        self._mem_at_reset: dict[str, tuple[int, int]] = {}

    # -- models ------------------------------------------------------------------
    def build(
        self,
        spec: ArchSpec,
        params: dict[str, np.ndarray],
        *,
        precision: Precision = "float32",
        device: Device = "cpu",
        path: PathChoice | str = "auto",
    ) -> Any:
        """A model holding exactly ``params`` cast to the precision's dtype.

        ``path``: ``auto | on | off`` (the protocol's switch), or a path by name
        (``scan``, ``reference``, ``fused_attention``). See each model file.
        """
        from jax_impl import MODELS

        dev = _device(device)
        cls = MODELS[spec.arch]
        with jax.default_device(dev):
            model = cls(spec, params, precision=precision, path=path, device=device)
        check_dtypes(model, dtype_of(precision))
        return model

    def export_params(self, model: Any) -> dict[str, np.ndarray]:
        arrays = param_arrays(model)
        return {name: np.asarray(arrays[name]) for name in model.spec.param_schema()}  # the schema's order

    def execution_path(self, model: Any) -> str:
        return model.path

    # -- jitted pure functions -----------------------------------------------------
    def _cached(self, model: Any, kind: str, build: Any) -> Any:
        key = (*model.static_key(), model.device, kind)
        if key not in self._jit:
            self._jit[key] = build()
        return self._jit[key]

    def _inputs(self, model: Any, batch: Batch) -> tuple[jax.Array, jax.Array]:
        dev = _device(model.device)
        dtype = dtype_of(model.precision)
        x = jax.device_put(jnp.asarray(batch.x, dtype=dtype), dev)
        lengths = jax.device_put(jnp.asarray(batch.lengths, dtype=jnp.int32), dev)
        return x, lengths

    def _targets(self, model: Any, batch: Batch) -> jax.Array:
        if batch.y is None:
            raise ValueError("this batch has no targets")
        dev = _device(model.device)
        if model.spec.head.is_classification:
            return jax.device_put(jnp.asarray(batch.y, dtype=jnp.int32), dev)
        return jax.device_put(jnp.asarray(batch.y, dtype=dtype_of(model.precision)), dev)

    def forward(
        self, model: Any, batch: Batch, *, train: bool = False, seed: int = 0, return_extras: bool = False
    ) -> ForwardResult:
        # extras always computed (cheap beside a second compile per model), dropped when not asked for
        fn = self._cached(model, f"forward:{train}", lambda: jax.jit(model.pure(train=train, return_extras=True)))
        x, lengths = self._inputs(model, batch)
        key = jax.random.key(seed) if train else None
        out = fn(param_arrays(model), x, lengths, key)
        self._last = out
        out = _to_numpy(out)
        extras = {k: v for k, v in out["extras"].items() if v is not None} if return_extras else {}
        final = {k: v for k, v in out["final_states"].items() if v is not None}
        return ForwardResult(
            outputs=out["outputs"], pooled=out["pooled"], logits=out["logits"], final_states=final, extras=extras
        )

    def loss_and_grads(self, model: Any, batch: Batch) -> Gradients:
        def build() -> Any:
            loss_fn = optim.make_loss_fn(model, train=False)
            return jax.jit(jax.value_and_grad(lambda p, x, n, y: loss_fn(p, x, n, y, None), argnums=(0, 1)))

        fn = self._cached(model, "loss_and_grads", build)
        x, lengths = self._inputs(model, batch)
        loss, (g_params, g_x) = fn(param_arrays(model), x, lengths, self._targets(model, batch))
        self._last = loss
        return Gradients(loss=float(loss), params=_to_numpy(g_params), inputs=np.asarray(g_x))

    # -- training --------------------------------------------------------------------
    def make_train_state(self, model: Any, optimizer: OptimizerSpec, *, seed: int = 0) -> optim.TrainState:
        return optim.make_train_state(model, optimizer, param_arrays(model), seed=seed)

    def prepare_batch(self, state_or_model: Any, batch: Batch) -> tuple[jax.Array, jax.Array, jax.Array]:
        model = state_or_model.model if isinstance(state_or_model, optim.TrainState) else state_or_model
        x, lengths = self._inputs(model, batch)
        arrays = (x, lengths, self._targets(model, batch))
        if isinstance(state_or_model, optim.TrainState):  # maybe split over the CPU devices (optim.py)
            arrays = optim.place_batch(state_or_model, arrays)
        return arrays

    def train_step(self, state: optim.TrainState, batch: Any) -> Any:
        if isinstance(batch, Batch):
            batch = self.prepare_batch(state, batch)
        state.params, state.opt_state, state.step, loss = state.step_fn(
            state.params, state.opt_state, state.step, state.key, *batch
        )
        state.last = loss
        self._last = loss
        return loss

    def loss_value(self, loss: Any) -> float:
        return float(loss)

    def state_params(self, state: optim.TrainState) -> dict[str, np.ndarray]:
        return {name: np.asarray(state.params[name]) for name in state.model.spec.param_schema()}

    def synchronize(self, device: Device = "cpu") -> None:
        if self._last is not None:
            jax.block_until_ready(self._last)

    # -- memory ------------------------------------------------------------------------
    def reset_peak_memory(self, device: Device = "cpu") -> None:
        """XLA has no reset: remember the in-use and peak counters now (GPU only)."""
        if device == "cpu":
            return
        stats = _device(device).memory_stats() or {}
        self._mem_at_reset[device] = (int(stats.get("bytes_in_use", 0)), int(stats.get("peak_bytes_in_use", 0)))

    def peak_memory_bytes(self, device: Device = "cpu") -> int | None:
        """``peak_bytes_in_use`` on GPU; None on CPU.

        When the process's peak has grown since ``reset_peak_memory`` the figure is
        exact; when it has not (this work peaked below an earlier one), the larger of
        the bytes in use at the reset and now, a lower bound.
        """
        if device == "cpu":
            return None
        stats = _device(device).memory_stats()
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

        dev = _device(device)
        info: dict[str, Any] = {
            "backend": "jax",
            "device_kind": device,
            "device_name": dev.device_kind,
            "platform": dev.platform,
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
            "precision": precision,
            "dtype": str(jnp.dtype(dtype_of(precision))),
            "matmul_precision": MATMUL_PRECISION[precision],
            "tf32": device == "cuda" and precision == "tf32",
            "x64": bool(jax.config.jax_enable_x64),
            "cpu_count": _cpu_count(),
            # > 1: training steps split each batch over this many CPU devices (jax_impl/optim.py)
            "cpu_devices": len(jax.devices("cpu")) if device == "cpu" else None,
        }
        if dev.platform == "gpu":
            info["cuda"] = getattr(dev.client, "platform_version", None)
        return info

    def matmul_peak_flops(self, device: Device = "cpu", precision: Precision = "float32") -> float:
        """Best FLOP/s of a square GEMM over ~0.5 s, measured once per process and setting."""
        key = (device, precision)
        if key in _PEAK_FLOPS:
            return _PEAK_FLOPS[key]
        dev = _device(device)
        n = 1024 if device == "cpu" else 8192
        dtype = dtype_of(precision)
        with matmul_precision(precision):
            mm = jax.jit(lambda a, b: a @ b)
            rng = np.random.default_rng(0)
            a = jax.device_put(jnp.asarray(rng.standard_normal((n, n)), dtype), dev)
            b = jax.device_put(jnp.asarray(rng.standard_normal((n, n)), dtype), dev)
            mm(a, b).block_until_ready()
            best, start = float("inf"), time.perf_counter()
            while time.perf_counter() - start < 0.5 or best == float("inf"):
                t0 = time.perf_counter()
                mm(a, b).block_until_ready()
                best = min(best, time.perf_counter() - t0)
        _PEAK_FLOPS[key] = 2.0 * n**3 / best
        return _PEAK_FLOPS[key]


def _cpu_count() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
