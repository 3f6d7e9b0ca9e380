"""S9: where a Transformer at d=768, B=32 crosses 16 GiB."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory
from experiments.claims.cost.common import GiB, cap_cpu_memory
from experiments.claims.registry import claim
from experiments.claims.verdict import CONFIRMED, REFUTED, Part
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="S9",
    priority="P2",
    source="004 (case 1)",
    statement="A Transformer at B=32, T=512, d=768 runs out of 16 GB; T=256 fits.",
    measure="peak memory of the suite's Transformer at d=768 over T and depth; report where 16 GB is crossed.",
    family="cost",
    about_gpu=True,
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs = R.select(records, "S9", kinds=("bench",))
    usable = [r for r in recs if R.ok(r) or r.get("status") == "oom"]
    if not usable:
        return not_run("S9", "bench cells of the Transformer at d=768, B=32 over T and depth")
    table_rows: list[list] = []
    limit = 16 * GiB

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        for (be, layers), grecs in by(dev_recs, R.backend, lambda r: R.spec_field(r, "num_layers")).items():
            over = {}
            for t, trecs in by(grecs, R.seq_len).items():
                if any(r.get("status") == "oom" for r in trecs):
                    over[t] = (math.inf, True)
                else:
                    m = memory(trecs)
                    over[t] = (m, m > limit)
                table_rows.append(
                    [dev, be, layers, t, "oom" if over[t][0] == math.inf else fmt(over[t][0] / GiB), over[t][1]]
                )
            if 256 in over and 512 in over:
                holds = over[512][1] and not over[256][1]
                at512 = "exceeds" if over[512][1] else "fits in"
                at256 = "exceeds" if over[256][1] else "fits"
                reason = f"T=512 {at512} 16 GiB, T=256 {at256}"
                parts.append(Part(f"{be}: {layers} layers", reason, CONFIRMED if holds else REFUTED, reason))
            crossing = next((t for t in sorted(over) if over[t][1]), None)
            summary.append(
                f"{be} L={layers}: crosses 16 GiB at T={crossing}"
                if crossing
                else f"{be} L={layers}: never over 16 GiB"
            )
        return cap_cpu_memory(parts, dev_recs), "; ".join(summary)

    rows, parts = device_rows(usable, judge, about_gpu=True)
    table = Table(
        "S9_transformer_16GB",
        "S9: Transformer (d=768, B=32) training-step peak memory vs T and depth",
        ["device", "backend", "layers", "T", "GiB", "over 16 GiB"],
        table_rows,
    )
    text = (
        "Claimed: a Transformer at B=32, T=512, d=768 runs out of 16 GB; T=256 fits. The source names no depth; "
        "the table reports, per depth, where 16 GiB is crossed."
    )
    return finish("S9", rows, parts, [table], [], text, recs)
