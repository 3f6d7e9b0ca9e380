"""L10: post-padding without masking against pre-padding and masking."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    controlled,
    finish,
    paired,
    score,
    seed_mean,
    seeds_note,
    task_label,
    train_records,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


def _padding(rec: Record) -> str | None:
    return R.task_param(rec, "padding")


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """The fix the claim names: masked sequences."""
    return [r for r in recs if _padding(r) == "masked"], "LSTM, masked padding"


@claim(
    id="L10",
    priority="P1",
    source="001 (ex. 1), 003 (ex. 3)",
    statement=(
        "Post-padding variable-length sequences without masking hurts a model that reads the final state; "
        "pre-padding or masking fixes it."
    ),
    measure="variable-length classification (real and synthetic): post-pad, pre-pad, masked/packed.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L10")
    okr = [r for r in okr if _padding(r)]
    if not okr:
        return not_run("L10", "train cells with padding in {post, pre, masked}")
    table_rows: list[list] = []
    sentences: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            pads = by(trecs, _padding)
            if "post" not in pads:
                continue
            for p, precs in pads.items():
                table_rows.append([dev, task, a, p, describe(seed_mean(precs, score))])
            for fix in ("pre", "masked"):
                if fix not in pads:
                    continue
                delta = paired(pads[fix], pads["post"], score)
                j = judge_direction(delta, null=0.0, what=f"{fix} - post")
                j = require_runs(j, delta.n, binary=False)
                parts.append(Part(f"{task} ({a}): {fix} beats post", describe(delta), j.verdict, j.reason))
                summary.append(f"{task} {fix}-post {fmt(delta.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L10_padding",
        "L10: validation accuracy by padding (mean over seeds, 95% interval)",
        ["device", "task", "arch", "padding", "accuracy"],
        table_rows,
    )
    text = (
        "Claimed: post-padding variable-length sequences without masking hurts a model that reads the final "
        "state; pre-padding or masking fixes it. Post and pre run the model over every padded step; masked stops "
        f"each sequence at its own length. Differences are paired by seed. {seeds_note(okr)}."
    )
    text += " " + " ".join(sentences)
    return finish("L10", rows, parts, [table], [], text, recs)
