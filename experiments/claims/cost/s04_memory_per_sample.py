"""S4: memory is O(T d) per sample, against the analytic count of stored activations."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory
from experiments.claims.cost.common import (
    SAVED_BYTES_NOTE,
    analytic_bytes,
    bench_records,
    cap_cpu_memory,
    kernel,
    saved_bytes,
    saved_median,
    split_memory_measure,
    storage_tables,
    storage_text,
    value_bytes,
    with_memory,
)
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, loglog_fit
from experiments.claims.verdict import Part, describe, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record

CLAIMED_VALUES = 256_000  # stored values per sample at T=1000, H=256 (the source's example)


def _batch(rec: Record) -> int:
    return int(R.cfg(rec, "batch"))


def _peak(rec: Record) -> float:
    """One record's peak reading (schema 1 has no other measure)."""
    return R.fmetric(rec, "peak_mem_bytes")


@claim(
    id="S4",
    priority="P2",
    source="002 (Q1)",
    statement="Memory is O(T·d) per sample (T=1000, H=256 → 256,000 stored values per sample).",
    measure="bytes saved for the backward pass per sample vs T, H and B, against the analytic count of stored "
    "activations, per backend and kernel.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S4")
    okr = with_memory(okr)
    if not okr:
        return not_run("S4", "bench cells with memory readings over T and H")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def group_parts(
        dev: str,
        label: str,
        grecs: list[Record],
        value: Callable[[Record], float],
        agg: Callable[[Sequence[Record]], float],
        panel: Panel,
    ) -> tuple[list[Part], str]:
        """One (backend, kernel, arch) group measured by ``value`` (its points by ``agg``): the exponents of
        memory per sample vs T, H and B (claimed 1, 1 and 0), and the values per sample at T=1000, H=256."""
        parts, xs, ys = [], [], []
        for r in sorted(grecs, key=lambda r: (R.seq_len(r), R.size(r), _batch(r))):
            b, t, h = _batch(r), int(R.seq_len(r)), int(R.size(r))
            measured, analytic = value(r), analytic_bytes(r)
            row = [dev, label, b, t, h, fmt(measured / 2**20), fmt(analytic / 2**20), fmt(measured / analytic)]
            table_rows.append([*row, fmt(measured / value_bytes(r) / b), t * h])
            xs.append(t * h)
            ys.append(measured / analytic)
        axes = (
            ("T", R.seq_len, lambda r: (R.size(r), _batch(r))),
            ("H", R.size, lambda r: (R.seq_len(r), _batch(r))),
            ("B", _batch, lambda r: (R.seq_len(r), R.size(r))),
        )
        for axis, key, other in axes:
            for fixed_val, frecs in by(grecs, other).items():
                pts = {k: agg(v) / k if axis == "B" else agg(v) for k, v in by(frecs, key).items()}
                if len(pts) < 2:
                    continue
                est = loglog_fit(list(pts), list(pts.values())).estimate()
                measured = describe(est)
                if axis == "B":  # flat is the claim: the largest over the smallest per-sample memory, claimed 1
                    spread = max(pts.values()) / min(pts.values())
                    j = judge_single(Estimate(spread), 1.0, null=0.0)
                    measured = f"x{fmt(spread)} over B (exponent {measured})"
                else:
                    j = judge_single(est, 1.0, null=0.0)
                name = f"{label} exponent of memory per sample vs {axis} (other={fixed_val})"
                parts.append(Part(name, measured, j.verdict, j.reason))
        at = [r for r in grecs if R.seq_len(r) == 1000 and R.size(r) == 256]
        summary = ""
        if at:
            per_sample = float(np.median([value(r) / value_bytes(r) / _batch(r) for r in at]))
            j = judge_single(Estimate(per_sample), CLAIMED_VALUES, null=0.0)
            parts.append(Part(f"{label} values per sample at T=1000, H=256", fmt(per_sample), j.verdict, j.reason))
            summary = f"{label}: {fmt(per_sample)} values per sample at T=1000, H=256 (claimed 256,000)"
        panel.series.append(Series(label, xs, ys, style="o"))
        return parts, summary

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, legacy_parts, summary = [], [], []
        panel = Panel(f"{dev}: measured / analytic stored activations", "T*H", "bytes / (values*size)", logx=True)
        exact, legacy = split_memory_measure(dev_recs)
        for (be, kern, arch_name), grecs in by(exact, R.backend, kernel, R.arch).items():
            got, said = group_parts(
                dev, f"{be} {kern}: {arch_name} saved bytes", grecs, saved_bytes, saved_median, panel
            )
            parts += got
            summary += [said] if said else []
        for (be, arch_name), grecs in by(legacy, R.backend, R.arch).items():  # schema 1: the peak reading
            got, said = group_parts(dev, f"{be}: {arch_name}", grecs, _peak, memory, panel)
            legacy_parts += got
            summary += [said] if said else []
        panels.append(panel)
        return parts + cap_cpu_memory(legacy_parts, legacy), "; ".join(summary) or "exponents only"

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S4_memory_vs_analytic",
        "S4: measured memory (saved bytes; schema-1 records: peak reading) vs the analytic stored activations",
        ["device", "measure", "B", "T", "H", "measured MiB", "analytic MiB", "ratio", "values per sample", "T*H"],
        table_rows,
    )
    fig = FigureSpec(
        "S4_memory_vs_analytic", "S4: measured training-step memory over the analytic stored-activation bytes.", panels
    )
    text = (
        "Claimed: memory is O(T d) per sample; 256,000 stored values per sample at T=1000, H=256. Per sample is "
        "the measured bytes over the value size and the batch: linear in T and H, flat in B. "
        + SAVED_BYTES_NOTE
        + storage_text(okr)
    )
    return finish("S4", rows, parts, [table, *storage_tables("S4", okr)], [fig], text, recs)
