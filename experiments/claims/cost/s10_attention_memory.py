"""S10: Transformer memory vs T, plain against fused attention."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory
from experiments.claims.cost.common import bench_records, cap_cpu_memory, memory_records
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, local_exponents
from experiments.claims.verdict import INCONCLUSIVE, Part, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record


def _attention_kind(rec: Record) -> str:
    used = R.exec_path(rec).lower()
    asked = str(R.cfg(rec, "path", ""))
    if asked == "on" or any(k in used for k in ("fused", "flash", "sdpa", "cudnn_attention", "efficient")):
        return "fused"
    return "plain"


@claim(
    id="S10",
    priority="P1",
    source="004",
    statement="Transformer memory grows quadratically with sequence length (the attention matrix).",
    measure="peak memory vs T with plain attention and with the framework's fused attention.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S10")
    okr = memory_records(okr, "transformer")
    if not okr:
        return not_run("S10", "bench cells of the Transformer over T with memory readings")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        panel = Panel(f"{dev}: Transformer peak memory vs T", "T", "MiB", logx=True, logy=True)
        for (be, attn), grecs in by(dev_recs, R.backend, _attention_kind).items():
            mem = {t: memory(v) for t, v in by(grecs, R.seq_len).items()}
            ts = sorted(t for t in mem if math.isfinite(mem[t]))
            for t in ts:
                table_rows.append([dev, be, attn, R.exec_path(by(grecs, R.seq_len)[t][0]), t, fmt(mem[t] / 2**20)])
            if len(ts) < 2:
                if len(by(grecs, R.seq_len)) >= 2:
                    why = "fewer than two usable memory readings (a CPU RSS delta of 0: the step reused freed pages)"
                    parts.append(Part(f"{be}: {attn} attention", "-", INCONCLUSIVE, why))
                continue
            local = local_exponents(ts, [mem[t] for t in ts])
            top = local[-1][2]
            j = judge_single(Estimate(top), 2.0, null=1.0)
            parts.append(
                Part(
                    f"{be}: {attn} attention, exponent T={ts[-2]}->{ts[-1]}",
                    f"{top:.2f}",
                    j.verdict,
                    j.reason,
                    core=(attn == "plain"),
                )
            )
            summary.append(f"{be}/{attn}: exponent {top:.2f} at the largest T")
            panel.series.append(Series(f"{attn} ({be})", ts, [mem[t] / 2**20 for t in ts]))
        panels.append(panel)
        return cap_cpu_memory(parts, dev_recs), "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S10_transformer_memory",
        "S10: Transformer training-step peak memory vs T, plain and fused attention",
        ["device", "backend", "attention", "execution path", "T", "MiB"],
        table_rows,
    )
    fig = FigureSpec(
        "S10_transformer_memory",
        "S10: Transformer peak memory vs T, plain (materialised T x T attention) and fused attention.",
        panels,
    )
    text = (
        "Claimed: Transformer memory grows quadratically with T (the attention matrix): a local exponent of 2 "
        "(within [1.5, 2.5]) at the largest T, against 1 for linear growth. Plain attention is the claim's "
        "mechanism (core); fused attention, which never stores the T x T matrix, is reported beside it."
    )
    return finish("S10", rows, parts, [table], [fig], text, recs)
