"""S8: the speedup from cutting H from 2048 to 1024."""

from __future__ import annotations

import math
from collections.abc import Sequence

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import Timed, by, device_rows, finish
from experiments.claims.cost.common import bench_records, kernel
from experiments.claims.readings import S8_LARGE
from experiments.claims.registry import claim
from experiments.claims.verdict import Part, describe, judge_range
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="S8",
    priority="P2",
    source="004 (case 2)",
    statement="An RNN at B=64, T=100, H=2048 is slow; cutting H to 1024 gives a large speedup.",
    measure="step-time ratio H=2048 / H=1024 for RNN, LSTM, GRU.",
    family="cost",
    about_gpu=True,
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = bench_records(records, "S8")
    if not okr:
        return not_run("S8", "bench cells of rnn/lstm/gru at H=1024 and 2048")
    table_rows: list[list] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        # per backend and kernel (torch's CPU LSTM runs oneDNN's fused kernel, its GRU per-step ATen):
        # a ratio is taken within one kernel, never across two
        shape = lambda r: (int(R.cfg(r, "batch")), int(R.seq_len(r)))  # noqa: E731
        for (be, kern, arch_name, (b, t)), grecs in by(dev_recs, R.backend, kernel, R.arch, shape).items():
            times = {h: Timed(v) for h, v in by(grecs, R.size).items()}
            hs = sorted(times)
            if len(hs) < 2:
                continue
            est = times[hs[-1]] / times[hs[-2]]
            j = judge_range(est, (S8_LARGE.value, math.inf), null=1.0)
            name = f"{be} {kern}: {arch_name} H={hs[-1]}/H={hs[-2]} (B={b}, T={t})"
            parts.append(Part(name, describe(est), j.verdict, j.reason))
            small, large = fmt(times[hs[-2]].value), fmt(times[hs[-1]].value)
            table_rows.append([dev, f"{be} {kern}", arch_name, b, t, hs[-2], hs[-1], small, large, describe(est)])
            summary.append(f"{be} {kern}/{arch_name} x{fmt(est.value)}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge, about_gpu=True)
    table = Table(
        "S8_hidden_speedup",
        "S8: step time at H=2048 over H=1024 (the source's case is B=64, T=100; B and T as run)",
        ["device", "backend / kernel", "arch", "B", "T", "H small", "H large", "s small", "s large", "ratio"],
        table_rows,
    )
    text = (
        "Claimed: cutting H from 2048 to 1024 gives a large speedup. The source gives no number; this suite "
        f"calls a speedup of at least {S8_LARGE.value:g}x large (the O(H^2) matmuls predict 4x). The ratio of a "
        "per-step recurrence's time over H does not depend on T, so a CPU run may use a shorter T than the "
        "source's 100; the table gives the B and T that ran."
    )
    return finish("S8", rows, parts, [table], [], text, recs)
