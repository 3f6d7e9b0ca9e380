"""S4: memory is O(T d) per sample, against the analytic count of stored activations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory, spec_object
from experiments.claims.cost.common import bench_records, cap_cpu_memory, memory_records
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, loglog_fit
from experiments.claims.verdict import Part, describe, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record


def _bytes_per_value(rec: Record) -> int:
    return {"float64": 8, "float32": 4, "tf32": 4, "bfloat16": 2}.get(str(R.cfg(rec, "precision")), 4)


@claim(
    id="S4",
    priority="P2",
    source="002 (Q1)",
    statement="Memory is O(T·d) per sample (T=1000, H=256 → 256,000 stored values per sample).",
    measure="peak memory vs T and H against the analytic count of stored activations.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S4")
    okr = memory_records(okr)
    if not okr:
        return not_run("S4", "bench cells with memory readings over T and H")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        panel = Panel(f"{dev}: measured / analytic stored activations", "T*H", "bytes / (values*size)", logx=True)
        for (be, arch_name), grecs in by(dev_recs, R.backend, R.arch).items():
            xs, ys = [], []
            for r in sorted(grecs, key=lambda r: (R.seq_len(r), R.size(r))):
                spec = spec_object(r)
                b, t, h = int(R.cfg(r, "batch")), int(R.seq_len(r)), int(R.size(r))
                analytic = spec.stored_activations(b, t) * _bytes_per_value(r)
                measured = R.fmetric(r, "peak_mem_bytes")
                per_sample = measured / _bytes_per_value(r) / b
                table_rows.append(
                    [
                        dev,
                        be,
                        arch_name,
                        b,
                        t,
                        h,
                        fmt(measured / 2**20),
                        fmt(analytic / 2**20),
                        fmt(measured / analytic),
                        fmt(per_sample),
                        t * h,
                    ]
                )
                xs.append(t * h)
                ys.append(measured / analytic)
            for axis, key, other in (("T", R.seq_len, R.size), ("H", R.size, R.seq_len)):
                for fixed_val, frecs in by(grecs, other).items():
                    pts = {k: memory(v) for k, v in by(frecs, key).items()}
                    if len(pts) < 2:
                        continue
                    fit = loglog_fit(list(pts), list(pts.values()))
                    j = judge_single(fit.estimate(), 1.0, null=0.0)
                    parts.append(
                        Part(
                            f"{be}: {arch_name} exponent vs {axis} (other={fixed_val})",
                            describe(fit.estimate()),
                            j.verdict,
                            j.reason,
                        )
                    )
            at = [r for r in grecs if R.seq_len(r) == 1000 and R.size(r) == 256]
            if at:
                per_sample = float(
                    np.median(
                        [R.fmetric(r, "peak_mem_bytes") / _bytes_per_value(r) / int(R.cfg(r, "batch")) for r in at]
                    )
                )
                j = judge_single(Estimate(per_sample), 256_000, null=0.0)
                parts.append(
                    Part(f"{be}: {arch_name} values per sample at T=1000, H=256", fmt(per_sample), j.verdict, j.reason)
                )
                summary.append(
                    f"{be}/{arch_name}: {fmt(per_sample)} values per sample at T=1000, H=256 (claimed 256,000)"
                )
            panel.series.append(Series(f"{arch_name} ({be})", xs, ys, style="o"))
        panels.append(panel)
        return cap_cpu_memory(parts, dev_recs), "; ".join(summary) or "exponents only"

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S4_memory_vs_analytic",
        "S4: measured peak memory vs the analytic count of stored activations",
        [
            "device",
            "backend",
            "arch",
            "B",
            "T",
            "H",
            "measured MiB",
            "analytic MiB",
            "ratio",
            "values per sample",
            "T*H",
        ],
        table_rows,
    )
    fig = FigureSpec(
        "S4_memory_vs_analytic", "S4: measured peak memory over the analytic stored-activation bytes.", panels
    )
    text = "Claimed: memory is O(T d) per sample; 256,000 stored values per sample at T=1000, H=256."
    return finish("S4", rows, parts, [table], [fig], text, recs)
