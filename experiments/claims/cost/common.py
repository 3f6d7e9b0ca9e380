"""What the cost claims (S1-S11) share: their records, CPU memory's standing, paired time ratios.

Every cost number is a median of timed steps (after warm-up, device synchronised)
from ``bench`` records; a ratio's 95% interval comes from the medians' standard errors
(IQR-based) and, with repeated cells, their spread. Each verdict names its device:
CPU and GPU verdicts are separate rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from experiments.claims.common import Timed, by
from experiments.claims.stats import Estimate, bootstrap_ci
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, PARTLY, REFUTED, Part
from experiments.records import fields as R
from experiments.records.fields import Record

GiB = 2**30
# Architectures whose torch encoder is an nn.LSTM: on CPU in float32, oneDNN's kernel by default.
TORCH_LSTMS = ("lstm", "bilstm", "attention_lstm")

CPU_MEMORY_NOTE = (
    "a CPU reading is the growth of a worker's resident memory, which follows the allocator as much as the "
    "step (in a reused worker it reuses pages earlier cells freed; in a fresh one glibc still keeps blocks "
    "under 32 MiB and returns larger ones, and a jax reading also holds XLA's compile-time memory), so it "
    "decides nothing; the GPU run decides"
)
FRESH_CPU_MEMORY = "cpu_rss_fresh"  # measured in a worker that ran no cell before (grid resource fresh_worker)
# Backends whose fresh CPU readings would decide: none, for now. A fresh worker's resident-set peak
# still follows the allocator (CPU_MEMORY_NOTE says how); a backend listed here has its fresh readings decide.
FRESH_CPU_MEMORY_BACKENDS: tuple[str, ...] = ()


def _decisive_cpu_reading(rec: Record) -> bool:
    kind = str(R.metric(rec, "mem_kind", ""))
    return not kind.startswith("cpu_rss") or (kind == FRESH_CPU_MEMORY and R.backend(rec) in FRESH_CPU_MEMORY_BACKENDS)


def cap_cpu_memory(
    parts: list[Part], recs: Sequence[Record], which: Callable[[Part], bool] = lambda part: True
) -> list[Part]:
    """Memory parts judged on CPU resident-memory growth are shown but capped at inconclusive,
    unless every CPU reading behind them was taken in a fresh worker (``cpu_rss_fresh``) by a
    backend whose fresh readings hold the step alone (``FRESH_CPU_MEMORY_BACKENDS``). A part
    named for one backend (``"torch: ..."``) is judged on that backend's readings alone."""
    decisive = {be: all(_decisive_cpu_reading(r) for r in brecs) for be, brecs in R.group(recs, R.backend).items()}

    def capped(p: Part) -> bool:
        be = p.name.split(":", 1)[0]
        return not decisive[be] if be in decisive else not all(decisive.values())

    out = []
    for p in parts:
        if which(p) and capped(p) and p.verdict in (CONFIRMED, PARTLY, REFUTED):
            p = Part(p.name, p.measured, INCONCLUSIVE, f"{p.reason}; but {CPU_MEMORY_NOTE}", core=p.core)
        out.append(p)
    return out


def architecture_ratio(recs: Sequence[Record], num: str, den: str, count: Callable[[Record], int]) -> Estimate | None:
    """``count`` of architecture ``num`` over ``den``'s at each (size, input size) both ran: the median, with
    the range over those points as its interval; None where they share no point."""
    counts: dict[tuple, int] = {}
    for r in recs:
        counts.setdefault((R.arch(r), R.size(r), R.spec_field(r, "input_size")), count(r))
    ratios = [counts[(num, h, i)] / counts[(den, h, i)] for (a, h, i) in counts if a == num and (den, h, i) in counts]
    if not ratios:
        return None
    return Estimate(float(np.median(ratios)), min(ratios), max(ratios), len(ratios))


def geometric_mean(ratios: Sequence[float]) -> Estimate:
    """The geometric mean of ratios over grid points, with a bootstrap interval over the points."""
    return bootstrap_ci([math.log(x) for x in ratios]).map(math.exp)


def memory_records(recs: Sequence[Record], arch: str | None = None) -> list[Record]:
    """The records with a memory reading (of ``arch`` alone, when named)."""
    return [r for r in recs if arch in (None, R.arch(r)) and math.isfinite(R.fmetric(r, "peak_mem_bytes"))]


def bench_records(records: Sequence[Record], claim_id: str) -> tuple[list[Record], list[Record]]:
    recs = R.select(records, claim_id, kinds=("bench",))
    return recs, [r for r in recs if R.ok(r)]


def pair_ratios(brecs: list[Record], num_arch: str, den_arch: str) -> list[tuple[tuple, Estimate]]:
    """(grid point, time ratio num/den) over the points both architectures ran."""
    times = {k: Timed(v) for k, v in by(brecs, R.arch, R.seq_len, R.size, lambda r: R.cfg(r, "batch")).items()}
    out = []
    for (a, t, h, b), tm in sorted(times.items(), key=lambda kv: tuple(str(x) for x in kv[0])):
        other = times.get((den_arch, t, h, b))
        if a == num_arch and other is not None:
            out.append(((t, h, b), tm / other))
    return out


def kernel(rec: Record) -> str:
    """The kernel a record's step ran: ``R.exec_path``, except in schema 1. Schema-1 records name
    ``aten`` for every torch recurrent cell, but a float32 CPU LSTM there ran oneDNN's fused RNN
    kernel (torch's default, ``aten::mkldnn_rnn_layer`` in the profiler; tests/test_torch_kernels.py):
    read as ``onednn`` unless the cell asked for ``aten`` by name."""
    path = R.exec_path(rec)
    if (
        R.schema(rec) == 1
        and R.backend(rec) == "torch"
        and path == "aten"
        and R.arch(rec) in TORCH_LSTMS
        and R.device(rec) == "cpu"
        and R.cfg(rec, "precision", "float32") == "float32"
        and R.cfg(rec, "path") != "aten"
    ):
        return "onednn"
    return path
