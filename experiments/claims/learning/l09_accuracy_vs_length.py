"""L9: accuracy vs sequence length plateaus or falls."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import finish, paired, score, seed_mean, seeds_note, task_label, train_records
from experiments.claims.readings import L9_LEARNT, L9_PLATEAU
from experiments.claims.registry import claim
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, Part, describe
from experiments.records import fields as R
from experiments.records.fields import Record

RECURRENT = ("rnn", "lstm", "gru", "bilstm")  # the claim is about recurrent models (vanishing gradients)


@claim(
    id="L9",
    priority="P1",
    source="001 (ex. 2)",
    statement="Accuracy does not keep rising with sequence length; it plateaus or falls (vanishing gradients).",
    measure="a task whose label depends on early steps, T in {10, 50, 100, 500}.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L9")
    if not okr:
        return not_run("L9", "train cells on a task whose label depends on early steps, T in {10, 50, 100, 500}")
    table_rows: list[list] = []
    panels: list[Panel] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        recurrent = [r for r in dev_recs if R.arch(r) in RECURRENT]
        for (task, a), trecs in by(recurrent, task_label, R.arch).items():
            panel = Panel(f"{dev} {task} ({a}): accuracy vs T", "T", "validation accuracy", logx=True)
            groups = by(trecs, R.seq_len)
            ts = sorted(groups)
            ests = {t: seed_mean(groups[t], score) for t in ts}
            for t in ts:
                table_rows.append(
                    [
                        dev,
                        task,
                        a,
                        t,
                        describe(ests[t]),
                        fmt(seed_mean(groups[t], lambda r: R.fmetric(r, "baseline_metric")).value),
                    ]
                )
            panel.series.append(
                Series(
                    a,
                    ts,
                    [ests[t].value for t in ts],
                    [ests[t].bounds()[0] for t in ts],
                    [ests[t].bounds()[1] for t in ts],
                )
            )
            panels.append(panel)
            if len(ts) < 2:
                continue
            base = {t: seed_mean(groups[t], lambda r: R.fmetric(r, "baseline_metric")).value for t in ts}
            if max(ests[t].bounds()[0] - base[t] for t in ts) < L9_LEARNT.value:
                shown = ", ".join(f"T={t}: {describe(ests[t])}" for t in ts)
                why = (
                    f"learnt nothing at any T (never {L9_LEARNT.value} above the trivial baseline); "
                    "a longer budget decides"
                )
                parts.append(Part(f"{task} ({a})", shown, INCONCLUSIVE, why))
                summary.append(f"{task}/{a}: at the baseline for every T")
                continue
            steps = [(t0, t1, paired(groups[t1], groups[t0], score)) for t0, t1 in itertools.pairwise(ts)]
            falls = [(t0, t1) for t0, t1, d in steps if d.bounds()[1] < 0]
            flat = [
                (t0, t1)
                for t0, t1, d in steps
                if -L9_PLATEAU.value < d.bounds()[0] and d.bounds()[1] < L9_PLATEAU.value
            ]
            rises = all(d.bounds()[0] > 0 for _, _, d in steps)
            shown = ", ".join(f"{t0}->{t1}: {describe(d)}" for t0, t1, d in steps)
            if falls:
                verdict, reason = CONFIRMED, "falls from T=" + ", ".join(f"{t0} to {t1}" for t0, t1 in falls)
            elif flat:
                verdict, reason = CONFIRMED, "plateaus from T=" + ", ".join(f"{t0} to {t1}" for t0, t1 in flat)
            elif rises:
                verdict, reason = REFUTED, "accuracy keeps rising at every step of T"
            else:
                verdict, reason = (
                    INCONCLUSIVE,
                    f"neither a clear fall, a plateau within +-{L9_PLATEAU.value:g}, nor a steady rise",
                )
            parts.append(Part(f"{task} ({a})", shown, verdict, reason))
            summary.append(f"{task}/{a}: " + ", ".join(f"T={t} {fmt(ests[t].value)}" for t in ts))
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "L9_accuracy_vs_T",
        "L9: validation accuracy vs T (mean over seeds, 95% interval)",
        ["device", "task", "arch", "T", "accuracy", "trivial baseline"],
        table_rows,
    )
    fig = FigureSpec("L9_accuracy_vs_T", "L9: validation accuracy vs sequence length (95% bands over seeds).", panels)
    text = (
        "Claimed: accuracy does not keep rising with sequence length; it plateaus or falls. Judged for the "
        "recurrent models on consecutive T: a fall (interval below 0) or a plateau "
        f"(interval inside +-{L9_PLATEAU.value:g}) "
        "confirms; a rise at every step refutes; a model that learnt nothing at any T decides nothing. "
        f"{seeds_note(okr)}."
    )
    return finish("L9", rows, parts, [table], [fig], text, recs)
