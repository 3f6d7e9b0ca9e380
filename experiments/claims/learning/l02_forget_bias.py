"""L2: the forget-gate bias and long-range dependencies.

Per task (adding problem, copy memory) and T: the final validation error of an LSTM at forget-gate
bias -1, 0, +1, +2 and at the retention-length init (N = T), paired by seed. Decides: the relative
error reduction of bias +1 against 0 (continuous: a t interval over at least 5 runs) in the claimed
5-15%. Shown: bias +2 against 0, solve rates (Wilson intervals) and median steps to solve. Each task
has its positive control: bias 0 at its shortest T must learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    budget,
    criterion,
    error,
    failed,
    finish,
    learnt,
    paired,
    rel_error,
    seed_mean,
    seeds_note,
    task_label,
    train_records,
    unless_at_floor,
)
from experiments.claims.learning.rules import control, gate, judged, require_runs, runs, solve_rate
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate
from experiments.claims.verdict import Part, describe, judge_range
from experiments.records import fields as R
from experiments.records.fields import Record

RETENTION = "N=T"


def _arm(rec: Record) -> float | str | None:
    """The forget-gate setting: a bias value, ``"N=T"`` for the retention-length init, None for default."""
    if R.spec_field(rec, "forget_retention") is not None:
        return RETENTION
    value = R.spec_field(rec, "forget_bias")
    return None if value is None else float(value)


def _reduction(groups: dict, arm: float) -> Estimate:
    """Relative error reduction of ``arm`` against bias 0: the paired mean difference over bias 0's mean error."""
    improvement = paired(groups[0.0], groups[arm], error)
    base = seed_mean(groups[0.0], error)
    return improvement.map(lambda v, b=base.value: v / b) if base.value else Estimate(math.nan)


@claim(
    id="L2",
    priority="P1",
    source="002 (Q7)",
    statement=(
        "A forget-gate bias of +1 (up to +2) helps long-range dependencies; tuning it improves performance by 5–15%."
    ),
    measure=(
        "adding problem / copy task, T in {50, 100, 200, 400}, bias in {-1, 0, 1, 2}: final error and steps to solve."
    ),
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L2")
    okr = [r for r in okr if _arm(r) is not None]
    if not okr:
        return not_run("L2", "train cells of the LSTM with forget_bias in {-1, 0, 1, 2}")
    table_rows: list[list] = []
    panels: list[Panel] = []
    sentences: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for task, trecs in by(dev_recs, task_label).items():
            zero = [r for r in trecs if _arm(r) == 0.0]
            if not zero:
                continue
            t0 = min(R.seq_len(r) for r in zero)
            first = [r for r in zero if R.seq_len(r) == t0]
            ctrl = control(first, learnt, f"LSTM bias 0, {task} T={t0}", criterion(first[0]), budget(first))
            sentences.append(ctrl.sentence())
            parts.append(ctrl.part())
            task_parts = []
            panel = Panel(f"{dev} {task}: final error vs forget bias", "forget-gate bias", "error / baseline error")
            for t, grecs in by(trecs, R.seq_len).items():
                groups = by(grecs, _arm)
                if 0.0 not in groups:
                    continue
                xs, ys = [], []
                for arm, arecs in sorted(groups.items(), key=lambda kv: (isinstance(kv[0], str), kv[0])):
                    err = seed_mean(arecs, rel_error)
                    rate = solve_rate(arecs, learnt)
                    steps = [R.fmetric(r, "steps_to_threshold") for r in arecs]
                    steps = [x for x in steps if math.isfinite(x)]
                    median = fmt(float(np.median(steps))) if steps else "-"
                    rel = _reduction(groups, arm) if arm != 0.0 else Estimate(0.0)
                    table_rows.append(
                        [dev, task, t, arm, len(runs(arecs)), describe(err), describe(rate), median, describe(rel),
                         sum(failed(r) for r in arecs)]
                    )  # fmt: skip
                    if not isinstance(arm, str):
                        xs.append(arm)
                        ys.append(err.value)
                panel.series.append(Series(f"T={t}", xs, ys))
                for arm, deciding in ((1.0, True), (2.0, False)):
                    if arm not in groups:
                        continue
                    rel = _reduction(groups, arm)
                    n = min(len(runs(groups[0.0])), len(runs(groups[arm])))
                    j = require_runs(judge_range(rel, (0.05, 0.15), null=0.0), n, binary=False)
                    j = unless_at_floor(j, groups[0.0], groups[arm])
                    name = f"{task} T={t}: bias {arm:g} vs 0"
                    task_parts.append(Part(name, describe(rel), j.verdict, j.reason, decides=deciding))
                    if deciding:
                        summary.append(f"{task} T={t}: {describe(rel)}")
            parts += gate(task_parts, ctrl)
            panels.append(panel)
        return parts, "relative error reduction, bias 1 vs 0: " + "; ".join(summary)

    rows, parts = device_rows(okr, judge, combine_fn=judged)
    table = Table(
        "L2_forget_bias",
        "L2: by forget-gate bias (N=T: the retention-length init): runs, final validation error over the trivial "
        "baseline's (t 95%), solve rate (Wilson 95%), median steps to solve, relative error reduction vs bias 0",
        ["device", "task", "T", "bias", "runs", "error/baseline", "solve rate", "median steps to solve",
         "reduction vs bias 0", "diverged runs"],
        table_rows,
    )  # fmt: skip
    fig = FigureSpec(
        "L2_forget_bias", "L2: final error (over the trivial baseline's) vs forget-gate bias, per T.", panels
    )
    text = (
        "Claimed: a forget-gate bias of +1 (up to +2) helps long-range dependencies, tuning it improves "
        "performance by 5-15%. Decided by the relative reduction of the final validation error, bias +1 against 0, "
        "paired by seed (t interval; at least 5 runs), confirmed within [5%, 15%]; bias +2, the retention-length "
        "init (bias logit(0.5^(1/T))) and the solve rates are shown beside it. A task whose positive control fails "
        f"is shown but not judged. {seeds_note(okr)}. " + " ".join(sentences)
    )
    return finish("L2", rows, parts, [table], [fig], text, recs)
