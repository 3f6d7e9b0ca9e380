"""L14: gradient-norm clipping against exploding gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import controlled, failed, finish, train_records
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.registry import claim
from experiments.claims.stats import proportion_difference, wilson
from experiments.claims.verdict import INCONCLUSIVE, Part, describe, judge_direction
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
        for (a, lr), arecs in by(dev_recs, R.arch, lambda r: float(R.opt(r, "lr"))).items():
            clip = by(arecs, clip_of)
            if None not in clip or len(clip) < 2:
                continue
            off = clip[None]
            for c, crecs in clip.items():
                if c is None:
                    continue
                r_off = wilson(sum(failed(r) for r in off), len(off))
                r_on = wilson(sum(failed(r) for r in crecs), len(crecs))
                k_off, k_on = sum(failed(r) for r in off), sum(failed(r) for r in crecs)
                est = proportion_difference(k_off, len(off), k_on, len(crecs))  # Newcombe's interval
                table_rows.append([dev, a, lr, c, describe(r_off), describe(r_on), describe(est)])
                if r_off.value == 0 and r_on.value == 0:
                    parts.append(
                        Part(
                            f"{a} lr={lr:g}: clip {c:g}",
                            "no run diverged either way",
                            INCONCLUSIVE,
                            "nothing exploded without clipping: a higher lr or longer T decides",
                        )
                    )
                    continue
                j = judge_direction(est, null=0.0, what="divergence rate without - with clipping")
                j = require_runs(j, min(len(off), len(crecs)), binary=True)
                parts.append(Part(f"{a} lr={lr:g}: clip {c:g}", describe(est), j.verdict, j.reason))
                summary.append(f"{a} lr={lr:g}: {fmt(r_off.value)} -> {fmt(r_on.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L14_clipping",
        "L14: share of runs that diverged (loss NaN or 100x its first value), with and without clipping",
        ["device", "arch", "lr", "clip_norm", "diverged without", "diverged with", "difference"],
        table_rows,
    )
    text = (
        "Claimed: clipping the gradient norm at 1 prevents exploding gradients. Measured as the share of runs "
        f"that diverge; a clip_norm of {NO_CLIP:g} or more never binds and stands for no clipping."
    )
    text += " " + " ".join(sentences)
    return finish("L14", rows, parts, [table], [], text, recs)
