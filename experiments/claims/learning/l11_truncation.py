"""L11: truncating long sequences to the most recent steps."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    controlled,
    finish,
    judge_none,
    paired,
    score,
    seed_mean,
    task_label,
    train_records,
    unless_at_floor,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.readings import L11_SOUND
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe
from experiments.records import fields as R
from experiments.records.fields import Record


def _full_length(rec: Record) -> int:
    return int(R.task_param(rec, "seq_len") or R.seq_len(rec) or 0)


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """Whole sequences with the signal at its most recent."""
    near = min((R.task_param(r, "distance") or 0) for r in recs) if recs else 0
    whole = [
        r for r in recs
        if (R.task_param(r, "distance") or 0) == near
        and (R.task_param(r, "truncate") is None or R.task_param(r, "truncate") >= _full_length(r))
    ]  # fmt: skip
    return whole, f"LSTM, full sequences, the signal {near} steps back"


@claim(
    id="L11",
    priority="P3",
    source="001 (ex. 3)",
    statement="Truncating very long sequences to the most recent 200 steps is a sound remedy.",
    measure="long sequences whose signal is recent vs early: full vs truncated.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L11")
    if not okr:
        return not_run("L11", "train cells of full vs truncated long sequences, signal recent vs early")
    table_rows: list[list] = []
    sentences: list[str] = []

    def kept(rec: Record) -> int | None:
        cut = R.task_param(rec, "truncate")
        return None if cut is None or cut >= _full_length(rec) else int(cut)

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, dist), grecs in by(dev_recs, task_label, lambda r: R.task_param(r, "distance")).items():
            tr = by(grecs, kept)
            if None not in tr or len(tr) < 2:
                continue
            full = tr[None]
            for cut, crecs in tr.items():
                if cut is None:
                    continue
                delta = paired(crecs, full, score)
                row = [dev, task, dist, cut, describe(seed_mean(full, score)), describe(seed_mean(crecs, score))]
                table_rows.append([*row, describe(delta)])
                j = judge_none(delta.map(lambda v: -v), L11_SOUND.value, "loss from truncation")
                j = unless_at_floor(j, crecs, full)
                j = require_runs(j, delta.n, binary=False)
                name = f"{task}: signal {dist} steps back, keep the last {cut}"
                parts.append(Part(name, describe(delta), j.verdict, j.reason))
                summary.append(f"signal {dist} back: truncated - full {fmt(delta.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L11_truncation",
        "L11: full vs truncated sequences (accuracy, mean over seeds)",
        ["device", "task", "signal distance", "kept steps", "full", "truncated", "truncated - full (paired)"],
        table_rows,
    )
    text = (
        "Claimed: truncating very long sequences to the most recent 200 steps is a sound remedy. Sound is read as "
        f"no loss beyond {L11_SOUND.value:g} accuracy against reading the whole sequence; "
        "it is checked with the signal recent "
        "and early."
    )
    text += " " + " ".join(sentences)
    return finish("L11", rows, parts, [table], [], text, recs)
