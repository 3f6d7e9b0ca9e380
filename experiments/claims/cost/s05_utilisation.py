"""S5: achieved fraction of peak FLOP/s, LSTM against Transformer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import Timed, by, device_rows, finish
from experiments.claims.cost.common import bench_records
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="S5",
    priority="P1",
    source="002 (Q1)",
    statement=(
        "LSTM leaves the GPU under-used because steps are sequential; Transformers process positions in parallel."
    ),
    measure=(
        "achieved FLOP/s as a fraction of the device's measured peak, LSTM vs Transformer, same T and parameter count."
    ),
    family="cost",
    about_gpu=True,
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S5")
    okr = [r for r in okr if math.isfinite(R.fmetric(r, "peak_fraction"))]
    if not okr:
        return not_run("S5", "bench cells with the achieved fraction of peak FLOP/s")
    table_rows: list[list] = []
    panels: list[Panel] = []
    extra_archs: set[str] = set()

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        panel = Panel(f"{dev}: achieved fraction of measured peak FLOP/s", "T", "fraction", logx=True, logy=True)
        for be, brecs in by(dev_recs, R.backend).items():
            frac = {
                k: float(np.median([R.fmetric(r, "peak_fraction") for r in v]))
                for k, v in by(brecs, R.arch, R.seq_len).items()
            }
            times = {k: Timed(v) for k, v in by(brecs, R.arch, R.seq_len).items()}
            # the claim's two first, then any other architecture in the grid (a column of their own)
            others = sorted({a for a, _ in frac} - {"lstm", "transformer"})
            extra_archs.update(others)
            for arch_name in ("lstm", "transformer", *others):
                ts = sorted(t for (a, t) in frac if a == arch_name)
                panel.series.append(Series(f"{arch_name} ({be})", ts, [frac[(arch_name, t)] for t in ts]))
            for t in sorted({t for (a, t) in frac if a == "lstm"} & {t for (a, t) in frac if a == "transformer"}):
                # A fraction of peak is FLOPs over time: its uncertainty is the step time's.
                value = frac[("transformer", t)] / frac[("lstm", t)]
                timing = times[("lstm", t)] / times[("transformer", t)]
                est = (
                    Estimate(value, value * timing.lo / timing.value, value * timing.hi / timing.value, 2)
                    if timing.has_ci
                    else Estimate(value)
                )
                j = judge_direction(est, null=1.0, what="Transformer/LSTM utilisation")
                parts.append(Part(f"{be}: T={t}", describe(est), j.verdict, j.reason))
                row = [dev, be, t, fmt(frac[("lstm", t)]), fmt(frac[("transformer", t)]), describe(est)]
                row.append(", ".join(f"{a} {fmt(frac[(a, t)])}" for a in others if (a, t) in frac) or "-")
                table_rows.append(row)
                summary.append(f"{be} T={t}: x{fmt(value)}")
        panels.append(panel)
        return parts, "Transformer/LSTM fraction of peak: " + ", ".join(summary)

    rows, parts = device_rows(okr, judge, about_gpu=True)
    table = Table(
        "S5_utilisation",
        "S5: achieved FLOP/s as a fraction of the device's measured GEMM peak",
        ["device", "backend", "T", "LSTM", "Transformer", "Transformer / LSTM"]
        + (["other architectures"] if extra_archs else []),
        table_rows if extra_archs else [row[:-1] for row in table_rows],  # the column only where it says something
    )
    fig = FigureSpec(
        "S5_utilisation", "S5: achieved fraction of the measured peak FLOP/s, LSTM vs Transformer.", panels
    )
    text = (
        "Claimed: the LSTM leaves the GPU under-used (sequential steps), the Transformer processes positions in "
        "parallel. Measured: FLOP/s from the specs' analytic counts over the median step time, as a fraction of "
        "a large GEMM's FLOP/s measured in the same run."
    )
    return finish("S5", rows, parts, [table], [fig], text, recs)
