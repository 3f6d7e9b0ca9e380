"""The ``bench`` cell kind: timed training steps (forward + backward + optimizer) on seeded random data.

The protocol (warm-up, timed steps, memory, peak FLOP/s) is ``experiments.kinds.measure``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.cell import Cell, CellResult, finite
from experiments.errors import UserError
from experiments.kinds import measure
from experiments.kinds.context import fresh_process
from experiments.kinds.inputs import random_batch
from experiments.kinds.registry import build_model, register_cell_kind
from experiments.spec import size_fields, spec_from_dict, spec_to_dict

BENCH_SETTINGS: dict[str, Any] = {
    "warmup_steps": 3,
    "max_warmup_steps": 50,
    "min_timed_steps": 20,
    "min_time_s": 1.0,
    "max_timed_steps": 100_000,
    "n_batches": 2,
}


def _check_bench(s: dict[str, Any]) -> None:
    if s["warmup_steps"] < 3:
        raise UserError("warmup_steps", f"the protocol warms up >= 3 steps, got {s['warmup_steps']}", "set >= 3")
    if s["max_warmup_steps"] < s["warmup_steps"]:
        raise UserError("max_warmup_steps", "is below warmup_steps", "set max_warmup_steps >= warmup_steps")
    if s["n_batches"] < 2:
        raise UserError("n_batches", f"the protocol alternates >= 2 batches, got {s['n_batches']}", "set >= 2")
    if s["min_timed_steps"] < 20 and s["min_time_s"] < 1.0:
        raise UserError(
            "min_timed_steps",
            "the protocol times >= 20 steps or >= 1 s",
            "set min_timed_steps >= 20 or min_time_s >= 1",
        )
    if s["max_timed_steps"] < s["min_timed_steps"]:
        raise UserError("max_timed_steps", "is below min_timed_steps", "raise max_timed_steps")


WARM_HIDDEN = 8  # the throwaway model of ``_warm_framework``: the cell's architecture, this small


def _warm_framework(backend: Any, cell: Cell, spec: Any) -> None:
    """Two training steps of a tiny model of the cell's architecture, on tiny data.

    A fresh worker's first cell otherwise pays the framework's first-use memory in its
    reading (thread pools, library pages, for jax the compiler): measured ~95 MiB (torch)
    and ~200 MiB (jax) on a tiny LSTM, the same at every size, which flattens
    memory-vs-size exponents. What the tiny model leaves in the allocator is small.
    """
    tiny = spec_from_dict({**spec_to_dict(spec), **size_fields(cell.arch, WARM_HIDDEN)})
    model = build_model(backend, cell, tiny, tiny.init_params(cell.seed))
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    batch = backend.prepare_batch(state, random_batch(tiny, 2, min(int(cell.seq_len), 4), np.random.default_rng(0)))
    for _ in range(2):
        backend.train_step(state, batch)
    backend.synchronize(cell.device)


@register_cell_kind("bench", settings=BENCH_SETTINGS, check=_check_bench)
def bench_cell(backend: Any, cell: Cell) -> CellResult:
    """Timed training steps (forward + backward + optimizer) on seeded random data; see ``measure``."""
    s = cell.settings
    spec = cell.build_spec()
    batch, seq_len = cell.batch, int(cell.seq_len)
    rng = np.random.default_rng(cell.seed)
    host = [random_batch(spec, batch, seq_len, rng) for _ in range(s["n_batches"])]
    params = spec.init_params(cell.seed)
    if cell.device == "cpu" and fresh_process():
        _warm_framework(backend, cell, spec)  # before the meter: the framework's first use is not this cell's

    meter = measure.MemoryMeter(backend, cell.device)
    meter.start()
    model = build_model(backend, cell, spec, params)
    path = backend.execution_path(model)
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    batches = [backend.prepare_batch(state, b) for b in host]
    timing = measure.time_steps(
        lambda b: backend.train_step(state, b),
        lambda: backend.synchronize(cell.device),
        batches,
        warmup_steps=s["warmup_steps"],
        max_warmup_steps=s["max_warmup_steps"],
        min_timed_steps=s["min_timed_steps"],
        min_time_s=s["min_time_s"],
        max_timed_steps=s["max_timed_steps"],
    )
    peak_mem = meter.read()
    # The GEMM runs once per worker, after the memory reading: in a fresh worker its freed
    # buffers would otherwise be cached pages that hide the model's growth.
    peak = measure.peak_flops(backend, cell.device, cell.precision)
    # The exact memory measure, the one that decides memory claims on any device: the bytes the
    # backward pass of one step holds (after the RSS reading, which its buffers would otherwise inflate).
    saved = backend.saved_bytes(model, host[0])
    loss = backend.loss_value(timing.last_loss)

    flops = int(spec.train_step_flops(batch, seq_len))
    median = timing.stats.median
    flops_per_s = flops / median if median > 0 else None
    metrics = {
        "step_s_median": median,
        "step_s_iqr": timing.stats.iqr,
        "step_s_cv": timing.stats.cv,
        "compile_s": timing.compile_s,
        "peak_mem_bytes": peak_mem,
        "saved_bytes": saved["saved_bytes"],  # activations (and x, masks, a kernel's workspace)
        "saved_param_bytes": saved["saved_param_bytes"],
        "flops_per_step": flops,
        "flops_per_s": flops_per_s,
        "peak_fraction": (flops_per_s / peak) if (flops_per_s and peak) else None,
        "device_peak_flops_per_s": peak,
        "mem_kind": meter.kind,
        "examples_per_s": batch / median if median > 0 else None,
        "tokens_per_s": batch * seq_len / median if median > 0 else None,
        "param_count": int(spec.param_count()),
        "stored_activations": int(spec.stored_activations(batch, seq_len, attention_path=path or "reference")),
        "step_s_mean": timing.stats.mean,
        "step_s_min": timing.stats.min,
        "timed_steps": timing.stats.n,
        "warmup_steps": len(timing.warmup_times),
        "first_step_s": timing.warmup_times[0],
        "final_loss": loss,
        **timing.host,  # load_avg_1m, cpu_over_wall, host_other_busy, host_steal, disturbed
    }
    # why ``auto`` took a slower path (jax's LSTM off CUDA: scan, not cudnn), where the model says
    reason = getattr(model, "path_reason", None)
    if reason:
        metrics["path_reason"] = str(reason)
    return CellResult(metrics=metrics, status="ok" if finite(loss) else "nan", path=path)
