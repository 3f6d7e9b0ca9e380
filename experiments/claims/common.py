"""Helpers the claim modules share: per-device verdict rows, bench timings, seed groups."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from experiments.claims.base import ClaimResult, DeviceVerdict, FigureSpec, Table, parts_table
from experiments.claims.stats import Estimate, median_rel_se, ratio_estimate
from experiments.claims.verdict import NOT_RUN, Part, Verdict, combine
from experiments.records import fields as R
from experiments.records.fields import Record
from experiments.spec import ArchSpec, spec_from_dict

CPU_NOTE_GPU_CLAIM = "CPU only: the claim is about GPUs; the GPU verdict is the one that counts"


# -- parameter counts from a record's spec -----------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _spec_obj(spec_json: str) -> ArchSpec:
    return spec_from_dict(json.loads(spec_json))


def spec_object(rec: Record) -> ArchSpec:
    """The record's resolved spec as an ArchSpec (cached by its JSON)."""
    return _spec_obj(json.dumps(rec["config"]["spec"], sort_keys=True))


def param_count(rec: Record) -> int:
    """The analytic parameter count of the record's model (from its resolved spec)."""
    value = R.metric(rec, "param_count")
    if value is not None:
        return int(value)
    return int(spec_object(rec).param_count())


# -- timings ------------------------------------------------------------------------------------


def timed_steps(rec: Record) -> int:
    """How many steps the bench cell timed (20, the protocol's minimum, where a record lacks it)."""
    value = R.metric(rec, "timed_steps")
    return int(value) if value is not None else 20


def disturbed(rec: Record) -> bool:
    """The host was busy with other work while this cell was timed (``experiments.kinds.host``)."""
    return bool(R.metric(rec, "disturbed", False))


def undisturbed(recs: Sequence[Record]) -> list[Record]:
    """The stated rule: a disturbed timing is left out where an undisturbed repeat of the point exists;
    where every repeat was disturbed, all are kept (and the record says so)."""
    quiet = [r for r in recs if not disturbed(r)]
    return quiet if quiet else list(recs)


class Timed:
    """A step time: the median over records of their medians, and its relative standard error.
    Repeats of one point whose host was disturbed are left out when a quiet one exists (``undisturbed``)."""

    def __init__(self, recs: Sequence[Record], metric: str = "step_s_median", iqr: str = "step_s_iqr") -> None:
        recs = undisturbed(recs)
        vals = [R.fmetric(r, metric) for r in recs]
        vals = [v for v in vals if math.isfinite(v) and v > 0]
        self.n = len(vals)
        self.value = float(np.median(vals)) if vals else math.nan
        ses = [median_rel_se(R.fmetric(r, metric), R.fmetric(r, iqr), timed_steps(r)) for r in recs]
        ses = [s for s in ses if math.isfinite(s)]
        if self.n > 1:  # spread over repeated cells (seeds) counts too
            spread = float(np.std(np.log(vals), ddof=1) / math.sqrt(self.n))
            ses.append(spread)
        self.rel_se = float(max(ses)) if ses else math.nan

    def __truediv__(self, other: Timed) -> Estimate:
        return ratio_estimate(self.value, other.value, self.rel_se, other.rel_se)

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value)


def by(records: Iterable[Record], *keys: Callable[[Record], Any]) -> dict[Any, list[Record]]:
    fn = (lambda r: tuple(k(r) for k in keys)) if len(keys) > 1 else keys[0]
    return R.group(records, fn)


def memory(recs: Sequence[Record]) -> float:
    """Median peak memory (bytes) over records; NaN without a reading."""
    vals = [R.fmetric(r, "peak_mem_bytes") for r in recs]
    vals = [v for v in vals if math.isfinite(v) and v > 0]
    return float(np.median(vals)) if vals else math.nan


def memory_kind(recs: Sequence[Record]) -> str:
    kinds = sorted({str(R.metric(r, "mem_kind", "")) for r in recs} - {""})
    return ", ".join(kinds) if kinds else "peak_mem_bytes"


# -- verdict rows per device --------------------------------------------------------------------


def device_rows(
    records: Sequence[Record],
    judge: Callable[[list[Record], str], tuple[list[Part], str]],
    *,
    about_gpu: bool = False,
    combine_fn: Callable[[list[Part]], Verdict] = combine,
) -> tuple[list[DeviceVerdict], list[tuple[str, Part]]]:
    """One verdict row per device present (cpu first; for a claim ``about_gpu``, the GPU row first, present
    or "not run"). ``judge(device_records, device)`` returns the parts and a one-line "measured"
    summary. Returns the rows and every (device label, part)."""
    rows: list[DeviceVerdict] = []
    all_parts: list[tuple[str, Part]] = []
    for dev in R.devices(records):
        recs = [r for r in records if R.device(r) == dev]
        parts, measured = judge(recs, dev)
        label = R.device_label(list(records), dev)
        verdict = combine_fn(parts)
        note = CPU_NOTE_GPU_CLAIM if (about_gpu and dev == "cpu") else ""
        rows.append(DeviceVerdict(device=label, verdict=verdict, measured=measured, note=note))
        all_parts += [(label, p) for p in parts]
    if about_gpu and "cuda" not in R.devices(records) and rows:
        rows.append(DeviceVerdict(device="cuda", verdict=Verdict(NOT_RUN, "no GPU records yet"), measured="-"))
    if about_gpu:  # the GPU row is the headline of a claim about GPUs; a CPU row is context
        rows.sort(key=lambda row: not row.device.startswith("cuda"))
    return rows, all_parts


def not_ok(rec: Record) -> bool:
    """Did not finish ``ok``: oom, nan, diverged or error."""
    return not R.ok(rec)


def finish(
    claim_id: str,
    rows: list[DeviceVerdict],
    parts: Sequence[tuple[str, Part]],
    tables: Sequence[Table],
    figures: Sequence[FigureSpec],
    text: str,
    recs: Sequence[Record],
    *,
    listed: Callable[[Record], bool] = not_ok,
) -> ClaimResult:
    """The claim's result: its tables, then the verdict parts, then the cells ``listed`` picks out
    as not finished (a family for which a nan or diverged run is a result lists errors only)."""
    tables = [*tables, parts_table(f"{claim_id}_verdict_parts", f"{claim_id}: verdict parts", parts)]
    bad = failed_cells_table(claim_id, [r for r in recs if listed(r)])
    if bad is not None:
        tables.append(bad)
    return ClaimResult(
        claim_id, rows, text=text, tables=list(tables), figures=list(figures), n_records=len(recs), records=list(recs)
    )


def failed_cells_table(claim_id: str, records: Sequence[Record]) -> Table | None:
    """Cells that did not finish ``ok`` (oom, nan, diverged, error): results too, listed."""
    bad = [r for r in records if not_ok(r)]
    if not bad:
        return None
    rows = []
    for r in bad:
        rows.append(
            [
                R.device(r),
                R.backend(r),
                R.arch(r),
                R.seq_len(r),
                R.size(r),
                R.cfg(r, "batch"),
                R.seed(r),
                r.get("status"),
                str(r.get("error") or "")[:120],
            ]
        )
    return Table(
        name=f"{claim_id}_not_ok",
        title=f"{claim_id}: cells that did not finish ok",
        columns=["device", "backend", "arch", "T", "H", "B", "seed", "status", "error"],
        rows=rows,
    )
