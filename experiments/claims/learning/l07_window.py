"""L7: the best forecasting input window, and whether the autocorrelation picks it."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    controlled,
    finish,
    rel_error,
    seed_mean,
    task_label,
    train_records,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.readings import L7_ACF_LENGTH
from experiments.claims.registry import claim
from experiments.claims.verdict import CONFIRMED, PARTLY, REFUTED, Judgement, Part, describe
from experiments.records import fields as R
from experiments.records.fields import Record
from experiments.tasks.real import series_values


def _acf_window(series: str, threshold: float = L7_ACF_LENGTH.value) -> int | None:
    """The first lag where the train segment's autocorrelation drops below ``threshold``."""
    values = series_values(series)
    train = values[: round(len(values) * 0.7)]
    x = train - train.mean()
    denom = float((x * x).sum())
    for lag in range(1, len(x) // 2):
        if float((x[:-lag] * x[lag:]).sum()) / denom < threshold:
            return lag
    return None


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """The window the sizing run trained at (24)."""
    return [r for r in recs if R.seq_len(r) == 24], "LSTM, window 24"


@claim(
    id="L7",
    priority="P2",
    source="002 (Q8)",
    statement=(
        "The best input window for most forecasting tasks is 20–100 steps, and the autocorrelation length picks it."
    ),
    measure="real series: error vs window; the autocorrelation-chosen window vs the best one.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L7")
    okr = [r for r in okr if R.cfg(r, "task") == "forecast"]
    if not okr:
        return not_run("L7", "train cells of forecasting over input windows")
    table_rows: list[list] = []
    sentences: list[str] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            wins = by(trecs, R.seq_len)
            ests = {w: seed_mean(v, rel_error) for w, v in wins.items()}
            best = min(ests, key=lambda w: ests[w].value)
            acf = _acf_window(str(R.task_param(trecs[0], "series", "sunspots")))
            picked = min(ests, key=lambda w: abs(w - acf)) if acf else None
            for w in sorted(ests):
                table_rows.append([dev, task, a, w, describe(ests[w]), w == best, w == picked])
            inside = 20 <= best <= 100
            n = min(e.n for e in ests.values())  # runs behind the fewest-run window
            why = f"best window {best} of {sorted(ests)}"
            j = require_runs(Judgement(CONFIRMED if inside else REFUTED, why), n, binary=False)
            parts.append(Part(f"{task}: best window in 20-100", str(best), j.verdict, j.reason))
            if picked is not None:
                ok = ests[picked].bounds()[0] <= ests[best].bounds()[1]
                why = f"best {best}, picked {picked}" + (" (intervals overlap)" if ok and picked != best else "")
                j = require_runs(Judgement(CONFIRMED if picked == best else (PARTLY if ok else REFUTED), why), n, False)
                parts.append(
                    Part(f"{task}: autocorrelation picks it", f"acf lag {acf} -> window {picked}", j.verdict, j.reason)
                )
            panels.append(
                Panel(
                    f"{dev} {task}: error vs window",
                    "window",
                    "error / baseline",
                    logx=True,
                    series=[Series(a, sorted(ests), [ests[w].value for w in sorted(ests)])],
                )
            )
            summary.append(f"{task}: best {best}, acf {acf}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L7_window",
        "L7: forecasting error vs input window",
        ["device", "task", "arch", "window", "error/baseline", "best", "acf-picked"],
        table_rows,
    )
    fig = FigureSpec("L7_window", "L7: forecasting error (over the train-mean predictor's) vs input window.", panels)
    text = (
        "Claimed: the best input window for most forecasting tasks is 20-100 steps, and the autocorrelation length "
        f"picks it (here: the first lag where the train segment's autocorrelation drops below {L7_ACF_LENGTH.value:g})."
    )
    text += " " + " ".join(sentences)
    return finish("L7", rows, parts, [table], [fig], text, recs)
