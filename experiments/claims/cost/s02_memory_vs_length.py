"""S2: the LSTM's training-step memory grows linearly with T."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory, memory_kind
from experiments.claims.cost.common import (
    SAVED_BYTES_NOTE,
    bench_records,
    cap_cpu_memory,
    kernel,
    saved_median,
    split_memory_measure,
    storage_tables,
    storage_text,
    with_memory,
)
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
    measure="bytes saved for the backward pass of one training step vs T, per backend and kernel.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S2")
    lstm, transformer = with_memory(okr, "lstm"), with_memory(okr, "transformer")
    if not lstm:
        return not_run("S2", "bench cells of the LSTM over T with a memory reading")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def growth(
        dev: str,
        label: str,
        trecs: dict[int, list[Record]],
        agg: Callable[[Sequence[Record]], float],
        panel: Panel,
        what: str,
    ) -> tuple[list[Part], str]:
        """Parts for one curve: the ratio at each T against T/T0, and the fitted exponent (claimed 1)."""
        mem = {t: agg(v) for t, v in trecs.items()}
        ts = sorted(t for t in mem if math.isfinite(mem[t]))
        if len(ts) < 2:
            return [], ""
        t0, parts = ts[0], []
        for t in ts:
            ratio = mem[t] / mem[t0]
            table_rows.append([dev, label, t, what, fmt(mem[t] / 2**20), fmt(ratio), fmt(t / t0)])
            if t != t0:
                j = judge_single(Estimate(ratio), t / t0, null=1.0)
                parts.append(Part(f"{label}: T={t}", fmt(ratio), j.verdict, j.reason))
        fit = loglog_fit(ts, [mem[t] for t in ts])
        j = judge_single(fit.estimate(), 1.0, null=0.0)
        parts.append(Part(f"{label}: exponent of {what} vs T", describe(fit.estimate()), j.verdict, j.reason))
        panel.series.append(Series(f"lstm ({label})", ts, [mem[t] / mem[t0] for t in ts]))
        panel.series.append(Series(f"linear ({label})", ts, [t / t0 for t in ts], style="--"))
        return parts, f"{label}: x{fmt(mem[ts[-1]] / mem[t0])} from T={t0} to {ts[-1]} (exponent {fmt(fit.slope)})"

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts: list[Part] = []
        summary = []
        title = f"{dev}: LSTM training-step memory / memory at the smallest T"
        panel = Panel(title, "T", "ratio", logx=True, logy=True)
        exact, legacy = split_memory_measure(dev_recs)
        # saved_bytes decides, per backend and kernel: oneDNN's workspace and jax's residuals are other quantities
        for (be, kern), grecs in by(exact, R.backend, kernel).items():
            got, said = growth(dev, f"{be} {kern}", by(grecs, R.seq_len), saved_median, panel, "saved bytes")
            parts += got
            summary += [said] if said else []
        legacy_parts: list[Part] = []
        for be, brecs in by(legacy, R.backend).items():  # schema 1: the peak reading, as before (capped on CPU)
            got, said = growth(dev, be, by(brecs, R.seq_len), memory, panel, memory_kind(brecs))
            legacy_parts += got
            summary += [said] if said else []
        # the Transformer's exponent beside it, for contrast: the claim names the LSTM only
        for (be, kern), grecs in by([r for r in transformer if R.device(r) == dev], R.backend, kernel).items():
            mem = {t: saved_median(v) for t, v in by(grecs, R.seq_len).items()}
            ts = sorted(t for t in mem if math.isfinite(mem[t]))
            if len(ts) >= 2:
                fit = loglog_fit(ts, [mem[t] for t in ts])
                # plain attention stores the T x T probabilities (S10's claim: quadratic); a fused kernel does not
                j = judge_single(fit.estimate(), 1.0 if kern == "fused_attention" else 2.0, null=0.0)
                why = f"shown beside the LSTM, not deciding (the claim names the LSTM only): {j.reason}"
                name = f"{be} {kern}: Transformer exponent of saved bytes vs T"
                parts.append(Part(name, describe(fit.estimate()), j.verdict, why, decides=False))
        panels.append(panel)
        return parts + cap_cpu_memory(legacy_parts, legacy), "; ".join(summary)

    rows, parts = device_rows(lstm, judge)
    table = Table(
        "S2_memory_vs_T",
        "S2: LSTM training-step memory vs T (saved bytes per backend and kernel; schema-1 records: peak reading)",
        ["device", "backend / kernel", "T", "measure", "MiB", "ratio", "claimed (T/T0)"],
        table_rows,
    )
    fig = FigureSpec(
        "S2_memory_vs_T",
        "S2: LSTM training-step memory vs T (ratio to the smallest T; dashed: the claimed linear growth).",
        panels,
    )
    text = "LSTM training-step memory over T. " + SAVED_BYTES_NOTE + storage_text([*lstm, *transformer])
    tables = [table, *storage_tables("S2", [*lstm, *transformer])]
    return finish("S2", rows, parts, tables, [fig], text, recs)
