"""L13: Adam at lr=0.1 oscillates or diverges; lr=1e-3 converges."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    curve,
    failed,
    finish,
    is_classification,
    paired,
    rel_error,
    seed_mean,
    seeds_note,
    task_label,
    train_records,
)
from experiments.claims.readings import L13_CONVERGES
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, wilson
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


def converged(rec: Record) -> bool:
    """Learnt: half of the possible gain over the trivial baseline (MSE at most half the baseline's;
    accuracy at least halfway from the baseline to 1), and not diverged."""
    if failed(rec):
        return False
    return rel_error(rec) <= L13_CONVERGES.value


def oscillation(rec: Record) -> float:
    """Total upward movement of the validation error between consecutive evaluations, over the trivial
    baseline's error: 0 for a run whose error only falls; a diverged run counts 1 (all the way back up)."""
    if failed(rec):
        return 1.0
    _, values = curve(rec, "val_metric")
    base = R.fmetric(rec, "baseline_metric")
    if len(values) < 2 or not math.isfinite(base):
        return math.nan
    errs = [1.0 - v for v in values] if is_classification(rec) else values
    base_err = 1.0 - base if is_classification(rec) else base
    ups = sum(max(0.0, b - a) for a, b in itertools.pairwise(errs) if math.isfinite(a) and math.isfinite(b))
    return ups / base_err if base_err else math.nan


@claim(
    id="L13",
    priority="P1",
    source="003 (ex. 2), 002 (Q5)",
    statement="Adam at lr=0.1 oscillates or diverges; lr=1e-3 converges.",
    measure="learning-rate sweep {1e-4, 1e-3, 1e-2, 1e-1}: loss curves, divergence rate.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L13")
    if not okr:
        return not_run("L13", "train cells of an Adam learning-rate sweep {1e-4, 1e-3, 1e-2, 1e-1}")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        lrs = by(dev_recs, lambda r: float(R.opt(r, "lr")))
        for lr, lrecs in lrs.items():
            n = len(lrecs)
            div = wilson(sum(failed(r) for r in lrecs), n)
            conv = wilson(sum(converged(r) for r in lrecs), n)
            table_rows.append(
                [
                    dev,
                    lr,
                    n,
                    describe(div),
                    describe(conv),
                    describe(seed_mean(lrecs, oscillation)),
                    describe(seed_mean(lrecs, rel_error)),
                ]
            )
        if 0.1 in lrs:
            high = lrs[0.1]
            fail = wilson(sum(not converged(r) for r in high), len(high))
            j_fail = judge_direction(fail, null=0.5, what="share of runs that diverge or fail to converge")
            parts.append(
                Part(
                    "lr=0.1 diverges or fails to converge", describe(fail), j_fail.verdict, j_fail.reason, decides=False
                )
            )
            summary.append(f"lr=0.1: {sum(not converged(r) for r in high)}/{len(high)} fail")
            verdicts = [j_fail.verdict]
            osc = paired(high, lrs[1e-3], oscillation) if 1e-3 in lrs else Estimate(math.nan)
            if math.isfinite(osc.value):
                j_osc = judge_direction(osc, null=0.0, what="upward movement of the validation error, 0.1 - 1e-3")
                name = "lr=0.1 oscillates more than lr=1e-3"
                parts.append(Part(name, describe(osc), j_osc.verdict, j_osc.reason, decides=False))
                summary.append(f"oscillation 0.1 - 1e-3: {fmt(osc.value)}")
                verdicts.append(j_osc.verdict)
            # The claim's main point is a disjunction: either part confirmed confirms it.
            either = CONFIRMED if CONFIRMED in verdicts else REFUTED if set(verdicts) == {REFUTED} else INCONCLUSIVE
            parts.append(
                Part(
                    "lr=0.1 oscillates or diverges",
                    " / ".join(verdicts),
                    either,
                    "either of the two parts above",
                    core=True,
                )
            )
        if 1e-3 in lrs:
            conv = wilson(sum(converged(r) for r in lrs[1e-3]), len(lrs[1e-3]))
            j = judge_direction(conv, null=0.5, what="share of runs that converge")
            parts.append(Part("lr=1e-3 converges", describe(conv), j.verdict, j.reason))
            summary.append(f"lr=1e-3: {sum(converged(r) for r in lrs[1e-3])}/{len(lrs[1e-3])} converge")
        for task, trecs in by(dev_recs, task_label).items():
            panel = Panel(f"{dev} {task}: training loss", "step", "loss", logy=True)
            for lr, lrecs in by(trecs, lambda r: float(R.opt(r, "lr"))).items():
                cs = [curve(r, "train_loss") for r in lrecs]
                cs = [c for c in cs if c[0]]
                if not cs:
                    continue
                n = min(len(c[1]) for c in cs)
                median = np.nanmedian(np.array([c[1][:n] for c in cs]), axis=0)
                panel.series.append(Series(f"lr={lr:g}", cs[0][0][:n], median.tolist(), style="-"))
            if panel.series:
                panels.append(panel)
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "L13_learning_rate",
        "L13: Adam learning-rate sweep: share of runs that diverged and that converged (95% Wilson interval), "
        "the validation error's upward movement (oscillation), and error over the trivial baseline's",
        ["device", "lr", "runs", "diverged", "converged", "oscillation", "error/baseline"],
        table_rows,
    )
    fig = FigureSpec("L13_learning_curves", "L13: training-loss curves by learning rate (median over seeds).", panels)
    text = (
        "Claimed: Adam at lr=0.1 oscillates or diverges; lr=1e-3 converges. A run converges when its final "
        "validation error is at most half the trivial baseline's and it did not diverge. lr=0.1 diverges when most "
        "of its runs fail to converge (Wilson 95% interval against one half); it oscillates when its validation "
        "error moves back up more, over training, than at lr=1e-3 (the summed increases between evaluations over "
        f"the baseline's error, paired by task and seed). Either confirms the first half of the claim. "
        f"{seeds_note(okr)}."
    )
    return finish("L13", rows, parts, [table], [fig], text, recs)
