"""S6: GRU against LSTM: parameters and step time, per backend and per kernel.

A step-time ratio is only about the architectures when both ran the same kind of kernel. torch's
CPU LSTM runs oneDNN's fused RNN primitive by default while its GRU, which oneDNN has no kernel
for in torch, runs ATen's per-step ops: that ratio measures the kernels as much as the cells. So
the records are split by backend AND kernel (``kernel``), and each pair of kernels is its own row,
never pooled: "aten vs aten" (like with like), "onednn-LSTM vs aten-GRU" (mixed: what a torch user
gets by default on CPU), "scan vs scan" (jax).
"""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, param_count
from experiments.claims.cost.common import architecture_ratio, bench_records, geometric_mean, kernel, pair_ratios
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_range, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record

CLAIMED = (1.10, 1.15)  # LSTM / GRU step time
# Mixed pairs with a known meaning: the kernels torch picks by itself on CPU.
DEFAULT_MIX = {("torch", "onednn", "aten"): "what torch runs by default on CPU"}


def kernel_pairs(lstm: set[str], gru: set[str]) -> list[tuple[str, str]]:
    """(LSTM kernel, GRU kernel) rows: each kernel both ran, like with like; an LSTM kernel no GRU
    ran, against each kernel the GRU did run (mixed)."""
    pairs = [(k, k) for k in sorted(lstm & gru)]
    pairs += [(k, g) for k in sorted(lstm - gru) for g in sorted(gru)]
    return pairs


def pair_label(backend: str, lstm_kernel: str, gru_kernel: str) -> str:
    if lstm_kernel == gru_kernel:
        return f"{backend} {lstm_kernel} vs {gru_kernel}"
    return f"{backend} {lstm_kernel}-LSTM vs {gru_kernel}-GRU"


def pair_note(backend: str, lstm_kernel: str, gru_kernel: str) -> str:
    if lstm_kernel == gru_kernel:
        return "like with like"
    known = DEFAULT_MIX.get((backend, lstm_kernel, gru_kernel))
    return f"kernels differ: no GRU ran {lstm_kernel}" + (f"; {known}" if known else "")


@claim(
    id="S6",
    priority="P1",
    source="002 (Q3)",
    statement="GRU has 3 weight blocks to LSTM's 4 (25% fewer parameters) and LSTM is about 10–15% slower per step.",
    measure="parameter counts; step-time ratio LSTM/GRU over the grid, per backend and kernel.",
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
            kernels = by(brecs, R.arch, kernel)
            lstm = {k for a, k in kernels if a == "lstm"}
            gru = {k for a, k in kernels if a == "gru"}
            pairs_of = kernel_pairs(lstm, gru)
            like_measured = any(k == g for k, g in pairs_of)
            for k, g in pairs_of:
                pairs = pair_ratios(kernels[("lstm", k)] + kernels[("gru", g)], "lstm", "gru")
                if not pairs:
                    continue
                label = pair_label(be, k, g)
                boot = geometric_mean([e.value for _, e in pairs])
                j = judge_range(boot, CLAIMED, null=1.0)
                # A mixed pair measures the kernels too: it decides only where no like-with-like pair
                # of this backend answers the architecture question (its name says the kernels differ).
                decides = k == g or not like_measured
                name = f"{label}: time LSTM/GRU ({pair_note(be, k, g)}; geometric mean over {len(pairs)} points)"
                parts.append(Part(name, describe(boot), j.verdict, j.reason, decides=decides))
                summary.append(f"{label}: LSTM/GRU time {describe(boot)}")
                for (t, h, b), e in pairs:
                    table_rows.append([dev, be, f"{k} / {g}", t, h, b, describe(e)])
                panel.series.append(Series(label, list(range(len(pairs))), [e.value for _, e in pairs], style="o"))
        panel.hlines = [(CLAIMED[0], "claimed 1.10"), (CLAIMED[1], "claimed 1.15"), (1.0, "equal")]
        panels.append(panel)
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S6_lstm_vs_gru",
        "S6: LSTM/GRU step-time ratio per grid point, backend and kernel (LSTM kernel / GRU kernel)",
        ["device", "backend", "kernels", "T", "H", "B", "LSTM/GRU"],
        table_rows,
    )
    caption = "S6: LSTM/GRU step-time ratio over the grid per backend and kernel (claimed 1.10-1.15)."
    fig = FigureSpec("S6_lstm_vs_gru", caption, panels)
    text = (
        "Claimed: the GRU has 3 weight blocks to the LSTM's 4 (25% fewer parameters) and the LSTM is 10-15% slower "
        "per step. The time part is a geometric mean over the grid with a bootstrap interval over grid points, one "
        "row per backend and pair of kernels, never pooled across them: torch's CPU LSTM runs oneDNN's fused RNN "
        "kernel by default and its GRU ATen's per-step ops, so 'onednn-LSTM vs aten-GRU' (what a torch user gets) "
        "measures the kernels as much as the cells, and 'aten vs aten' (oneDNN turned off for the LSTM) compares "
        "the architectures. A mixed pair decides the verdict only where its backend has no like-with-like pair. "
        "Schema-1 records name every torch cell 'aten'; their float32 CPU LSTMs ran oneDNN and are read so."
    )
    return finish("S6", rows, parts, [table], [fig], text, recs)
