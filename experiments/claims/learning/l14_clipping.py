"""L14: gradient-norm clipping against exploding gradients."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import failed, finish, train_records
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, wilson
from experiments.claims.verdict import INCONCLUSIVE, Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record

NO_CLIP = 1e6  # a clip_norm this large never binds: the grid's way of saying "no clipping"


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
                diff = r_off.value - r_on.value
                se = math.sqrt(r_off.value * (1 - r_off.value) / len(off) + r_on.value * (1 - r_on.value) / len(crecs))
                n = len(off) + len(crecs)
                est = Estimate(diff, diff - 1.96 * se, diff + 1.96 * se, n) if se > 0 else Estimate(diff, n=n)
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
                parts.append(Part(f"{a} lr={lr:g}: clip {c:g}", describe(est), j.verdict, j.reason))
                summary.append(f"{a} lr={lr:g}: {fmt(r_off.value)} -> {fmt(r_on.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
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
    return finish("L14", rows, parts, [table], [], text, recs)
