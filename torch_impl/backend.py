"""The torch backend: ``experiments.backend.Backend`` over the models of this package.

``jax_impl/backend.py`` is its twin: the same methods, and the same private helpers where both need one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from experiments.backend import Batch, Device, ForwardResult, Gradients, PathChoice, Precision, cpu_name, time_repeats
from experiments.errors import UserError
from experiments.spec import ArchSpec, OptimizerSpec
from torch_impl import optim
from torch_impl.layers import (
    DeviceBatch,
    SequenceModel,
    apply_precision,
    check_path,
    export_params,
    head_loss,
    load_params,
    precision_dtype,
    resolve_device,
    set_tf32,
    target_tensor,
    to_numpy,
    valid_mask,
)

# XLA on CPU flushes float32 subnormals to zero; torch does not by default. A recurrent backward whose
# gradients vanish over hundreds of steps then runs on subnormal floats, which x86 handles in microcode:
# an LSTM training step at T=500, B=16, H=64 took 106 ms against 16 ms flushed (benchmarks/NOTES.md).
# The worker runs each cell inside ``numerics()``, which flushes (FTZ/DAZ, this thread) and restores
# IEEE after, so that code outside a cell (hypothesis, numpy in the tests) keeps IEEE subnormals.
FLUSH_DENORMAL: bool = torch.set_flush_denormal(True)  # False where the CPU cannot flush
torch.set_flush_denormal(False)  # torch's default outside a cell


@contextlib.contextmanager
def flushed_subnormals() -> Iterator[None]:
    """Float32 subnormals flushed to zero on CPU, as XLA does, for the duration of a cell."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _model_of(state_or_model: Any) -> SequenceModel:
    return state_or_model.model if isinstance(state_or_model, optim.TrainState) else state_or_model


@contextlib.contextmanager
def _grad_mode(model: SequenceModel) -> Iterator[None]:
    """Eval semantics (no dropout) that can still differentiate: cuDNN's RNN backward runs only in
    training mode, so the RNN modules go to train mode with their dropout set to zero."""
    was_training = model.training
    model.eval()
    rnns = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    saved = [m.dropout for m in rnns]
    for m in rnns:
        m.dropout = 0.0
        m.train()
    try:
        yield
    finally:
        for m, p in zip(rnns, saved, strict=True):
            m.dropout = p
        model.train(was_training)


