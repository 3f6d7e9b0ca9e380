"""What ran, said from the records: the "*Ran:*" paragraph of each claim's section.

The claims list says how a claim should be measured (the plan); this module says what the
records behind a verdict hold: the axes and the values present, the model sizes, the optimizer
and its budget, the training-set size, the seeds, the kernels that ran, the device and the
precision, and how many records there are. Nothing here is typed: every value is read from the
records' configs and metrics, so a grid that ran other sizes than the plan names shows them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from experiments.claims.base import fmt
from experiments.records import fields as R
from experiments.records.fields import Record
from experiments.records.frame import config_fields

MAX_VALUES = 8  # values listed for one field; beyond, the first and last few and a count


def _task(rec: Record) -> str | None:
    name = R.cfg(rec, "task")
    if not name:
        return None
    extra = R.task_param(rec, "dataset") or R.task_param(rec, "series")
    return f"{name}:{extra}" if extra else str(name)


def _params(rec: Record) -> int | None:
    """The parameter count the record names, else the analytic one from its spec (None if neither)."""
    from experiments.claims.common import param_count

    try:
        return param_count(rec)
    except (KeyError, TypeError, ValueError):  # a spec this code no longer reads: say nothing
        return None


# The fields every paragraph names, in order: (label, reader). A field whose value is the same in
# every record is stated once ("fixed"); one that varies is an axis, with its values.
NAMED: list[tuple[str, Callable[[Record], Any]]] = [
    ("arch", R.arch),
    ("task", _task),
    ("T", R.seq_len),
    ("hidden", R.size),
    ("layers", lambda r: R.spec_field(r, "num_layers")),
    ("B", lambda r: R.cfg(r, "batch")),
    ("optimizer", lambda r: R.opt(r, "name")),
    ("lr", lambda r: R.opt(r, "lr")),
    ("clip norm", lambda r: R.opt(r, "clip_norm")),
    ("steps", lambda r: (R.cfg(r, "settings") or {}).get("steps")),
    ("training set", lambda r: R.task_param(r, "n_train")),
    ("backend", R.backend),
    ("precision", lambda r: R.cfg(r, "precision")),
]
# Config fields the named ones already cover, or that follow from them (the head from the task,
# the input size from the data, the seeds said on their own), left out of the other axes.
COVERED = {
    "seed", "data_seed", "kind", "arch", "backend", "task", "device", "precision", "seq_len", "batch", "repeat",
    "spec.arch", "spec.cell", "spec.hidden_size", "spec.d_model", "spec.num_layers", "spec.input_size",
    "spec.head_kind", "spec.head_out", "task_params.seq_len", "task_params.n_train", "task_params.n_val",
    "task_params.n_test", "task_params.dataset", "task_params.series", "optimizer.name", "optimizer.lr",
    "optimizer.clip_norm", "settings.steps",
}  # fmt: skip
LABELS = {"spec.forget_bias": "forget bias", "path": "path asked", "task_params.padding": "padding"}
NONE = {"training set": "the data set's own", "steps": "-"}  # what a missing value means there
BARE = {"arch", "task", "optimizer", "backend", "precision"}  # stated without their label when fixed


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt(value)
    return str(value)


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value) if math.isfinite(value) else math.inf, "")
    return (2, 0.0, str(value))


def values_text(values: Sequence[Any], none: str = "none") -> str:
    """Distinct values, sorted: ``32`` for one, ``{10, 20}`` for several, shortened beyond ``MAX_VALUES``;
    a missing value reads ``none``."""
    distinct = sorted({json.dumps(v, sort_keys=True): v for v in values}.values(), key=_sort_key)
    shown = [none if v is None else _show(v) for v in distinct]
    if len(shown) == 1:
        return shown[0]
    if len(shown) > MAX_VALUES:
        shown = [*shown[:3], "…", *shown[-3:]]
        return "{" + ", ".join(shown) + f"}} ({len(distinct)} values)"
    return "{" + ", ".join(shown) + "}"


def seeds_per_setting(records: Sequence[Record]) -> int:
    """The most seeds any one configuration ran with (0 without records)."""
    groups: dict[str, set[int]] = {}
    for r in records:
        cfg = dict(r.get("config", {}))
        cfg.pop("seed", None)
        cfg.pop("data_seed", None)
        groups.setdefault(json.dumps(cfg, sort_keys=True, default=str), set()).add(R.seed(r))
    return max((len(s) for s in groups.values()), default=0)


def _distinct(records: Sequence[Record], read: Callable[[Record], Any]) -> list[Any]:
    return list({json.dumps(v, sort_keys=True, default=str): v for v in map(read, records)}.values())


def _axes_and_fixed(records: Sequence[Record]) -> tuple[list[str], list[str]]:
    axes, fixed = [], []
    for label, read in NAMED:
        values = _distinct(records, read)
        if len(values) > 1:
            axes.append(f"{label} ∈ {values_text(values, NONE.get(label, 'none'))}")
        elif values and values[0] is not None:
            fixed.append(_show(values[0]) if label in BARE else f"{label} {_show(values[0])}")
    flat = [config_fields(r) for r in records]
    for name in sorted({n for f in flat for n in f} - COVERED):
        # among the records that have the field: one an architecture or a kind lacks is not an axis
        values = _distinct([f for f in flat if name in f], lambda f, n=name: f[n])
        if len(values) > 1:
            axes.append(f"{LABELS.get(name, name)} ∈ {values_text(values)}")
    return axes, fixed


def _statuses(records: Sequence[Record]) -> str:
    counts = Counter(str(r.get("status")) for r in records)
    if set(counts) == {"ok"}:
        return "all ok"
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0])))


def _kinds(records: Sequence[Record]) -> str:
    counts = Counter(R.kind(r) for r in records)
    return ", ".join(f"{n} `{k}`" for k, n in sorted(counts.items()))


def _execution(records: Sequence[Record]) -> list[str]:
    out = []
    params = [p for p in map(_params, records) if p is not None]
    if params:
        out.append(f"Parameters: {values_text(params)}.")
    kernels = sorted({f"{R.backend(r)} {R.exec_path(r)}" for r in records if R.exec_path(r)})
    if kernels:
        out.append(f"Kernels that ran: {', '.join(kernels)}.")
    timed = [int(R.fmetric(r, "timed_steps")) for r in records if math.isfinite(R.fmetric(r, "timed_steps"))]
    if timed:
        out.append(f"Timed steps per cell: {min(timed)}–{max(timed)}." if min(timed) != max(timed) else "")
    repeats = {R.cfg(r, "repeat") or 0 for r in records}  # repeat 0 keeps the cell's key: no field
    if len(repeats) > 1:
        out.append(f"Repeats per point: {len(repeats)}.")
    return [x for x in out if x]


def _where(records: Sequence[Record]) -> str:
    labels = [R.device_label(list(records), d) for d in R.devices(records)]
    threads = sorted({str((r.get("env") or {}).get("omp_num_threads") or "default") for r in records})
    return f"Device: {'; '.join(labels)}; OMP threads {values_text(threads)}."


def ran_paragraph(records: Sequence[Record], grids: Sequence[str], presets: dict[str, list[str]]) -> str:
    """The "*Ran:*" paragraph for ``records`` (one claim's), stored by ``grids`` (their ``presets``)."""
    if not records:
        return "*Ran:* nothing yet (0 records)."
    axes, fixed = _axes_and_fixed(records)
    grid_text = ", ".join(f"`{g}` ({', '.join(presets.get(g, [])) or 'no preset'})" for g in grids)
    seeds = sorted({R.seed(r) for r in records})
    parts = [
        f"*Ran:* {len(records)} records ({_statuses(records)}): {_kinds(records)} cells"
        + (f", from {grid_text}." if grid_text else "."),
        f"Axes: {'; '.join(axes)}." if axes else "Axes: none (one setting).",
        f"Fixed: {', '.join(fixed)}." if fixed else "",
        *_execution(records),
        f"Seeds: {values_text(seeds)} (at most {seeds_per_setting(records)} per setting).",
        _where(records),
    ]
    return " ".join(p for p in parts if p)
