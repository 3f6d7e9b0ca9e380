"""S7: BiLSTM against LSTM: parameters per layer, step time and memory."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory, spec_object
from experiments.claims.cost.common import (
    SAVED_BYTES_NOTE,
    architecture_ratio,
    bench_records,
    cap_cpu_memory,
    geometric_mean,
    kernel,
    pair_ratios,
    saved_median,
    split_memory_measure,
    storage_tables,
    storage_text,
)
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_range, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record


def _first_layer_params(rec: Record) -> int:
    schema = spec_object(rec).param_schema()
    return int(sum(math.prod(s) for name, s in schema.items() if "_l0" in name))


@claim(
    id="S7",
    priority="P1",
    source="002 (Q9)",
    statement=(
        "A bidirectional LSTM has 2x the parameters per layer, ~1.8–2x the training time and ~2x the memory of a "
        "unidirectional one."
    ),
    measure="params, step time and saved bytes (training step), BiLSTM vs LSTM on one kernel, over the grid.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S7")
    if not okr:
        return not_run("S7", "bench cells of bilstm and lstm over a grid")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        mem_parts: list[Part] = []  # decided from saved bytes
        legacy_parts: list[Part] = []  # schema-1 peak readings: capped on CPU (resident memory decides nothing)
        est = architecture_ratio(dev_recs, "bilstm", "lstm", _first_layer_params)
        if est is not None:
            j = judge_single(est, 2.0, null=1.0)
            parts.append(Part("parameters per layer BiLSTM/LSTM", describe(est), j.verdict, j.reason))
            summary.append(f"params/layer x{fmt(est.value)}")
        panel = Panel(f"{dev}: BiLSTM / LSTM", "grid point", "ratio")
        for (be, kern), brecs in by(dev_recs, R.backend, kernel).items():
            # like with like: both architectures on one kernel (torch: oneDNN or per-step ATen), never pooled
            pairs = pair_ratios(brecs, "bilstm", "lstm")
            if pairs:
                boot = geometric_mean([e.value for _, e in pairs])
                j = judge_range(boot, (1.8, 2.0), null=1.0)
                parts.append(Part(f"{be}: time BiLSTM/LSTM, {kern}", describe(boot), j.verdict, j.reason))
                summary.append(f"{be} {kern}: time x{fmt(boot.value)}")
                panel.series.append(
                    Series(f"time ({be} {kern})", list(range(len(pairs))), [e.value for _, e in pairs], style="o")
                )
            # memory: saved bytes where the records carry them (they decide), else the peak reading (schema 1)
            exact, legacy = split_memory_measure(brecs)
            ratios: dict[str, dict[tuple, float]] = {}
            for what, mrecs, agg in (("saved bytes", exact, saved_median), ("peak memory", legacy, memory)):
                ratios[what] = _memory_ratios(mrecs, agg)
                if not ratios[what]:
                    continue
                boot_m = geometric_mean(list(ratios[what].values()))
                j = judge_single(boot_m, 2.0, null=1.0)
                part = Part(f"{be}: {what} BiLSTM/LSTM, {kern}", describe(boot_m), j.verdict, j.reason)
                (mem_parts if what == "saved bytes" else legacy_parts).append(part)
                summary.append(f"{be} {kern}: {what} x{fmt(boot_m.value)}")
                series = list(ratios[what].values())
                panel.series.append(Series(f"{what} ({be} {kern})", list(range(len(series))), series, style="s"))
            peak = _memory_ratios(brecs, memory)  # every peak reading, shown (on CPU it decides nothing)
            for (t, h, b), e in pairs:
                shown = [fmt(r.get((t, h, b), math.nan)) for r in (ratios["saved bytes"], peak)]
                table_rows.append([dev, be, kern, t, h, b, describe(e), *shown])
        panel.hlines = [(1.8, "claimed time 1.8"), (2.0, "claimed 2.0")]
        panels.append(panel)
        legacy_recs = split_memory_measure(dev_recs)[1]
        return parts + mem_parts + cap_cpu_memory(legacy_parts, legacy_recs), "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S7_bilstm_vs_lstm",
        "S7: BiLSTM/LSTM time and memory ratios per grid point",
        [
            "device",
            "backend",
            "kernel",
            "T",
            "H",
            "B",
            "time ratio",
            "saved-bytes ratio",
            "peak-reading ratio (CPU: decides nothing)",
        ],
        table_rows,
    )
    fig = FigureSpec("S7_bilstm_vs_lstm", "S7: BiLSTM/LSTM step-time and memory ratios over the grid.", panels)
    text = (
        "Claimed: 2x the parameters per layer, 1.8-2x the training time, ~2x the memory (2 +- 25%). Time and "
        "memory ratios pair the two architectures on one backend and kernel. " + SAVED_BYTES_NOTE + storage_text(okr)
    )
    return finish("S7", rows, parts, [table, *storage_tables("S7", okr)], [fig], text, recs)


def _memory_ratios(recs: list[Record], agg: Callable[[Sequence[Record]], float]) -> dict[tuple, float]:
    """BiLSTM / LSTM memory (``agg`` of each point's records) at each (T, H, B) both ran."""
    mems = {k: agg(v) for k, v in by(recs, R.arch, R.seq_len, R.size, lambda r: R.cfg(r, "batch")).items()}
    out = {}
    for (a, t, h, b), m in mems.items():
        other = mems.get(("lstm", t, h, b), math.nan)
        if a == "bilstm" and math.isfinite(m) and math.isfinite(other) and other > 0:
            out[(t, h, b)] = m / other
    return out
