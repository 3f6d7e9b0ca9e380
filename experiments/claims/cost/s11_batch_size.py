"""S11: throughput and memory vs batch size."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import Timed, by, device_rows, finish, memory
from experiments.claims.cost.common import (
    SAVED_BYTES_NOTE,
    bench_records,
    cap_cpu_memory,
    has_saved_bytes,
    kernel,
    saved_median,
)
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record

FLAT = 1.05  # an exact memory ratio over the batch range below this is "does not grow"


@claim(
    id="S11",
    priority="P2",
    source="004, 001",
    statement="A larger batch trains faster per example; memory grows with batch size.",
    measure="examples/s and peak memory vs B.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S11")
    if not okr:
        return not_run("S11", "bench cells over B")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, legacy_parts, summary = [], [], []
        panel = Panel(f"{dev}: examples/s vs B", "B", "examples/s", logx=True, logy=True)
        # per backend and kernel: never a throughput ratio across two kernels
        for (be, kern, arch_name), grecs in by(dev_recs, R.backend, kernel, R.arch).items():
            groups = by(grecs, lambda r: int(R.cfg(r, "batch")))
            times = {b: Timed(v) for b, v in groups.items()}
            exact = all(has_saved_bytes(r) for r in grecs)  # saved bytes decide; a peak reading is capped on CPU
            mem = {b: saved_median(v) if exact else memory(v) for b, v in groups.items()}
            measure = "saved bytes" if exact else "peak reading"
            bs = sorted(times)
            for b in bs:
                row = [dev, f"{be} {kern}", arch_name, b, fmt(b / times[b].value), fmt(mem[b] / 2**20), measure]
                table_rows.append(row)
            if len(bs) < 2:
                continue
            b0, b1 = bs[0], bs[-1]
            scale = b1 / b0
            thr = (times[b0] / times[b1]).map(lambda x, scale=scale: x * scale)
            j = judge_direction(thr, null=1.0, what=f"throughput B={b1} / B={b0}")
            parts.append(Part(f"{be} {kern}: {arch_name} throughput", describe(thr), j.verdict, j.reason))
            m0, m1 = mem[b0], mem[b1]
            if math.isfinite(m0) and math.isfinite(m1) and m0 > 0:
                what = f"{measure} B={b1} / B={b0}"
                # saved bytes are exact (no interval): growth under FLAT counts as none, not as undecided
                j = judge_direction(Estimate(m1 / m0), null=FLAT if exact else 1.0, what=what)
                part = Part(f"{be} {kern}: {arch_name} memory", fmt(m1 / m0), j.verdict, j.reason)
                (parts if exact else legacy_parts).append(part)
            summary.append(f"{be} {kern}/{arch_name}: throughput x{fmt(thr.value)} from B={b0} to {b1}")
            panel.series.append(Series(f"{arch_name} ({be} {kern})", bs, [b / times[b].value for b in bs]))
        panels.append(panel)
        legacy = [r for r in dev_recs if not has_saved_bytes(r)]
        return parts + cap_cpu_memory(legacy_parts, legacy), "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S11_batch",
        "S11: throughput and memory vs batch size",
        ["device", "backend / kernel", "arch", "B", "examples/s", "MiB", "memory measure"],
        table_rows,
    )
    fig = FigureSpec("S11_batch", "S11: training throughput (examples/s) vs batch size.", panels)
    text = "Claimed: a larger batch trains faster per example; memory grows with batch size. " + SAVED_BYTES_NOTE
    return finish("S11", rows, parts, [table], [fig], text, recs)
