"""S9: where a Transformer at d=768, B=32 crosses 16 GiB."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from experiments.claims.base import ClaimResult, Table, fmt, not_run
from experiments.claims.common import by, device_rows, finish, memory, param_count
from experiments.claims.cost.common import (
    SAVED_BYTES_NOTE,
    GiB,
    cap_cpu_memory,
    has_saved_bytes,
    kernel,
    saved_median,
    storage_tables,
    storage_text,
    value_bytes,
)
from experiments.claims.registry import claim
from experiments.claims.stats import loglog_fit
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, REFUTED, Part
from experiments.records import fields as R
from experiments.records.fields import Record


@claim(
    id="S9",
    priority="P2",
    source="004 (case 1)",
    statement="A Transformer at B=32, T=512, d=768 runs out of 16 GB; T=256 fits.",
    measure=(
        "peak memory of the suite's Transformer at d=768 over T and depth (GPU), or its saved bytes extrapolated "
        "to the claim's size (any device); report where 16 GB is crossed."
    ),
    family="cost",
    about_gpu=True,
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs = R.select(records, "S9", kinds=("bench",))
    usable = [r for r in recs if R.ok(r) or r.get("status") == "oom"]
    if not usable:
        return not_run("S9", "bench cells of the Transformer at d=768, B=32 over T and depth")
    table_rows: list[list] = []
    extrapolated: list[list] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, legacy_parts, summary = [], [], []
        groups = by(dev_recs, R.backend, kernel, lambda r: R.spec_field(r, "num_layers"))
        for (be, kern, layers), grecs in groups.items():
            label = f"{be} {kern}: {layers} layers"
            direct = _direct_part(dev, label, grecs, table_rows, summary)
            measured_here = direct is not None and any(_decisive(r) for r in grecs)
            if measured_here:
                parts.append(direct)  # an allocator peak or an oom: measured, not extrapolated
            elif direct is not None and not any(has_saved_bytes(r) for r in grecs):
                legacy_parts.append(direct)  # schema 1 on CPU: resident memory, capped as before
            fitted = _extrapolated_part(label, [r for r in grecs if has_saved_bytes(r)], extrapolated)
            if fitted is not None:  # the extrapolation decides only where nothing was measured at the claim's size
                parts.append(replace(fitted, decides=not measured_here))
                summary.append(f"{label}: {fitted.measured}")
        return parts + cap_cpu_memory(legacy_parts, [r for r in dev_recs if not has_saved_bytes(r)]), "; ".join(summary)

    rows, parts = device_rows(usable, judge, about_gpu=True)
    table = Table(
        "S9_transformer_16GB",
        "S9: Transformer (d=768, B=32) training-step peak reading vs T and depth (CPU resident memory: decides "
        "nothing)",
        ["device", "backend / kernel", "layers", "T", "GiB", "over 16 GiB"],
        table_rows,
    )
    extra = Table(
        "S9_extrapolated",
        "S9: training-step memory at the claim's size, extrapolated from saved bytes (an extrapolation)",
        ["backend / kernel", "layers", "d", "B measured", "T", "saved GiB (at B=32)", "source", "estimate GiB"],
        extrapolated,
    )
    text = (
        "Claimed: a Transformer at B=32, T=512, d=768 runs out of 16 GB; T=256 fits. The source names no depth; "
        "the tables report, per depth, where 16 GiB is crossed. Measured: an allocator peak or an out-of-memory "
        "cell on a GPU. Extrapolated, and stated as such: the saved bytes of the backward pass at the claim's T "
        "(measured there, or from a power law fitted to the measured T), scaled linearly to B=32, plus "
        f"{PARAM_COPIES} copies of the parameters (weights, gradients and Adam's two moments). That estimate "
        "is a lower bound (no allocator slack, no backward temporaries); within "
        f"{fmt(100 * MARGIN)}% of 16 GiB it decides nothing. " + SAVED_BYTES_NOTE + storage_text(recs)
    )
    tables = [table, extra, *storage_tables("S9", [r for r in usable if R.ok(r)])]
    return finish("S9", rows, parts, tables, [], text, recs)


LIMIT = 16 * GiB
CLAIM_BATCH, CLAIM_D, CLAIM_T = 32, 768, (256, 512)
PARAM_COPIES = 4  # weights, gradients, Adam's first and second moments
MARGIN = 0.10  # an extrapolated estimate this close to 16 GiB decides nothing


def _decisive(rec: Record) -> bool:
    """An out-of-memory cell or a device allocator's peak: a direct answer (CPU resident memory is not)."""
    return rec.get("status") == "oom" or not str(R.metric(rec, "mem_kind", "")).startswith("cpu_rss")


