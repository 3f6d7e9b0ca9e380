"""L15: too small a hidden size underfits, too large overfits."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, not_run
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
from experiments.claims.verdict import CONFIRMED, PARTLY, REFUTED, Judgement, Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """The hidden size the sizing run trained at (64)."""
    return [r for r in recs if R.size(r) == 64], "LSTM H=64"


@claim(
    id="L15",
    priority="P2",
    source="000, 004 (case 3), 002 (Q5)",
    statement="Too small a hidden size underfits; too large overfits small data.",
    measure="H sweep on a small real data set: train vs validation error.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L15")
    if not okr:
        return not_run("L15", "train cells over H on a small real data set")
    table_rows: list[list] = []
    sentences: list[str] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            hs = by(trecs, R.size)
            keys = sorted(hs)
            tr = {h: seed_mean(hs[h], train_loss) for h in keys}
            va = {h: seed_mean(hs[h], error) for h in keys}
            for h in keys:
                table_rows.append([dev, task, a, h, describe(tr[h]), describe(va[h])])
            series = [
                Series("train loss", keys, [tr[h].value for h in keys]),
                Series("validation error", keys, [va[h].value for h in keys]),
            ]
            panels.append(Panel(f"{dev} {task}", "H", "value", logx=True, logy=True, series=series))
            if len(keys) < 3:
                continue
            best = min(keys, key=lambda h: va[h].value)
            if best != keys[0]:
                under = paired(hs[keys[0]], hs[best], error)
                j = judge_direction(under, null=0.0, what=f"validation error H={keys[0]} - H={best}")
                j = require_runs(j, under.n, binary=False)
                parts.append(Part(f"{task}: smallest H underfits", describe(under), j.verdict, j.reason))
            else:
                why = f"the smallest H ({best}) has the lowest validation error"
                j = require_runs(Judgement(REFUTED, why), min(e.n for e in va.values()), binary=False)
                parts.append(Part(f"{task}: smallest H underfits", f"best H = {best}", j.verdict, j.reason))
            if best != keys[-1]:
                over = paired(hs[keys[-1]], hs[best], error)
                fits = paired(hs[keys[-1]], hs[best], train_loss)
                j = judge_direction(over, null=0.0, what=f"validation error H={keys[-1]} - H={best}")
                j = require_runs(j, over.n, binary=False)
                if j.verdict == CONFIRMED and judge_direction(fits, null=0.0).verdict == CONFIRMED:
                    j = Judgement(REFUTED, j.reason + f", but its train loss is higher ({describe(fits)}): not overfit")
                elif j.verdict == CONFIRMED and fits.value > 0:
                    j = Judgement(PARTLY, j.reason + ", but its train loss is no lower: worse, not overfit")
                parts.append(Part(f"{task}: largest H overfits", describe(over), j.verdict, j.reason))
            else:
                why = f"the largest H ({best}) has the lowest validation error"
                j = require_runs(Judgement(REFUTED, why), min(e.n for e in va.values()), binary=False)
                parts.append(Part(f"{task}: largest H overfits", f"best H = {best}", j.verdict, j.reason))
            summary.append(f"{task}: best H {best}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L15_hidden_size",
        "L15: final train loss and validation error vs H (mean over seeds)",
        ["device", "task", "arch", "H", "train loss", "validation error"],
        table_rows,
    )
    fig = FigureSpec("L15_hidden_size", "L15: final train loss and validation error vs hidden size.", panels)
    text = (
        "Claimed: too small a hidden size underfits; too large overfits small data. Underfitting: the smallest H "
        "has a higher validation error than the best H; overfitting: the largest H has a higher validation error "
        "than the best H while fitting the training data at least as well (lower train loss)."
    )
    text += " " + " ".join(sentences)
    return finish("L15", rows, parts, [table], [fig], text, recs)
