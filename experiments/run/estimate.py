"""A dry run's estimate of the device seconds a list of cells will take, before any runs.

Not a measurement: a model with stated constants, to size a run against a budget (the lent
GPU's window, ``seqbench run --preset gpu_window --dry-run``). Per cell:

    start     a worker's start per backend (once per backend where workers are reused; per cell
              where the cell asks for a fresh worker)
    compile   the framework's first-step cost (jax compiles the step, the memory probe and the
              GEMM: ``COMPILE_S``)
    steps     bench: warm-up steps + max(min_timed_steps steps, min_time_s); train: steps and
              evaluations; each step ``train_step_flops / (DEVICE_FLOPS x EFFICIENCY)``
    gemm      the GEMM peak, once per worker process

The constants lean high (a small step reaches a small fraction of a device's peak), so a run
that fits the estimate fits the window; the records then say what it really took (``wall_s``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from experiments.cell import Cell

DEVICE_FLOPS = {"cpu": 50e9, "cuda": 60e12}  # a GEMM's FLOP/s, order of magnitude (2 CPU cores; an H100 in fp32)
EFFICIENCY = {"cpu": 0.3, "cuda": 0.05}  # a small training step's share of that: low on a GPU (launch-bound)
START_S = {"cpu": 3.0, "cuda": 12.0}  # importing a framework (and initialising CUDA)
COMPILE_S = {"torch": 1.0, "jax": 4.0}
GEMM_S = 1.0
EVAL_FLOPS_FRACTION = 1 / 3  # an evaluation batch runs the forward pass only


@dataclass(frozen=True)
class Estimate:
    seconds: float
    cells: int


def step_seconds(cell: Cell, batch: int | None = None) -> float:
    spec = cell.build_spec()
    flops = spec.train_step_flops(batch or cell.batch, int(cell.seq_len or 1))
    return flops / (DEVICE_FLOPS[cell.device] * EFFICIENCY[cell.device])


def cell_seconds(cell: Cell) -> float:
    """The cell's own time: compile and steps (no worker start, no GEMM)."""
    s, step = cell.settings, step_seconds(cell)
    if cell.kind == "bench":
        timed = max(s.get("min_timed_steps", 20) * step, s.get("min_time_s", 1.0))
        work = s.get("warmup_steps", 3) * step + timed
    elif cell.kind == "train":
        evals = s.get("steps", 0) // max(s.get("eval_every", 1), 1) + 2
        eval_step = step_seconds(cell, s.get("eval_batch", cell.batch)) * EVAL_FLOPS_FRACTION
        work = s.get("steps", 0) * step + evals * eval_step
    else:  # a probe: a few passes
        work = 3 * step + s.get("steps", 0) * step
    return COMPILE_S.get(cell.backend, 2.0) + work


def estimate(cells: Sequence[Cell]) -> Estimate:
    """Every cell's time plus worker starts and GEMMs, as the local executor would run them."""
    total, pooled = 0.0, set()
    for cell in cells:
        total += cell_seconds(cell)
        if cell.resources.get("fresh_worker"):
            total += START_S[cell.device] + GEMM_S
        elif (cell.backend, cell.device) not in pooled:
            pooled.add((cell.backend, cell.device))
            total += START_S[cell.device] + GEMM_S
    return Estimate(seconds=total, cells=len(cells))
