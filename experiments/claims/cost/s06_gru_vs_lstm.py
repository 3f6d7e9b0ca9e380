"""S6: GRU against LSTM: parameters and step time."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, param_count
from experiments.claims.cost.common import architecture_ratio, bench_records, geometric_mean, pair_ratios
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_range, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="S6",
    priority="P1",
    source="002 (Q3)",
    statement="GRU has 3 weight blocks to LSTM's 4 (25% fewer parameters) and LSTM is about 10–15% slower per step.",
    measure="parameter counts; step-time ratio LSTM/GRU over the grid.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S6")
    if not okr:
        return not_run("S6", "bench cells of lstm and gru over a grid")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        est = architecture_ratio(dev_recs, "gru", "lstm", param_count)
        if est is not None:
            j = judge_single(est, 0.75, null=1.0)
            parts.append(Part("parameters GRU/LSTM", describe(est), j.verdict, j.reason))
            summary.append(f"params GRU/LSTM {fmt(est.value)}")
        panel = Panel(f"{dev}: step-time ratio LSTM / GRU", "grid point", "ratio")
        for be, brecs in by(dev_recs, R.backend).items():
            pairs = pair_ratios(brecs, "lstm", "gru")
            if not pairs:
                continue
            boot = geometric_mean([e.value for _, e in pairs])
            j = judge_range(boot, (1.10, 1.15), null=1.0)
            parts.append(
                Part(
                    f"{be}: time LSTM/GRU (geometric mean over {len(pairs)} points)",
                    describe(boot),
                    j.verdict,
                    j.reason,
                )
            )
            summary.append(f"{be}: LSTM/GRU time {describe(boot)}")
            for (t, h, b), e in pairs:
                table_rows.append([dev, be, t, h, b, describe(e)])
            panel.series.append(Series(be, list(range(len(pairs))), [e.value for _, e in pairs], style="o"))
        panel.hlines = [(1.10, "claimed 1.10"), (1.15, "claimed 1.15"), (1.0, "equal")]
        panels.append(panel)
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S6_lstm_vs_gru",
        "S6: LSTM/GRU step-time ratio per grid point",
        ["device", "backend", "T", "H", "B", "LSTM/GRU"],
        table_rows,
    )
    fig = FigureSpec("S6_lstm_vs_gru", "S6: LSTM/GRU step-time ratio over the grid (claimed 1.10-1.15).", panels)
    text = (
        "Claimed: the GRU has 3 weight blocks to the LSTM's 4 (25% fewer parameters) and the LSTM is 10-15% slower "
        "per step. The time part is a geometric mean over the grid with a bootstrap interval over grid points."
    )
    return finish("S6", rows, parts, [table], [fig], text, recs)
