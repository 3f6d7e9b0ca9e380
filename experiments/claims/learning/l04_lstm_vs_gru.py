"""L4: LSTM against GRU accuracy, by data size and T."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import (
    absolute,
    controlled,
    error,
    finish,
    judge_none,
    paired,
    seed_mean,
    task_label,
    train_records,
    unless_at_floor,
)
from experiments.claims.learning.rules import judged, require_runs
from experiments.claims.readings import L4_COMPARABLE
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_direction
from experiments.records import fields as R
from experiments.records.fields import Record


# The positive control: the baseline arm's records, and the setting in words.
def control_records(recs: list[Record]) -> tuple[list[Record], str]:
    """The LSTM on the larger training set of each task."""
    largest = {}
    for r in recs:
        largest[task_label(r)] = max(largest.get(task_label(r), 0), R.task_param(r, "n_train") or 0)
    chosen = [r for r in recs if R.arch(r) == "lstm" and (R.task_param(r, "n_train") or 0) == largest[task_label(r)]]
    return chosen, "LSTM, the larger training set of each task"


@claim(
    id="L4",
    priority="P2",
    source="002 (Q3), 003",
    statement=(
        "LSTM and GRU reach comparable accuracy; GRU does slightly better on small data; LSTM has an edge beyond "
        "500 steps."
    ),
    measure="same tasks and budgets, LSTM vs GRU, small vs large training sets, T up to 1000.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L4")
    if not okr:
        return not_run("L4", "train cells of lstm and gru, small and large training sets, T up to 1000")
    table_rows: list[list] = []
    sentences: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        sizes: dict[str, set[int]] = {}  # per task, as the control takes each task's larger training set
        for r in dev_recs:
            if R.task_param(r, "n_train") is not None:
                sizes.setdefault(task_label(r), set()).add(R.task_param(r, "n_train"))
        for (task, t, n_train), grecs in by(
            dev_recs, task_label, R.seq_len, lambda r: R.task_param(r, "n_train")
        ).items():
            archs = by(grecs, R.arch)
            if "lstm" not in archs or "gru" not in archs:
                continue
            delta = paired(archs["gru"], archs["lstm"], lambda r: -error(r))
            table_rows.append(
                [
                    dev,
                    task,
                    t,
                    n_train,
                    describe(seed_mean(archs["lstm"], error)),
                    describe(seed_mean(archs["gru"], error)),
                    describe(delta),
                ]
            )
            j = judge_none(absolute(delta), L4_COMPARABLE.value, "|error gap|")
            j = unless_at_floor(j, archs["gru"], archs["lstm"])
            j = require_runs(j, delta.n, binary=False)
            parts.append(Part(f"{task} T={t} n={n_train}: comparable", describe(delta), j.verdict, j.reason))
            if t is not None and t > 500:
                j = judge_direction(delta, null=0.0, sign=-1.0, what="GRU - LSTM (lower error is better)")
                j = require_runs(j, delta.n, binary=False)
                name = f"{task} T={t} n={n_train}: LSTM edge beyond 500"
                parts.append(Part(name, describe(delta), j.verdict, j.reason))
            if len(sizes.get(task, ())) > 1 and n_train == min(sizes[task]):  # the task's small data
                j = judge_direction(delta, null=0.0, what="GRU error reduction on small data")
                j = require_runs(j, delta.n, binary=False)
                name = f"{task} T={t} small data (n={n_train}): GRU slightly better"
                parts.append(Part(name, describe(delta), j.verdict, j.reason))
            summary.append(f"{task} T={t} n={n_train}: GRU-LSTM error reduction {fmt(delta.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, controlled(judge, control_records, sentences), combine_fn=judged)
    table = Table(
        "L4_lstm_vs_gru",
        "L4: LSTM vs GRU final validation error",
        ["device", "task", "T", "n_train", "LSTM error", "GRU error", "GRU error reduction (paired)"],
        table_rows,
    )
    text = (
        "Claimed: LSTM and GRU reach comparable accuracy "
        f"(this suite: an error gap within {L4_COMPARABLE.value:g}); "
        "GRU does slightly better on small data; LSTM has an edge beyond 500 steps."
    )
    text += " " + " ".join(sentences)
    return finish("L4", rows, parts, [table], [], text, recs)
