"""L13: Adam at lr=0.1 oscillates or diverges; lr=1e-3 converges.

Per task, 20 runs per learning rate, every outcome solve-or-not with a Wilson interval:
- *converged*: the run reached its task's solved level (``learnt``, the positive control's criterion);
- *oscillates*: the run's training loss moved back up, in the second half of training, more than it did
  in 95% of the lr=1e-3 runs of the same task (``oscillation``: the summed increases of the logged
  training loss over the run's loss range); a diverged or NaN run counts as oscillating.
The positive control: the learning rate the sizing run chose for the task must learn.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.budgets import choose, sizing_key
from experiments.claims.learning.common import (
    budget,
    criterion,
    curve,
    failed,
    finish,
    learnt,
    seeds_note,
    task_label,
    train_records,
)
from experiments.claims.learning.rules import control, gate, judged, require_runs, runs
from experiments.claims.registry import claim
from experiments.claims.stats import wilson
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record

HIGH, DEFAULT = 0.1, 1e-3
OSCILLATION_QUANTILE = 0.95


def oscillation(rec: Record) -> float:
    """The training loss's upward movement in the second half of training: the summed increases between
    consecutive logged points (window means), over the loss's range across the run. Infinite for a run
    that diverged or hit NaN."""
    if failed(rec):
        return math.inf
    _, values = curve(rec, "train_loss")
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 4:
        return math.nan
    span = max(values) - min(values)
    late = values[len(values) // 2 :]
    ups = sum(max(0.0, b - a) for a, b in itertools.pairwise(late))
    return ups / span if span > 0 else 0.0


def _lr(rec: Record) -> float:
    return float(R.opt(rec, "lr"))


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
    budgets = choose(records)
    table_rows: list[list] = []
    panels: list[Panel] = []
    sentences: list[str] = []

    def per_task(task: str, trecs: list[Record], dev: str) -> tuple[list[Part], list[str]]:
        lrs = by(trecs, _lr)
        sized = budgets.get(sizing_key(trecs[0]))
        ctrl_lr = sized.lr if sized is not None and sized.lr in lrs else DEFAULT
        ctrl = control(lrs.get(ctrl_lr, []), learnt, f"LSTM lr {fmt(ctrl_lr)}, {task}", criterion(trecs[0]),
                       budget(lrs.get(ctrl_lr, [])))  # fmt: skip
        sentences.append(ctrl.sentence())
        reference = [oscillation(r) for r in lrs.get(DEFAULT, []) if math.isfinite(oscillation(r))]
        limit = float(np.quantile(reference, OSCILLATION_QUANTILE)) if reference else math.nan

        def oscillates(r: Record) -> bool:
            return failed(r) or (math.isfinite(limit) and oscillation(r) > limit)

        for lr, lrecs in lrs.items():
            n = len(runs(lrecs))
            indices = [min(oscillation(r), 1e9) for r in lrecs]
            indices = [v for v in indices if math.isfinite(v)]
            table_rows.append(
                [dev, task, lr, n, describe(wilson(sum(failed(r) for r in lrecs), n)),
                 describe(wilson(sum(oscillates(r) for r in lrecs), n)),
                 describe(wilson(sum(learnt(r) for r in lrecs), n)),
                 fmt(float(np.median(indices))) if indices else "-"]
            )  # fmt: skip
        parts, summary = [], []
        if HIGH in lrs:
            high = lrs[HIGH]
            bad = wilson(sum(oscillates(r) for r in high), len(runs(high)))
            j = judge_direction(bad, null=0.5, what="share of runs that oscillate or diverge")
            j = require_runs(j, len(runs(high)), binary=True)
            parts.append(Part(f"{task}: lr=0.1 oscillates or diverges", describe(bad), j.verdict, j.reason, core=True))
            summary.append(f"{task} lr=0.1: {sum(oscillates(r) for r in high)}/{len(runs(high))} oscillate or diverge")
        if DEFAULT in lrs:
            good = wilson(sum(learnt(r) for r in lrs[DEFAULT]), len(runs(lrs[DEFAULT])))
            j = judge_direction(good, null=0.5, what="share of runs that converge")
            j = require_runs(j, len(runs(lrs[DEFAULT])), binary=True)
            parts.append(Part(f"{task}: lr=1e-3 converges", describe(good), j.verdict, j.reason))
            summary.append(f"{task} lr=1e-3: {sum(learnt(r) for r in lrs[DEFAULT])}/{len(runs(lrs[DEFAULT]))} converge")
        panel = Panel(f"{dev} {task}: training loss", "step", "loss", logy=True)
        for lr, lrecs in lrs.items():
            cs = [c for c in (curve(r, "train_loss") for r in lrecs) if c[0]]
            if cs:
                n = min(len(c[1]) for c in cs)
                median = np.nanmedian(np.array([c[1][:n] for c in cs]), axis=0)
                panel.series.append(Series(f"lr={lr:g}", cs[0][0][:n], median.tolist(), style="-"))
        if panel.series:
            panels.append(panel)
        return [ctrl.part(), *gate(parts, ctrl)], summary

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for task, trecs in by(dev_recs, task_label).items():
            task_parts, task_summary = per_task(task, trecs, dev)
            parts += task_parts
            summary += task_summary
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge, combine_fn=judged)
    table = Table(
        "L13_learning_rate",
        "L13: Adam learning-rate sweep per task: share of runs that diverged, that oscillated or diverged, and that "
        "converged (Wilson 95%), and the median oscillation index",
        ["device", "task", "lr", "runs", "diverged", "oscillates or diverged", "converged", "oscillation (median)"],
        table_rows,
    )
    fig = FigureSpec("L13_learning_curves", "L13: training-loss curves by learning rate (median over runs).", panels)
    text = (
        "Claimed: Adam at lr=0.1 oscillates or diverges; lr=1e-3 converges. Per task and learning rate, each run is "
        "an outcome: it converged when it reached the task's solved level (the positive control's criterion); it "
        "oscillates when its training loss moved back up, in the second half of training, more than in "
        f"{100 * OSCILLATION_QUANTILE:g}% of the lr=1e-3 runs of the same task (summed increases over the loss's "
        "range), or diverged. Each half of the claim holds when most runs do (Wilson 95% interval against one half, "
        f"at least 20 runs). {seeds_note(okr)}. " + " ".join(sentences)
    )
    return finish("L13", rows, parts, [table], [fig], text, recs)
