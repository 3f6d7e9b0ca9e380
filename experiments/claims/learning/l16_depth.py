"""L16: diminishing returns beyond 4 stacked layers."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    controlled,
    error,
    failed,
    finish,
    judge_none,
    learnt,
    paired,
    seed_mean,
    task_label,
    train_records,
    unless_at_floor,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.readings import L16_DIMINISHING
from experiments.claims.registry import claim
from experiments.claims.stats import proportion_difference
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """One layer."""
    return [r for r in recs if (R.spec_field(r, "num_layers") or 1) == 1], "one-layer LSTM"


@claim(
    id="L16",
    priority="P3",
    source="002 (Q5)",
    statement="More than 4 stacked layers gives diminishing returns and is harder to train.",
    measure="depth sweep 1–6.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L16")
    if not okr:
        return not_run("L16", "train cells over depth 1-6")
    table_rows: list[list] = []
    sentences: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            ds = by(trecs, lambda r: R.spec_field(r, "num_layers"))
            for d in sorted(ds):
                table_rows.append([dev, task, a, d, describe(seed_mean(ds[d], error)), sum(failed(r) for r in ds[d])])
            if 4 in ds and max(ds) > 4:
                deep = max(ds)
                gain = paired(ds[4], ds[deep], error)
                j = judge_none(gain, L16_DIMINISHING.value, f"error reduction {4}->{deep} layers")
                j = unless_at_floor(j, ds[4], ds[deep])
                j = require_runs(j, gain.n, binary=False)
                parts.append(Part(f"{task}: beyond 4 layers", describe(gain), j.verdict, j.reason))
                summary.append(f"{task}: 4->{deep} {fmt(gain.value)}")
                # "harder to train": runs that did not learn (diverged, or short of the solved level), a
                # solve-or-not outcome, deepest vs 4 layers (Newcombe; 20 runs a side to decide)
                k_deep, k_4 = (sum(not learnt(r) for r in ds[d]) for d in (deep, 4))
                hard = proportion_difference(k_deep, len(ds[deep]), k_4, len(ds[4]))
                j = judge_direction(hard, null=0.0, what=f"not-learnt rate {deep} - 4 layers")
                j = require_runs(j, hard.n, binary=True)
                name = f"{task}: harder to train beyond 4 layers"
                parts.append(Part(name, f"{k_deep}/{len(ds[deep])} vs {k_4}/{len(ds[4])}", j.verdict, j.reason))
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L16_depth", "L16: error vs depth", ["device", "task", "arch", "layers", "error", "diverged runs"], table_rows
    )
    text = (
        "Claimed: more than 4 stacked layers gives diminishing returns "
        f"(here: under {L16_DIMINISHING.value:g} error reduction) and is harder to train (here: more runs that "
        "do not learn, i.e. diverge or end short of the solved level, than at 4 layers; a solve-or-not "
        "outcome, decided on 20 runs a side)."
    )
    text += " " + " ".join(sentences)
    return finish("L16", rows, parts, [table], [], text, recs)
