"""The performance tables: both backends' step times, wrapper overhead and the fraction of the machine reached."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from experiments.claims.base import Table, fmt
from experiments.records import fields as R
from experiments.records.fields import Record

PERF_GRID_PREFIX = "perf_"  # grids that time both backends point by point (experiments/configs/perf_*.toml)
DEEPBENCH_GRID_PREFIX = "perf_deepbench"  # LSTM at DeepBench's training configs (experiments/configs/)
PERF_COLUMNS = ["device", "arch", "T", "H", "B", "torch ms", "jax ms", "jax/torch", "goal met"]
PERF_COLUMNS += ["paths (torch / jax)", "CV (torch / jax)", "jax compile s"]
CPU_RATIO_GOAL = 1.5  # the suite's performance goal: jax step <= 1.5x torch's on CPU, <= 1.1x on GPU
GPU_RATIO_GOAL = 1.1
CV_GOAL = {"cpu": 0.05, "cuda": 0.02}  # the steadiness goal: step-time CV <= 5% on CPU, <= 2% on GPU
OVERHEAD_COLUMNS = ["device", "backend", "arch", "baseline", "B", "T", "H", "threads / clock", "ours/baseline"]
OVERHEAD_COLUMNS += ["min-based", "goal", "goal met", "CV (ours / baseline)"]


def timed_bench_records(records: Sequence[Record]) -> list[Record]:
    """The ok bench records that have a finite median step time."""
    return [r for r in records if R.kind(r) == "bench" and R.ok(r) and math.isfinite(R.fmetric(r, "step_s_median"))]


def perf_bench_records(records: Sequence[Record], grid_prefix: str = PERF_GRID_PREFIX) -> list[Record]:
    """The ok bench records of the performance grids whose names start with ``grid_prefix``."""
    return [r for r in timed_bench_records(records) if str(r.get("grid", "")).startswith(grid_prefix)]


def performance_points_table(records: Sequence[Record]) -> Table:
    """Every point of the ``perf_*`` grids: both backends' median step, the ratio and its goal."""
    points: dict[tuple, dict[str, Record]] = {}
    for r in perf_bench_records(records):
        key = (R.device(r), R.arch(r), R.seq_len(r), R.size(r), R.cfg(r, "batch"), R.cfg(r, "precision"))
        points.setdefault(key, {})[R.backend(r)] = r  # a rerun replaces (records are in run order)
    rows = []
    for key in sorted(points, key=lambda k: tuple(map(str, k[:2])) + tuple(k[2:5])):
        per = points[key]
        if not {"torch", "jax"} <= set(per):
            continue
        j, t = per["jax"], per["torch"]
        ratio = R.fmetric(j, "step_s_median") / R.fmetric(t, "step_s_median")
        goal = GPU_RATIO_GOAL if key[0] == "cuda" else CPU_RATIO_GOAL
        rows.append(
            [
                *key[:5],
                fmt(1e3 * R.fmetric(t, "step_s_median")),
                fmt(1e3 * R.fmetric(j, "step_s_median")),
                fmt(ratio),
                "yes" if ratio <= goal else "no",
                f"{R.exec_path(t)} / {R.exec_path(j)}",
                f"{fmt(R.fmetric(t, 'step_s_cv'))} / {fmt(R.fmetric(j, 'step_s_cv'))}",
                fmt(R.fmetric(j, "compile_s")),
            ]
        )
    return Table(
        "performance_points",
        f"Training step (forward, backward, Adam), median over >= 20 steps: JAX against torch at each point of the "
        f"perf grids; goal jax/torch <= {CPU_RATIO_GOAL} on CPU, <= {GPU_RATIO_GOAL} on GPU",
        PERF_COLUMNS,
        rows,
    )


