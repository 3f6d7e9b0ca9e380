"""S10: Transformer memory vs T, plain against fused attention."""

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
from experiments.claims.stats import Estimate, local_exponents
from experiments.claims.verdict import INCONCLUSIVE, Part, judge_direction, judge_single
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
    measure=(
        "bytes saved for the backward pass vs T with plain attention and with the framework's fused attention, "
        "per backend and kernel."
    ),
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S10")
    okr = with_memory(okr, "transformer")
    if not okr:
        return not_run("S10", "bench cells of the Transformer over T with memory readings")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def exponent_part(
        dev: str, label: str, attn: str, grecs: list[Record], agg: Callable[[Sequence[Record]], float], panel: Panel
    ) -> tuple[list[Part], dict[int, float]]:
        """The local exponent at the largest T of one curve (claimed 2: the T x T matrix); plain is core."""
        trecs = by(grecs, R.seq_len)
        mem = {t: agg(v) for t, v in trecs.items()}
        ts = sorted(t for t in mem if math.isfinite(mem[t]))
        for t in ts:
            table_rows.append([dev, label, attn, R.exec_path(trecs[t][0]), t, fmt(mem[t] / 2**20)])
        if len(ts) < 2:
            if len(trecs) >= 2:
                why = "fewer than two usable memory readings (a CPU RSS delta of 0: the step reused freed pages)"
                return [Part(f"{label}: {attn} attention", "-", INCONCLUSIVE, why)], {}
            return [], {}
        top = local_exponents(ts, [mem[t] for t in ts])[-1][2]
        j = judge_single(Estimate(top), 2.0, null=1.0)
        name = f"{label}: {attn} attention, exponent T={ts[-2]}->{ts[-1]}"
        panel.series.append(Series(f"{attn} ({label})", ts, [mem[t] / 2**20 for t in ts]))
        return [Part(name, f"{top:.2f}", j.verdict, j.reason, core=(attn == "plain"))], {t: mem[t] for t in ts}

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, legacy_parts, summary = [], [], []
        panel = Panel(f"{dev}: Transformer training-step memory vs T", "T", "MiB", logx=True, logy=True)
        exact, legacy = split_memory_measure(dev_recs)
        for be, brecs in by(exact, R.backend).items():  # saved bytes decide, per backend and kernel
            curves: dict[str, dict[int, float]] = {}
            for (attn, kern), grecs in by(brecs, _attention_kind, kernel).items():
                got, curves[attn] = exponent_part(dev, f"{be} {kern}", attn, grecs, saved_median, panel)
                parts += got
                summary += [f"{be} {kern}: {p.measured}" for p in got]
            parts += _plain_against_fused(be, curves.get("plain", {}), curves.get("fused", {}))
        for (be, attn), grecs in by(legacy, R.backend, _attention_kind).items():  # schema 1: the peak reading
            got, _ = exponent_part(dev, be, attn, grecs, memory, panel)
            legacy_parts += got
            summary += [f"{be}/{attn}: exponent {p.measured} at the largest T ({memory_kind(grecs)})" for p in got]
        panels.append(panel)
        return parts + cap_cpu_memory(legacy_parts, legacy), "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S10_transformer_memory",
        "S10: Transformer training-step memory vs T, plain and fused attention (saved bytes; schema 1: peak)",
        ["device", "backend / kernel", "attention", "execution path", "T", "MiB"],
        table_rows,
    )
    fig = FigureSpec(
        "S10_transformer_memory",
        "S10: Transformer training-step memory vs T, plain (materialised T x T attention) and fused attention.",
        panels,
    )
    text = (
        "Claimed: Transformer memory grows quadratically with T (the attention matrix): a local exponent of 2 "
        "(within [1.5, 2.5]) at the largest T, against 1 for linear growth. Plain attention is the claim's "
        "mechanism (core); fused attention, which need not store the T x T matrix, is judged beside it, and per "
        "backend plain attention's growth over fused attention's says whether the matrix is what grows. "
        + SAVED_BYTES_NOTE
        + storage_text(okr)
    )
    return finish("S10", rows, parts, [table, *storage_tables("S10", okr)], [fig], text, recs)


SAME_STORAGE = 0.01  # a fused path whose saved bytes are within 1% of the plain path's at every T stores the same


def _plain_against_fused(be: str, plain: dict[int, float], fused: dict[int, float]) -> list[Part]:
    """Plain attention's growth over fused attention's between the two largest T both ran (claimed > 1:
    the stored probabilities are what grows). A fused path that saves what the plain one saves at every T
    (jax on CPU) is a finding about that path, shown but not deciding: it tests nothing about the matrix."""
    ts = sorted(set(plain) & set(fused))
    if len(ts) < 2:
        return []
    t0, t1 = ts[-2], ts[-1]
    same = max(abs(fused[t] / plain[t] - 1) for t in ts)
    growth = (plain[t1] / plain[t0]) / (fused[t1] / fused[t0])
    name = f"{be}: plain / fused growth T={t0}->{t1}"
    if same <= SAME_STORAGE:
        why = (
            f"finding: the fused path saves what the plain path saves (within {fmt(100 * same)}% at T="
            f"{', '.join(map(str, ts))}): it stores the T x T probabilities too, so it cannot test the mechanism"
        )
        return [Part(name, fmt(growth), INCONCLUSIVE, why, decides=False)]
    j = judge_direction(Estimate(growth), null=1.0, what="plain growth over fused growth")
    return [Part(name, fmt(growth), j.verdict, j.reason)]