def _direct_part(dev: str, label: str, grecs: list[Record], rows: list[list], summary: list[str]) -> Part | None:
    """The peak readings (or oom) at each T, into the table; a part where both T=256 and T=512 were run."""
    over = {}
    layers = R.spec_field(grecs[0], "num_layers")
    for t, trecs in by(grecs, R.seq_len).items():
        if any(r.get("status") == "oom" for r in trecs):
            over[t] = (math.inf, True)
        else:
            m = memory([r for r in trecs if R.ok(r)])
            over[t] = (m, m > LIMIT)
        rows.append([dev, label.split(":")[0], layers, t, "oom" if over[t][0] == math.inf else fmt(over[t][0] / GiB)])
        rows[-1].append(over[t][1])
    crossing = next((t for t in sorted(over) if over[t][1]), None)
    summary.append(f"{label}: peak reading crosses 16 GiB at T={crossing}" if crossing else f"{label}: never over")
    if 256 not in over or 512 not in over:
        return None
    at512 = "exceeds" if over[512][1] else "fits in"
    at256 = "exceeds" if over[256][1] else "fits"
    reason = f"T=512 {at512} 16 GiB, T=256 {at256}"
    return Part(label, reason, CONFIRMED if over[512][1] and not over[256][1] else REFUTED, reason)


def _extrapolated_part(label: str, exact: list[Record], rows: list[list]) -> Part | None:
    """The claim's question answered from saved bytes at the claim's size: a stated extrapolation."""
    if not exact:
        return None
    batch = int(R.cfg(exact[0], "batch"))
    d = R.spec_field(exact[0], "d_model")
    layers = R.spec_field(exact[0], "num_layers")
    saved = {t: saved_median(v) * CLAIM_BATCH / batch for t, v in by(exact, R.seq_len).items()}
    params = PARAM_COPIES * float(np.median([param_count(r) * value_bytes(r) for r in exact]))
    fit = loglog_fit(list(saved), list(saved.values()))
    estimate = {}
    for t in CLAIM_T:
        source = "measured" if t in saved else f"fit T^{fmt(fit.slope)}"
        at = saved.get(t, math.exp(fit.intercept) * t**fit.slope if math.isfinite(fit.slope) else math.nan)
        estimate[t] = at + params
        rows.append([label.split(":")[0], layers, d, batch, t, fmt(at / GiB), source, fmt(estimate[t] / GiB)])
    measured = ", ".join(f"T={t}: {fmt(estimate[t] / GiB)} GiB (extrapolated)" for t in CLAIM_T)
    if not all(math.isfinite(v) for v in estimate.values()):
        return Part(f"{label}, extrapolated", measured, INCONCLUSIVE, "one measured T: no fit to extrapolate")
    if d != CLAIM_D:
        why = f"measured at d={d}; the claim is at d={CLAIM_D}, and saved bytes do not scale simply in d"
        return Part(f"{label}, extrapolated", measured, INCONCLUSIVE, why)
    close = [t for t in CLAIM_T if abs(estimate[t] / LIMIT - 1) <= MARGIN]
    if close:
        why = f"extrapolated estimate within {fmt(100 * MARGIN)}% of 16 GiB at T={close}: too close to call"
        return Part(f"{label}, extrapolated", measured, INCONCLUSIVE, why)
    holds = estimate[512] > LIMIT and estimate[256] <= LIMIT
    at = ["exceeds" if estimate[t] > LIMIT else "fits in" for t in CLAIM_T]
    why = f"extrapolated from saved bytes: T=256 {at[0]}, T=512 {at[1]} 16 GiB"
    return Part(f"{label}, extrapolated", measured, CONFIRMED if holds else REFUTED, why)
