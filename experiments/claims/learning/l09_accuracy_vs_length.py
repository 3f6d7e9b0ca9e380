"""L9: accuracy vs sequence length plateaus or falls.

Decided on a task where more context adds information (``evidence``: the Bayes accuracy
Phi(snr sqrt T) rises with T), so that "keeps rising" is a possible outcome and the claim can be
refuted. Delayed recall is shown beside it for its curve only: its ceiling is 1.0 at every T, so a
rise cannot happen there and a flat line at chance is no plateau.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    budget,
    criterion,
    finish,
    learnt,
    paired,
    score,
    seed_mean,
    seeds_note,
    task_label,
    train_records,
)
from experiments.claims.learning.rules import control, gate, judged, require_runs, runs
from experiments.claims.readings import L9_LEARNT, L9_PLATEAU
from experiments.claims.registry import claim
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, Judgement, Part, describe
from experiments.records import fields as R
from experiments.records.fields import Record

RECURRENT = ("rnn", "lstm", "gru", "bilstm")  # the claim is about recurrent models (vanishing gradients)
# Tasks on which accuracy can rise with T (more steps carry more information about the label).
RISE_POSSIBLE = {"evidence": "the Bayes accuracy Phi(snr sqrt T) rises with T"}


def ceiling(rec: Record, t: int) -> float:
    """The best accuracy any model can reach on the record's task at length t (NaN where unknown)."""
    if str(R.cfg(rec, "task")) == "evidence":
        snr = float(R.task_param(rec, "snr", 0.15))
        return 0.5 * (1.0 + math.erf(snr * math.sqrt(t) / math.sqrt(2.0)))
    return math.nan


def trend(groups: dict[int, list[Record]], base: dict[int, float]) -> Judgement:
    """The claim on one curve: a fall or a plateau of a learnt model confirms, a rise at every
    consecutive pair of T refutes. A plateau at the trivial baseline is no plateau (nothing was learnt)."""
    ts = sorted(groups)
    ests = {t: seed_mean(groups[t], score) for t in ts}
    learnt_at = {t for t in ts if ests[t].bounds()[0] - base[t] >= L9_LEARNT.value}
    if not learnt_at:
        return Judgement(INCONCLUSIVE, f"learnt nothing at any T (never {L9_LEARNT.value:g} above the baseline)")
    steps = [(t0, t1, paired(groups[t1], groups[t0], score)) for t0, t1 in itertools.pairwise(ts)]
    falls = [(t0, t1) for t0, t1, d in steps if t0 in learnt_at and d.bounds()[1] < 0]
    first = groups[ts[0]][0]

    def room(t0: int, t1: int) -> bool:
        """The task's ceiling rises by more than the plateau band from t0 to t1 (or is unknown): a flat
        curve there is the model's, not the ceiling's."""
        gain = ceiling(first, t1) - ceiling(first, t0)
        return not math.isfinite(gain) or gain > 2 * L9_PLATEAU.value

    flat = [
        (t0, t1)
        for t0, t1, d in steps
        if t0 in learnt_at and room(t0, t1) and -L9_PLATEAU.value < d.bounds()[0] and d.bounds()[1] < L9_PLATEAU.value
    ]
    n = min(len(runs(g)) for g in groups.values())
    if all(d.bounds()[0] > 0 for _, _, d in steps):
        return require_runs(Judgement(REFUTED, "accuracy keeps rising at every step of T"), n, binary=False)
    if falls:
        why = "falls from T=" + ", ".join(f"{t0} to {t1}" for t0, t1 in falls)
        return require_runs(Judgement(CONFIRMED, why), n, binary=False)
    if flat:
        why = f"plateaus (within +-{L9_PLATEAU.value:g}) from T=" + ", ".join(f"{t0} to {t1}" for t0, t1 in flat)
        return require_runs(Judgement(CONFIRMED, why), n, binary=False)
    return Judgement(INCONCLUSIVE, f"neither a fall, a plateau within +-{L9_PLATEAU.value:g}, nor a steady rise")


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
    okr = [r for r in okr if R.arch(r) in RECURRENT]
    if not okr:
        return not_run("L9", "train cells of a recurrent model over T on a task where more context can help")
    table_rows: list[list] = []
    panels: list[Panel] = []
    sentences: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (task, a), trecs in by(dev_recs, task_label, R.arch).items():
            groups = by(trecs, R.seq_len)
            ts = sorted(groups)
            ests = {t: seed_mean(groups[t], score) for t in ts}
            base = {t: seed_mean(groups[t], lambda r: R.fmetric(r, "baseline_metric")).value for t in ts}
            for t in ts:
                table_rows.append([dev, task, a, t, describe(ests[t]), fmt(base[t]), len(runs(groups[t]))])
            panel = Panel(f"{dev} {task} ({a}): accuracy vs T", "T", "validation accuracy", logx=True)
            panel.series.append(
                Series(a, ts, [ests[t].value for t in ts], [ests[t].bounds()[0] for t in ts],
                       [ests[t].bounds()[1] for t in ts])
            )  # fmt: skip
            panels.append(panel)
            ctrl = control(groups[ts[0]], learnt, f"{a.upper()}, {task} T={ts[0]}", criterion(groups[ts[0]][0]),
                           budget(groups[ts[0]]))  # fmt: skip
            sentences.append(ctrl.sentence())
            parts.append(ctrl.part())
            if len(ts) < 2:
                continue
            j = trend(groups, base)
            shown = ", ".join(f"T={t}: {fmt(ests[t].value)}" for t in ts)
            decides = str(R.cfg(trecs[0], "task")) in RISE_POSSIBLE
            reason = j.reason if decides else f"{j.reason} (shown only: accuracy cannot rise on {task})"
            parts += gate([Part(f"{task} ({a})", shown, j.verdict, reason, decides=decides)], ctrl)
            summary.append(f"{task}/{a}: {shown}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge, combine_fn=judged)
    table = Table(
        "L9_accuracy_vs_T",
        "L9: validation accuracy vs T (mean over runs, t 95% interval)",
        ["device", "task", "arch", "T", "accuracy", "trivial baseline", "runs"],
        table_rows,
    )
    fig = FigureSpec("L9_accuracy_vs_T", "L9: validation accuracy vs sequence length (95% bands over runs).", panels)
    rise = "; ".join(f"{k}: {v}" for k, v in RISE_POSSIBLE.items())
    text = (
        "Claimed: accuracy does not keep rising with sequence length; it plateaus or falls. Decided on tasks where "
        f"a rise is possible ({rise}); delayed recall (ceiling 1.0 at every T) is shown, not judged. On consecutive "
        f"T, a fall (interval below 0) or a plateau (interval inside +-{L9_PLATEAU.value:g}) of a model that "
        f"learnt something (>= {L9_LEARNT.value:g} above the trivial baseline) confirms, a plateau only where the "
        f"task's own ceiling rises by more than {2 * L9_PLATEAU.value:g} (else it is the ceiling's); a rise at every "
        f"step refutes; a curve at the baseline decides nothing. {seeds_note(okr)}. " + " ".join(sentences)
    )
    return finish("L9", rows, parts, [table], [fig], text, recs)
