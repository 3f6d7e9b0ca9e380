"""L3: the forget-gate initialisation that retains 50% after N steps."""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import finish, seed_mean, train_records
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_single
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="L3",
    priority="P3",
    source="002 (Q7)",
    statement="Retaining 50% after N steps needs a forget activation f = 0.5^(1/N) (N=50 → 0.986) and bias logit(f).",
    measure="an initialiser option from N; measured mean forget activation at init vs target.",
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L3", kinds=("forget_gate",))
    okr = [r for r in okr if R.ok(r)]
    if not okr:
        return not_run("L3", "forget_gate probe cells with forget_retention N")
    table_rows: list[list] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (be, n), grecs in by(dev_recs, R.backend, lambda r: R.spec_field(r, "forget_retention")).items():
            target = 0.5 ** (1.0 / n)
            f = seed_mean(grecs, lambda r: R.fmetric(r, "forget_mean"))
            kept = seed_mean(grecs, lambda r: R.fmetric(r, "retention_after_n"))
            table_rows.append([dev, be, n, fmt(target), describe(f), describe(kept)])
            j = judge_single(kept, 0.5, null=0.0)
            parts.append(Part(f"{be}: N={n} retention after N steps", describe(kept), j.verdict, j.reason))
            summary.append(f"{be} N={n}: f {fmt(f.value)} (target {fmt(target)}), kept {fmt(kept.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    table = Table(
        "L3_forget_init",
        "L3: forget activation at init and retention after N steps",
        ["device", "backend", "N", "target f", "mean f", "retained after N"],
        table_rows,
    )
    text = (
        "Claimed: retaining 50% after N steps needs a forget activation f = 0.5^(1/N) and bias logit(f). "
        "Measured at initialisation with bias logit(0.5^(1/N)): the mean forget activation and the cell's "
        "retention after N steps (the product of the forget activations, mean over units); confirmed when the "
        "retention is 0.5 +- 25%. No positive control applies: nothing is trained, every number is a property of "
        "the initialisation."
    )
    return finish("L3", rows, parts, [table], [], text, recs)
