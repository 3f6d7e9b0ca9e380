"""S2: the LSTM's training-step memory grows linearly with T."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory, memory_kind
from experiments.claims.cost.common import bench_records, cap_cpu_memory, memory_records
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, loglog_fit
from experiments.claims.verdict import Part, describe, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="S2",
    priority="P1",
    source="002 (Q1 table)",
    statement="LSTM memory grows linearly with T: 1x / 5x / 10x / 20x at the same T.",
    measure="peak device memory of one training step vs T.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S2")
    okr = memory_records(okr, "lstm")
    if not okr:
        return not_run("S2", "bench cells of the LSTM over T with a memory reading")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts: list[Part] = []
        summary = []
        panel = Panel(f"{dev}: LSTM peak memory / memory at the smallest T", "T", "ratio", logx=True, logy=True)
        for be, brecs in by(dev_recs, R.backend).items():
            mem = {t: memory(v) for t, v in by(brecs, R.seq_len).items()}
            ts = sorted(t for t in mem if math.isfinite(mem[t]))
            if len(ts) < 2:
                continue
            t0 = ts[0]
            for t in ts:
                ratio = mem[t] / mem[t0]
                table_rows.append(
                    [dev, be, t, memory_kind(by(brecs, R.seq_len)[t]), fmt(mem[t] / 2**20), fmt(ratio), fmt(t / t0)]
                )
                if t == t0:
                    continue
                j = judge_single(Estimate(ratio), t / t0, null=1.0)
                parts.append(Part(f"{be}: T={t}", fmt(ratio), j.verdict, j.reason))
            fit = loglog_fit(ts, [mem[t] for t in ts])
            j = judge_single(fit.estimate(), 1.0, null=0.0)
            parts.append(Part(f"{be}: exponent of memory vs T", describe(fit.estimate()), j.verdict, j.reason))
            summary.append(f"{be}: x{fmt(mem[ts[-1]] / mem[t0])} from T={t0} to {ts[-1]} (exponent {fmt(fit.slope)})")
            panel.series.append(Series(f"lstm ({be})", ts, [mem[t] / mem[t0] for t in ts]))
            panel.series.append(Series(f"linear ({be})", ts, [t / t0 for t in ts], style="--"))
        panels.append(panel)
        return cap_cpu_memory(parts, dev_recs), "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S2_memory_vs_T",
        "S2: LSTM peak memory of one training step vs T",
        ["device", "backend", "T", "memory kind", "MiB", "ratio", "claimed (T/T0)"],
        table_rows,
    )
    fig = FigureSpec(
        "S2_memory_vs_T",
        "S2: LSTM peak training-step memory vs T (ratio to the smallest T; dashed: the claimed linear growth).",
        panels,
    )
    text = (
        "Peak memory of one LSTM training step over T (GPU: the allocator's peak; CPU: the worker's peak "
        "resident memory above its level before the model was built)."
    )
    return finish("S2", rows, parts, [table], [fig], text, recs)
