"""L14: gradient-norm clipping against exploding gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    controlled,
    failed,
    finish,
    paired,
    score,
    seed_mean,
    task_label,
    train_records,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.registry import claim
from experiments.claims.stats import proportion_difference, wilson
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record

NO_CLIP = 1e6  # a clip_norm this large never binds: the grid's way of saying "no clipping"


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """The clipped LSTM at the lowest learning rate present."""
    lstm = [r for r in recs if R.arch(r) == "lstm" and (R.opt(r, "clip_norm") or NO_CLIP) < NO_CLIP]
    low = min((float(R.opt(r, "lr")) for r in lstm), default=math.nan)
    return [r for r in lstm if float(R.opt(r, "lr")) == low], f"clipped LSTM, lr {fmt(low)}"


@claim(
    id="L14",
    priority="P2",
    source="002 (Q6)",
    statement="Clipping the gradient norm at 1 prevents exploding gradients.",
    measure="vanilla RNN / LSTM at high lr and long T, with and without clipping: divergence rate.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L14")
    if not okr:
        return not_run("L14", "train cells at high lr and long T, with and without clip_norm=1")
    table_rows: list[list] = []
    sentences: list[str] = []

    def clip_of(rec: Record) -> float | None:
        c = R.opt(rec, "clip_norm")
        return None if c is None or c >= NO_CLIP else float(c)

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            lrs = by(trecs, lambda r: float(R.opt(r, "lr")))
            high = max(lrs)
            for lr, arecs in sorted(lrs.items()):
                clip = by(arecs, clip_of)
                if None not in clip or len(clip) < 2:
                    continue
                off = clip[None]
                for c, crecs in clip.items():
                    if c is None:
                        continue
                    k_off, k_on = sum(failed(r) for r in off), sum(failed(r) for r in crecs)
                    r_off, r_on = wilson(k_off, len(off)), wilson(k_on, len(crecs))
                    est = proportion_difference(k_off, len(off), k_on, len(crecs))  # Newcombe's interval
                    gain = paired(crecs, off, score)  # clipped - unclipped final validation metric, by seed
                    sign = 1.0 if R.metric(crecs[0], "higher_is_better", True) else -1.0
                    acc_off, acc_on = seed_mean(off, score), seed_mean(crecs, score)
                    table_rows.append(
                        [dev, task, a, lr, c, describe(r_off), describe(r_on), describe(acc_off), describe(acc_on)]
                    )
                    name = f"{task} {a} lr={lr:g}: clip {c:g}"
                    # decides at the highest lr only (where gradients explode, if anywhere); a lower lr is shown
                    j = judge_direction(gain, null=0.0, sign=sign, what="final metric with - without clipping")
                    j = require_runs(j, gain.n, binary=False)
                    parts.append(Part(f"{name}: final metric", describe(gain), j.verdict, j.reason, decides=lr == high))
                    if k_off or k_on:  # blow-ups themselves: a solve-or-not count, shown beside
                        j = judge_direction(est, null=0.0, what="divergence rate without - with clipping")
                        j = require_runs(j, min(len(off), len(crecs)), binary=True)
                        parts.append(Part(f"{name}: divergence", describe(est), j.verdict, j.reason, decides=False))
                    summary.append(f"{a} lr={lr:g}: {fmt(acc_off.value)} -> {fmt(acc_on.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L14_clipping",
        "L14: runs that diverged (loss NaN or 100x its first value) and the final validation metric (mean over "
        "seeds), without and with clipping",
        ["device", "task", "arch", "lr", "clip_norm", "diverged without", "diverged with", "metric without",
         "metric with"],
        table_rows,
    )  # fmt: skip
    text = (
        "Claimed: clipping the gradient norm at 1 prevents exploding gradients. Measured at a learning rate "
        "high enough for gradients to explode (the highest of the grid): the final validation metric with "
        "clipping against without, paired by seed (a run that diverged scores the trivial predictor's); the "
        "share of runs that diverge outright is shown beside it, and the lower learning rate (the sized one, "
        "where the control must learn) is shown, not judged. A clip_norm of "
        f"{NO_CLIP:g} or more never binds and stands for no clipping."
    )
    text += " " + " ".join(sentences)
    return finish("L14", rows, parts, [table], [], text, recs)
