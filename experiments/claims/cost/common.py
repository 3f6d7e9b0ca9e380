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

from experiments.claims.base import Table, fmt
from experiments.claims.common import Timed, by, memory, memory_kind, spec_object
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


# -- the exact memory measure: bytes saved for the backward pass (``metrics.saved_bytes``) ----------

MiB = 2**20
SAVED_BYTES_NOTE = (
    "Memory is decided from saved_bytes: the bytes the backward pass of one training step holds (activations, "
    "the input, masks and a fused kernel's workspace; torch through saved_tensors_hooks, each storage counted "
    "once; jax from the residuals of jax.vjp), exact and the same quantity on any device, judged per backend "
    "and kernel, never pooled across kernels. The spec's analytic count of stored values times the dtype's "
    "size is shown beside it: where the ratio is far from 1 the framework stores something else (a fused "
    "kernel's workspace, recomputed or extra buffers). CPU resident memory is a labelled column that decides "
    "nothing; records without saved_bytes (schema 1) are judged on their peak reading as before."
)
_SAVED_COLUMNS = [
    *("device", "backend", "kernel", "arch", "B", "T", "H", "saved MiB", "analytic MiB", "saved / analytic"),
    *("saved parameter MiB", "peak reading MiB (kind)"),
]
_VALUE_BYTES = {"float64": 8, "float32": 4, "tf32": 4, "bfloat16": 2, "float16": 2}


def value_bytes(rec: Record) -> int:
    """Bytes per stored value at the record's precision (tf32 stores float32 values)."""
    return _VALUE_BYTES.get(str(R.cfg(rec, "precision", "float32")), 4)


def saved_bytes(rec: Record) -> float:
    """The record's ``saved_bytes`` (NaN where it has none: schema 1)."""
    return R.fmetric(rec, "saved_bytes")


def has_saved_bytes(rec: Record) -> bool:
    value = saved_bytes(rec)
    return math.isfinite(value) and value > 0


def split_memory_measure(recs: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """(records with ``saved_bytes``, which decide; the rest, judged on their peak reading the old way)."""
    return [r for r in recs if has_saved_bytes(r)], [r for r in recs if not has_saved_bytes(r)]


def with_memory(recs: Sequence[Record], arch: str | None = None) -> list[Record]:
    """The records with either memory measure (of ``arch`` alone, when named)."""
    read = {id(r) for r in memory_records(recs, arch)}
    return [r for r in recs if id(r) in read or (arch in (None, R.arch(r)) and has_saved_bytes(r))]


def saved_median(recs: Sequence[Record]) -> float:
    """Median ``saved_bytes`` over records (repeats of a cell agree: the count is exact); NaN without one."""
    vals = [saved_bytes(r) for r in recs if has_saved_bytes(r)]
    return float(np.median(vals)) if vals else math.nan


def analytic_bytes(rec: Record) -> float:
    """The spec's analytic count of stored values (on the record's attention path) times the value size."""
    count = R.metric(rec, "stored_activations")
    if count is None:
        spec = spec_object(rec)
        path = R.exec_path(rec) if R.exec_path(rec) == "fused_attention" else "reference"
        count = spec.stored_activations(int(R.cfg(rec, "batch")), int(R.seq_len(rec)), attention_path=path)
    return float(count) * value_bytes(rec)


def peak_reading(recs: Sequence[Record]) -> str:
    """The peak-memory reading in MiB with its kind (on CPU resident memory: shown, never deciding)."""
    value = memory(recs)
    return f"{fmt(value / MiB)} ({memory_kind(recs)})" if math.isfinite(value) else "-"


def storage_tables(claim_id: str, recs: Sequence[Record]) -> list[Table]:
    """Per cell: saved_bytes, the analytic bytes, their ratio and the peak reading; per (device, backend,
    kernel, architecture): the ratio's range, which says from the numbers what each framework stores."""
    exact = [r for r in recs if has_saved_bytes(r)]
    cells = by(exact, R.device, R.backend, kernel, R.arch, lambda r: R.cfg(r, "batch"), R.seq_len, R.size)
    rows, ratios = [], {}
    for (dev, be, kern, a, b, t, h), crecs in cells.items():
        saved, analytic = saved_median(crecs), analytic_bytes(crecs[0])
        ratios.setdefault((dev, be, kern, a), []).append(saved / analytic)
        params = float(np.median([R.fmetric(r, "saved_param_bytes") for r in crecs]))
        row = [dev, be, kern, a, b, t, h, fmt(saved / MiB), fmt(analytic / MiB), fmt(saved / analytic)]
        rows.append([*row, fmt(params / MiB), peak_reading(crecs)])
    summary = [[*k, len(v), fmt(min(v)), fmt(float(np.median(v))), fmt(max(v))] for k, v in ratios.items()]
    return [
        Table(
            f"{claim_id}_saved_bytes",
            f"{claim_id}: bytes saved for the backward pass vs the analytic count (peak reading: decides nothing "
            "on CPU)",
            _SAVED_COLUMNS,
            rows,
        ),
        Table(
            f"{claim_id}_storage_ratio",
            f"{claim_id}: saved / analytic bytes per backend and kernel (what each framework stores)",
            ["device", "backend", "kernel", "arch", "cells", "min", "median", "max"],
            summary,
        ),
    ]


def storage_text(recs: Sequence[Record]) -> str:
    """One sentence, from the numbers: the median saved / analytic ratio per device, backend and kernel
    (over the same cells as the ``storage_ratio`` table)."""
    summary = storage_tables("", recs)[1].rows
    if not summary:
        return ""
    shown = [f"{be} {kern} {a} ({dev}) x{median}" for dev, be, kern, a, _, _, median, _ in summary]
    return " Saved over analytic bytes (median per kernel): " + "; ".join(shown) + "."