def overhead_table(records: Sequence[Record]) -> Table:
    """``benchmarks/wrapper_overhead.py`` records: our model's step over a minimal baseline's, same weights."""
    latest: dict[str, Record] = {}
    for r in records:
        if R.kind(r) == "overhead" and R.ok(r):
            latest[r["key"]] = r  # a rerun of the same config replaces the earlier measurement
    rows = []
    for r in sorted(latest.values(), key=lambda r: (R.backend(r), R.arch(r), -R.cfg(r, "batch"))):
        m = r["metrics"]
        rows.append(
            [
                R.device(r),
                R.backend(r),
                R.arch(r),
                R.cfg(r, "baseline"),
                R.cfg(r, "batch"),
                R.seq_len(r),
                R.size(r),
                f"{R.cfg(r, 'threads') or 'all'} / {R.cfg(r, 'clock')}",
                fmt(m["ratio"]),
                fmt(m["ratio_min"]),
                fmt(m["goal"]),
                "yes" if m["ratio"] <= m["goal"] else "no",
                f"{fmt(m['ours_step_s_cv'])} / {fmt(m['baseline_step_s_cv'])}",
            ]
        )
    return Table(
        "performance_overhead",
        "Wrapper overhead: our model's training step over a minimal baseline's in the same framework, same "
        "weights and batches (the first losses checked equal), timed alternately step by step",
        OVERHEAD_COLUMNS,
        rows,
    )


def machine_fraction_table(records: Sequence[Record]) -> Table:
    """LSTM training FLOP/s as a fraction of a same-precision GEMM measured in the same worker."""
    rows = []
    bench = perf_bench_records(records, DEEPBENCH_GRID_PREFIX)
    by_point = R.group(bench, lambda r: (R.device(r), R.size(r), R.cfg(r, "batch"), R.seq_len(r)))
    for point, recs in sorted(by_point.items(), key=lambda kv: tuple(map(str, kv[0][:1])) + kv[0][1:]):
        per = {R.backend(r): r for r in recs}
        for name in ("torch", "jax"):
            if name not in per:
                continue
            r = per[name]
            frac = R.fmetric(r, "peak_fraction")
            rel = fmt(frac / R.fmetric(per["torch"], "peak_fraction")) if name == "jax" and "torch" in per else ""
            rows.append(
                [
                    point[0],
                    name,
                    R.exec_path(r),
                    *point[1:],
                    fmt(R.fmetric(r, "flops_per_s") / 1e9),
                    fmt(R.fmetric(r, "device_peak_flops_per_s") / 1e9),
                    fmt(frac),
                    rel,
                ]
            )
    return Table(
        "performance_machine_fraction",
        "LSTM training step (input = hidden) at DeepBench's training configs: achieved FLOP/s (analytic count) over "
        "the FLOP/s of a same-precision square GEMM measured in the same worker",
        ["device", "backend", "path", "H", "B", "T", "GFLOP/s", "GEMM GFLOP/s", "fraction", "jax / torch fraction"],
        rows,
    )


def performance_table(records: Sequence[Record]) -> Table:
    """jax / torch step-time ratios from bench records run on both backends at the same point."""
    bench = timed_bench_records(records)
    points: dict[tuple, dict[str, list[float]]] = {}
    for r in bench:
        key = (R.device(r), R.arch(r), R.seq_len(r), R.size(r))
        key += (R.cfg(r, "batch"), R.cfg(r, "precision"), R.cfg(r, "path"))
        points.setdefault(key, {}).setdefault(R.backend(r), []).append(R.fmetric(r, "step_s_median"))
    ratios: dict[tuple, list[float]] = {}
    for key, per in points.items():
        if "torch" in per and "jax" in per:
            ratios.setdefault((key[0], key[1], key[5]), []).append(
                float(np.median(per["jax"]) / np.median(per["torch"]))
            )
    compile_s: dict[tuple, list[float]] = {}
    for r in bench:
        value = R.fmetric(r, "compile_s")
        if math.isfinite(value):
            compile_s.setdefault((R.device(r), R.arch(r), R.cfg(r, "precision"), R.backend(r)), []).append(value)
    rows = []
    for (dev, arch_name, prec), vals in sorted(ratios.items(), key=lambda kv: tuple(map(str, kv[0]))):
        ct = [float(np.median(compile_s.get((dev, arch_name, prec, b), [math.nan]))) for b in ("torch", "jax")]
        geomean = float(np.exp(np.log(vals).mean()))
        rows.append([dev, arch_name, prec, len(vals), fmt(geomean), fmt(min(vals)), fmt(max(vals)), *map(fmt, ct)])
    return Table(
        "performance_backends",
        "Step time jax / torch at the same grid point (geometric mean, range), and median compile/warm-up overhead",
        ["device", "arch", "precision", "points", "jax/torch", "min", "max", "torch compile s", "jax compile s"],
        rows,
    )
