"""S3: step time is O(T d^2): the exponent of time vs hidden size, per regime."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import Timed, by, device_rows, finish
from experiments.claims.cost.common import bench_records
from experiments.claims.registry import claim
from experiments.claims.stats import local_exponents, loglog_fit
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, PARTLY, REFUTED, Part, describe
from experiments.records import fields as R
from experiments.records.fields import Record

S3_RANGE = (1.5, 2.5)  # 2 +- 25%


def _regime_part(name: str, xs: list[float], ys: list[float], claimed: tuple[float, float], what: str) -> Part:
    """A scaling exponent claimed in ``claimed``: judged by the local exponents between consecutive
    grid points (a regime is where they lie in range) and the overall log-log fit."""
    local = local_exponents(xs, ys)
    fit = loglog_fit(xs, ys)
    if not local:
        return Part(name, "-", INCONCLUSIVE, "fewer than two points")
    lo_c, hi_c = claimed
    inside = [(a, b) for a, b, e in local if lo_c <= e <= hi_c]
    shown = ", ".join(f"{fmt(a)}-{fmt(b)}: {e:.2f}" for a, b, e in local)
    measured = f"fit {describe(fit.estimate())}; local {shown}"
    est = fit.estimate()
    _lo, hi = est.bounds()
    if hi < 0 or (max(e for _, _, e in local) <= 0):
        return Part(name, measured, REFUTED, f"{what} does not grow: exponent {fmt(fit.slope)}")
    if len(inside) == len(local):
        return Part(name, measured, CONFIRMED, f"every local exponent in [{lo_c}, {hi_c}]")
    if inside:
        start = min(a for a, _ in inside)
        end = max(b for _, b in inside)
        return Part(name, measured, PARTLY, f"exponent in [{lo_c}, {hi_c}] only for {what} {fmt(start)}..{fmt(end)}")
    return Part(name, measured, PARTLY, f"grows, but every local exponent outside [{lo_c}, {hi_c}]")


@claim(
    id="S3",
    priority="P1",
    source="002 (Q1)",
    statement="Time is O(T·d²): doubling the hidden size quadruples computation time.",
    measure="step time vs H in {64 … 2048} at fixed T, B; fitted exponent per regime.",
    family="cost",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S3")
    if not okr:
        return not_run("S3", "bench cells over H at fixed T and B")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        panel = Panel(f"{dev}: step time vs H", "H", "seconds", logx=True, logy=True)
        for (be, arch_name, t, b), grecs in by(
            dev_recs, R.backend, R.arch, R.seq_len, lambda r: R.cfg(r, "batch")
        ).items():
            times = {h: Timed(v) for h, v in by(grecs, R.size).items()}
            hs = sorted(times)
            ys = [times[h].value for h in hs]
            for h in hs:
                table_rows.append([dev, be, arch_name, t, b, h, fmt(times[h].value)])
            if len(hs) < 2:
                continue
            part = _regime_part(f"{be}: {arch_name} T={t} B={b}", hs, ys, S3_RANGE, "H")
            parts.append(part)
            summary.append(f"{be}/{arch_name}: exponent {fmt(loglog_fit(hs, ys).slope)}")
            panel.series.append(Series(f"{arch_name} ({be})", hs, ys))
            ref = [ys[0] * (h / hs[0]) ** 2 for h in hs]
            panel.series.append(Series(f"H^2 from {arch_name} ({be})", hs, ref, style=":"))
        panels.append(panel)
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "S3_time_vs_H",
        "S3: step time vs hidden size",
        ["device", "backend", "arch", "T", "B", "H", "step s"],
        table_rows,
    )
    fig = FigureSpec(
        "S3_time_vs_H", "S3: step time vs H (log-log), dotted: the claimed H^2 from the smallest H.", panels
    )
    text = (
        "Claimed: time is O(T d^2), doubling H quadruples time: an exponent of 2 (confirmed within [1.5, 2.5]). "
        "Local exponents between consecutive H show the regimes: small H is dominated by per-step overhead."
    )
    return finish("S3", rows, parts, [table], [fig], text, recs)