class TorchBackend:
    name = "torch"

    def __init__(self, models: dict[str, type[SequenceModel]]) -> None:
        self.models = models

    def numerics(self) -> contextlib.AbstractContextManager[None]:
        """The floating-point mode a cell runs in (the worker enters it around each cell)."""
        return flushed_subnormals()

    # -- models -------------------------------------------------------------------------------
    def build(
        self,
        spec: ArchSpec,
        params: dict[str, np.ndarray],
        *,
        precision: Precision = "float32",
        device: Device = "cpu",
        path: PathChoice = "auto",
    ) -> SequenceModel:
        if spec.arch not in self.models:
            raise UserError("arch", f"unknown architecture {spec.arch!r}", f"use one of {', '.join(self.models)}")
        spec.validate()
        check_path(path)
        dtype = apply_precision(precision)
        dev = resolve_device(device)
        model = self.models[spec.arch](spec, path=path)
        model.to(device=dev, dtype=dtype)
        load_params(model, params)  # in place, after .to(): cuDNN's flat weights stay valid
        model.precision = precision
        model.eval()
        return model

    def export_params(self, model: SequenceModel) -> dict[str, np.ndarray]:
        """Canonical parameters in the model's dtype (bfloat16 as float32, exactly)."""
        return export_params(model)

    def execution_path(self, model: SequenceModel) -> str:
        return model.execution_path()

    # -- batches ------------------------------------------------------------------------------
    def prepare_batch(self, state_or_model: Any, batch: Batch) -> DeviceBatch:
        model = _model_of(state_or_model)
        ref = model.head.weight
        lengths = np.asarray(batch.lengths, dtype=np.int64)
        steps = batch.x.shape[1]
        if lengths.shape != (batch.x.shape[0],) or lengths.min() < 1 or lengths.max() > steps:
            raise UserError("lengths", f"need (B,) lengths in [1, {steps}], got {lengths!r}")
        x = torch.from_numpy(np.ascontiguousarray(batch.x)).to(ref.device, ref.dtype, non_blocking=True)
        if lengths.min() == steps:
            t_lengths, mask = None, None
        else:
            t_lengths = torch.from_numpy(lengths)
            mask = valid_mask(t_lengths.to(ref.device), steps)
        y = None if batch.y is None else target_tensor(model.spec.head, batch.y, ref.dtype, ref.device)
        return DeviceBatch(x, t_lengths, mask, y)

    # -- forward and gradients ------------------------------------------------------------------
    def forward(
        self, model: SequenceModel, batch: Batch, *, train: bool = False, seed: int = 0, return_extras: bool = False
    ) -> ForwardResult:
        b = self.prepare_batch(model, batch)
        was_training = model.training
        model.train(train)
        try:
            with torch.no_grad(), self._seeded(model, seed, train):
                out = model(b.x, b.lengths, b.mask, return_extras=return_extras)
        finally:
            model.train(was_training)
        states = {}
        if out.h is not None:
            states["h"] = to_numpy(out.h)
        if out.c is not None:
            states["c"] = to_numpy(out.c)
        return ForwardResult(
            outputs=to_numpy(out.outputs),
            pooled=to_numpy(out.pooled),
            logits=to_numpy(out.logits),
            final_states=states,
            extras={k: to_numpy(v) for k, v in out.extras.items() if v is not None},
        )

    @staticmethod
    @contextlib.contextmanager
    def _seeded(model: SequenceModel, seed: int, train: bool) -> Iterator[None]:
        if not train:
            yield
            return
        device = model.head.weight.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield

    def loss_and_grads(self, model: SequenceModel, batch: Batch) -> Gradients:
        if batch.y is None:
            raise UserError("batch.y", "loss_and_grads needs targets")
        b = self.prepare_batch(model, batch)
        x = b.x.detach().requires_grad_(True)
        names, params = zip(*((n, p) for n, p in model.named_parameters()), strict=True)
        with _grad_mode(model), torch.enable_grad():
            out = model(x, b.lengths, b.mask)
            loss = head_loss(model.spec.head, out.logits, b.y, b.mask)
            grads = torch.autograd.grad(loss, [*params, x], allow_unused=True)
        by_name = dict(zip(names, grads[:-1], strict=True))
        param_grads = {}
        for name, p in model.named_parameters():
            g = by_name[name]
            param_grads[name] = to_numpy(g) if g is not None else np.zeros(tuple(p.shape), to_numpy(p).dtype)
        return Gradients(
            loss=float(loss.item()),
            params={name: param_grads[name] for name in model.spec.param_schema()},
            inputs=to_numpy(grads[-1]),
        )

    def saved_bytes(self, model: SequenceModel, batch: Batch) -> dict[str, int]:
        """Bytes autograd keeps for the backward pass of the head's loss w.r.t. the parameters
        (dropout off, RNN modules in train mode as in ``loss_and_grads``), read through
        ``torch.autograd.graph.saved_tensors_hooks`` around the forward and the loss.

        Each STORAGE counts once, with its full ``nbytes`` (a saved view keeps its whole
        storage alive; two views of one storage are one buffer). Storages of the model's
        parameters (views such as ``weight.t()`` included) go to ``saved_param_bytes``;
        everything else, the input ``x`` included when an op saves it (``saved_input_bytes``
        says how much of it), integer masks and lengths too, goes to ``saved_bytes``.
        The fused RNN kernels' workspace/reserve buffers (oneDNN's ``mkldnn_rnn_layer`` on
        CPU, cuDNN's reserve space on GPU) are saved tensors too, so they count: they are what
        the kernel keeps. ``x`` does not require grad, as jax's ``vjp`` w.r.t. the params alone.
        """
        if batch.y is None:
            raise UserError("batch.y", "saved_bytes needs targets")
        b = self.prepare_batch(model, batch)
        param_ptrs = {(p.device, p.untyped_storage().data_ptr()) for p in model.parameters()}
        input_ptr = (b.x.device, b.x.untyped_storage().data_ptr())
        storages: dict[tuple[torch.device, int], int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            # the pack hook returns the tensor itself, so every storage seen stays alive (and its
            # address unique) until the graph is dropped below
            s = t.untyped_storage()
            key = (t.device, s.data_ptr())
            storages[key] = max(storages.get(key, 0), s.nbytes())
            return t

        with _grad_mode(model), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(b.x, b.lengths, b.mask)
            loss = head_loss(model.spec.head, out.logits, b.y, b.mask)
        del out, loss  # the graph, and with it the saved tensors
        params = sum(n for k, n in storages.items() if k in param_ptrs)
        return {
            "saved_bytes": sum(storages.values()) - params,
            "saved_param_bytes": params,
            "saved_input_bytes": storages.get(input_ptr, 0),
            "saved_buffers": sum(1 for k in storages if k not in param_ptrs),
        }

    # -- training -----------------------------------------------------------------------------
    def make_train_state(self, model: SequenceModel, optimizer: OptimizerSpec, *, seed: int = 0) -> optim.TrainState:
        return optim.make_train_state(model, optimizer, seed=seed)

    def train_step(self, state: optim.TrainState, batch: DeviceBatch | Batch) -> torch.Tensor:
        if isinstance(batch, Batch):
            batch = self.prepare_batch(state, batch)
        return optim.train_step(state, batch)

    def loss_value(self, loss: torch.Tensor) -> float:
        return float(loss.item())

    def state_params(self, state: optim.TrainState) -> dict[str, np.ndarray]:
        return export_params(state.model)

    # -- device -------------------------------------------------------------------------------
    def check_device(self, device: Device = "cpu") -> None:
        """Raise ``UserError`` (field ``device``) when ``device`` cannot be had here (torch.cuda.is_available())."""
        resolve_device(device)

    def synchronize(self, device: Device = "cpu") -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def reset_peak_memory(self, device: Device = "cpu") -> None:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_memory_bytes(self, device: Device = "cpu") -> int | None:
        if device == "cuda":
            return int(torch.cuda.max_memory_allocated())
        return None

    def describe(self, device: Device = "cpu", precision: Precision = "float32") -> dict[str, Any]:
        dtype = precision_dtype(precision)
        cuda = device == "cuda" and torch.cuda.is_available()
        return {
            "backend": self.name,
            "device_kind": device,
            "device_name": torch.cuda.get_device_name() if cuda else cpu_name(),
            "precision": precision,
            "dtype": str(dtype).removeprefix("torch."),
            "tf32": device == "cuda" and precision == "tf32",
            "cuda_version": torch.version.cuda,
            "cudnn_version": torch.backends.cudnn.version() if cuda else None,
            "torch_version": torch.__version__,
            "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
            "allow_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "flush_denormal": FLUSH_DENORMAL,  # CPU float32 subnormals flushed to zero, as XLA does
        }

    def gemm_times(self, device: Device = "cpu", precision: Precision = "float32") -> tuple[int, list[float]]:
        """n = 8192 on GPU (4096 for float64), 1024 on CPU; one warm-up, then ``time_repeats``
        (CUDA events on GPU). TF32 set for the precision during the GEMMs, restored after."""
        dtype = precision_dtype(precision)
        dev = resolve_device(device)
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        set_tf32(precision == "tf32")
        try:
            cuda = dev.type == "cuda"
            n = (4096 if dtype == torch.float64 else 8192) if cuda else 1024
            gen = torch.Generator(device="cpu").manual_seed(0)
            a = torch.randn(n, n, generator=gen, dtype=torch.float32).to(dev, dtype)  # (n, n)
            b = torch.randn(n, n, generator=gen, dtype=torch.float32).to(dev, dtype)  # (n, n)
            out = torch.empty(n, n, device=dev, dtype=dtype)
            torch.matmul(a, b, out=out)  # warm-up
            self.synchronize(device)

            def once() -> float:
                if cuda:
                    t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    t0.record()
                    torch.matmul(a, b, out=out)
                    t1.record()
                    t1.synchronize()
                    return t0.elapsed_time(t1) / 1e3
                t0 = time.perf_counter()
                torch.matmul(a, b, out=out)
                return time.perf_counter() - t0

            return n, time_repeats(once)
        finally:
            set_tf32(saved[0])
            torch.backends.cudnn.allow_tf32 = saved[1]
