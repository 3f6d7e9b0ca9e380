"""S1: training-step time vs sequence length, LSTM against Transformer."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import Timed, by, device_rows, finish, param_count
from experiments.claims.cost.common import bench_records
from experiments.claims.registry import claim
from experiments.claims.stats import divide
from experiments.claims.verdict import Part, describe, judge_direction, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record

S1_CLAIMED = {
    "lstm": {100: 1.0, 500: 5.0, 1000: 10.0, 2000: 20.0},
    "transformer": {100: 1.2, 500: 1.5, 1000: 2.0, 2000: 3.0},
}


@claim(
    id="S1",
    priority="P1",
    source="002 (Q1 table)",
    statement=(
        "Training time vs sequence length, relative to LSTM at T=100: LSTM 1x / 5x / 10x / 20x at T = 100 / 500 / "
        "1000 / 2000; Transformer 1.2x / 1.5x / 2x / 3x."
    ),
    measure=(
        "fwd+bwd step time of LSTM and Transformer of matched parameter count over T in {100, 500, 1000, 2000}, "
        "both backends."
    ),
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S1")
    if not okr:
        return not_run("S1", "bench cells of lstm and transformer over T")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts: list[Part] = []
        summary: list[str] = []
        rel_panel = Panel(f"{dev}: step time / LSTM's at the smallest T", "T", "ratio", logx=True, logy=True)
        abs_panel = Panel(f"{dev}: fwd+bwd step time", "T", "seconds", logx=True, logy=True)
        for be, brecs in by(dev_recs, R.backend).items():
            times = {k: Timed(v) for k, v in by(brecs, R.arch, R.seq_len).items()}
            lstm_ts = sorted(t for (a, t) in times if a == "lstm")
            ref_t = next((t for t in lstm_ts if t in S1_CLAIMED["lstm"]), None)
            if ref_t is None:
                continue
            ref = times[("lstm", ref_t)]
            base = S1_CLAIMED["lstm"][ref_t]
            # the claim's two first, then any other architecture in the grid (minGRU, minLSTM...): rows
            # and series of their own, judged against nothing (the source claims nothing of them)
            others = sorted({a for a, _ in times} - set(S1_CLAIMED))
            for arch_name in ("lstm", "transformer", *others):
                xs, ys = [], []
                for t in sorted(t for (a, t) in times if a == arch_name):
                    est = times[(arch_name, t)] / ref
                    xs.append(t)
                    ys.append(est.value)
                    claimed = S1_CLAIMED.get(arch_name, {}).get(t)
                    n_params = param_count(by(brecs, R.arch, R.seq_len)[(arch_name, t)][0])
                    table_rows.append(
                        [
                            dev,
                            be,
                            arch_name,
                            t,
                            n_params,
                            fmt(times[(arch_name, t)].value),
                            describe(est),
                            fmt(claimed / base) if claimed else "-",
                        ]
                    )
                    if claimed is None or (arch_name == "lstm" and t == ref_t):
                        continue
                    j = judge_single(est, claimed / base, null=1.0)
                    parts.append(Part(f"{be}: {arch_name} T={t}", describe(est), j.verdict, j.reason))
                rel_panel.series.append(Series(f"{arch_name} ({be})", xs, ys))
                abs_panel.series.append(Series(f"{arch_name} ({be})", xs, [times[(arch_name, t)].value for t in xs]))
            # The table's point: the LSTM's time grows with T much faster than the Transformer's.
            tf_ts = sorted(t for (a, t) in times if a == "transformer")
            common = sorted(set(lstm_ts) & set(tf_ts))
            if len(common) >= 2:
                lo_t, hi_t = common[0], common[-1]
                g_lstm = times[("lstm", hi_t)] / times[("lstm", lo_t)]
                g_tf = times[("transformer", hi_t)] / times[("transformer", lo_t)]
                est = divide(g_lstm, g_tf)
                j = judge_direction(est, null=1.0, what=f"growth LSTM/Transformer T={lo_t}->{hi_t}")
                parts.append(
                    Part(f"{be}: LSTM grows faster than Transformer", describe(est), j.verdict, j.reason, core=True)
                )
                summary.append(
                    f"{be}: T {lo_t}->{hi_t} LSTM x{fmt(g_lstm.value)}, Transformer x{fmt(g_tf.value)} "
                    f"(claimed x{fmt(S1_CLAIMED['lstm'][2000] / S1_CLAIMED['lstm'][100])}, "
                    f"x{fmt(S1_CLAIMED['transformer'][2000] / S1_CLAIMED['transformer'][100])} for 100->2000)"
                )
        for arch_name, color in (("lstm", "--"), ("transformer", ":")):
            pts = sorted(S1_CLAIMED[arch_name].items())
            rel_panel.series.append(
                Series(f"claimed {arch_name}", [p[0] for p in pts], [p[1] for p in pts], style=color)
            )
        panels.extend([rel_panel, abs_panel])
        return parts, "; ".join(summary) or "no LSTM reference at T=100"

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S1_time_vs_T",
        "S1: fwd+bwd step time vs T (ratio to the LSTM at the smallest T, 95% interval)",
        ["device", "backend", "arch", "T", "params", "step s (median)", "ratio", "claimed"],
        table_rows,
    )
    fig = FigureSpec(
        "S1_time_vs_T",
        "S1: training-step time vs sequence length, per architecture and backend "
        "(left: ratio to the LSTM at T=100 with the claimed ratios dashed; right: seconds).",
        panels,
    )
    text = (
        "Step time (forward + backward + optimizer step) of an LSTM and a Transformer of matched parameter "
        "count, over T, both backends; ratios to the LSTM at T=100."
    )
    return finish("S1", rows, parts, [table], [fig], text, recs)
