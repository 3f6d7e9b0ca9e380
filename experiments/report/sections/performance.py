"""Section 7: the backends' step times against the goals, the wrapper overhead, and the fraction of the machine."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import Table
from experiments.records import fields as R
from experiments.records.fields import Record
from experiments.report.performance import (
    CV_GOAL,
    GPU_RATIO_GOAL,
    PERF_COLUMNS,
    PERF_GRID_PREFIX,
    machine_fraction_table,
    overhead_table,
    perf_bench_records,
    performance_points_table,
    performance_table,
)
from experiments.report.tables import table_markdown

OVERHEAD_INTRO = (
    "Wrapper overhead (`benchmarks/wrapper_overhead.py`): what our models add over the framework's own "
    "modules, so that a backend comparison measures the frameworks and not this suite:"
)
MACHINE_FRACTION_INTRO = (
    "How close to the machine: the LSTM step's achieved FLOP/s as a fraction of what a square GEMM reaches "
    "on the same device in the same worker (DeepBench's V100 FP32 LSTM results reached about 53% of peak):"
)


def _points(points: Table, perf_records: list[Record]) -> list[str]:
    if not points.rows:
        return []
    goal_met = PERF_COLUMNS.index("goal met")
    met = sum(row[goal_met] == "yes" for row in points.rows)
    cv_ok = [r for r in perf_records if R.fmetric(r, "step_s_cv") <= CV_GOAL[R.device(r)]]
    return [
        f"The performance grids (`{PERF_GRID_PREFIX}*`) time both backends at each point, one right after the "
        f"other, on {', '.join(R.device_label(perf_records, d) for d in R.devices(perf_records))}. torch runs "
        f"its own `nn.LSTM/GRU/RNN` (on CPU ATen calls oneDNN's fused RNN primitive), the fastest reference in "
        f"the same run; JAX runs this suite's `scan` path (on a multi-core CPU a small step is split over the "
        f"cores, `jax_impl/optim.py`; records name the CPU devices in `env.cpu_devices`). The goal is met at "
        f"{met} of {len(points.rows)} points.",
        f"Measurement quality: {len(cv_ok)} of {len(perf_records)} of these cells kept the coefficient of "
        f"variation of their step times within the goal (<= {CV_GOAL['cpu']} on CPU, <= {CV_GOAL['cuda']} on GPU); "
        "JAX compile time is in the last column.",
        "",
        table_markdown(points),
        "",
    ]


def _gpu_pending(points: Table, perf_records: list[Record]) -> list[str]:
    """The GPU goals still waiting, said only where CPU performance points exist and no GPU one does."""
    if not points.rows or "cuda" in R.devices(perf_records):
        return []
    return [
        f"No GPU performance records yet: the GPU goals (jax/torch <= {GPU_RATIO_GOAL} against cuDNN, an LSTM at "
        f">= 50% of a GEMM's FLOP/s on an H100 with the jax path within 10% of cuDNN's, step-time CV <= "
        f"{CV_GOAL['cuda']}, JAX compile <= 5 s) wait for `seqbench run --preset perf_gpu` on a GPU.",
        "",
    ]


def performance(records: Sequence[Record]) -> list[str]:
    points, perf_records = performance_points_table(records), perf_bench_records(records)
    out = ["## 7. Performance", "", *_points(points, perf_records)]
    for table, intro in (
        (overhead_table(records), OVERHEAD_INTRO),
        (machine_fraction_table(records), MACHINE_FRACTION_INTRO),
    ):
        if table.rows:
            out += [intro, "", table_markdown(table), ""]
    out += _gpu_pending(points, perf_records)
    perf = performance_table(records)
    if not perf.rows:
        return [*out, "No grid point was benchmarked on both backends yet.", ""]
    out.append(
        "Step-time ratio of the JAX to the PyTorch implementation at the same grid point, over every bench "
        "record run on both:"
    )
    return [*out, "", table_markdown(perf)]
