"""L17: dropout between stacked layers against overfitting."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    controlled,
    error,
    finish,
    paired,
    seed_mean,
    task_label,
    train_loss,
    train_records,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.registry import claim
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, Part, Verdict, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """No dropout."""
    return [r for r in recs if float(R.spec_field(r, "dropout", 0.0) or 0.0) == 0.0], "LSTM without dropout"


UNRUN_HALF = "recurrent (same-mask) dropout works best on long sequences"


def _half_run(parts: Sequence[Part]) -> Verdict:
    """``judged``, with the claim's second half not run: the first half alone can refute the claim or
    show it partly wrong, but cannot confirm it (a confirmed first half is inconclusive overall)."""
    v = judged(parts)
    if v.verdict != CONFIRMED:
        return v
    why = f"the first half holds ({v.reason}); the second, {UNRUN_HALF}, is not run"
    return Verdict(INCONCLUSIVE, why, [*v.parts, Part(UNRUN_HALF, "not run", INCONCLUSIVE, "no model has it")])


@claim(
    id="L17",
    priority="P3",
    source="002 (Q4)",
    statement="Dropout 0.2–0.5 reduces overfitting; recurrent (same-mask) dropout works best on long sequences.",
    measure="dropout sweeps on a small real data set.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L17")
    if not okr:
        return not_run("L17", "train cells of a dropout sweep on a small real data set")
    table_rows: list[list] = []
    sentences: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            ps = by(trecs, lambda r: float(R.spec_field(r, "dropout", 0.0)))
            for p in sorted(ps):
                table_rows.append(
                    [dev, task, a, p, describe(seed_mean(ps[p], train_loss)), describe(seed_mean(ps[p], error))]
                )
            if 0.0 not in ps:
                continue
            for p in sorted(ps):
                if 0.2 <= p <= 0.5:
                    d = paired(ps[0.0], ps[p], error)
                    j = judge_direction(d, null=0.0, what=f"validation error at 0 - at {p}")
                    j = require_runs(j, d.n, binary=False)
                    parts.append(
                        Part(f"{task}: dropout {p} lowers the validation error", describe(d), j.verdict, j.reason)
                    )
                    summary.append(f"{task} p={p}: {fmt(d.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=_half_run)
    table = Table(
        "L17_dropout",
        "L17: final train loss and validation error by dropout (mean over seeds)",
        ["device", "task", "arch", "dropout", "train loss", "validation error"],
        table_rows,
    )
    text = (
        "Claimed: dropout 0.2-0.5 reduces overfitting; recurrent (same-mask) dropout works best on long sequences. "
        "Measured: validation error with dropout between stacked layers against none, paired by seed. The suite's "
        "models have no recurrent (same-mask) dropout: that part is not run."
    )
    text += " " + " ".join(sentences)
    return finish("L17", rows, parts, [table], [], text, recs)
