"""S7: BiLSTM against LSTM: parameters per layer, step time and memory."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory, spec_object
from experiments.claims.cost.common import (
    architecture_ratio,
    bench_records,
    cap_cpu_memory,
    geometric_mean,
    kernel,
    pair_ratios,
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
    measure="params, step time and peak memory, BiLSTM vs LSTM, over the grid.",
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
            mems = {k: memory(v) for k, v in by(brecs, R.arch, R.seq_len, R.size, lambda r: R.cfg(r, "batch")).items()}
            mratios = []
            for (a, t, h, b), m in sorted(mems.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
                other = mems.get(("lstm", t, h, b))
                if a == "bilstm" and other and math.isfinite(m) and math.isfinite(other) and other > 0:
                    mratios.append(m / other)
            if mratios:
                boot_m = geometric_mean(mratios)
                j = judge_single(boot_m, 2.0, null=1.0)
                parts.append(Part(f"{be}: memory BiLSTM/LSTM, {kern}", describe(boot_m), j.verdict, j.reason))
                summary.append(f"{be} {kern}: memory x{fmt(boot_m.value)}")
                panel.series.append(Series(f"memory ({be} {kern})", list(range(len(mratios))), mratios, style="s"))
            for (t, h, b), e in pairs:
                m_b, m_l = mems.get(("bilstm", t, h, b), math.nan), mems.get(("lstm", t, h, b), math.nan)
                table_rows.append([dev, be, kern, t, h, b, describe(e), fmt(m_b / m_l) if m_l else "nan"])
        panel.hlines = [(1.8, "claimed time 1.8"), (2.0, "claimed 2.0")]
        panels.append(panel)
        return cap_cpu_memory(parts, dev_recs, lambda p: "memory" in p.name), "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S7_bilstm_vs_lstm",
        "S7: BiLSTM/LSTM time and memory ratios per grid point",
        ["device", "backend", "kernel", "T", "H", "B", "time ratio", "memory ratio"],
        table_rows,
    )
    fig = FigureSpec("S7_bilstm_vs_lstm", "S7: BiLSTM/LSTM step-time and memory ratios over the grid.", panels)
    text = "Claimed: 2x the parameters per layer, 1.8-2x the training time, ~2x the memory (2 +- 25%)."
    return finish("S7", rows, parts, [table], [fig], text, recs)
