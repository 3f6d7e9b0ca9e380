"""Reading result records (DESIGN.md "Results") and picking fields out of them.

A record is one JSON object per line in ``results/<run-name>/records.jsonl`` (see
``experiments.records.store``). The loader reads them all in sorted run order, keeps the first
record of each ``key``, and returns them in that order, so that everything computed
from them is deterministic. Non-finite numbers are stored as ``null``: ``fmetric``
reads them back as NaN.

Schema 2 records carry the grid's own size coordinates (``sizes``) and the device's
name for both backends (``env.device_name``); the accessors read those directly. Schema 1
records (every committed one; they are never rewritten) lack them, and the ``_schema1_*``
fallbacks infer them the way readers always did.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def load_records(results_dir: str | Path) -> list[Record]:
    """Every record under ``results_dir`` (``<run>/records.jsonl``; runs whose name starts with
    ``_`` are scratch and skipped). One record per ``key``: the first ``ok`` one (a retried
    cell appends a second record after an ``error``), else the first, in order of first appearance;
    a cell stored by several grids serves the claims of all of them."""
    from experiments.records.store import RECORDS, parse_lines

    root = Path(results_dir)
    if not root.is_dir():
        return []
    chosen: dict[str, Record] = {}
    for path in sorted(root.glob(f"*/{RECORDS}")):
        if path.parent.name.startswith("_"):
            continue
        for rec in parse_lines(path.read_bytes())[0]:
            if "config" not in rec:
                continue
            key = str(rec.get("key", f"#{len(chosen)}"))
            prev = chosen.get(key)
            if prev is None or (not ok(prev) and ok(rec)):
                chosen[key] = rec
            if prev is not None:  # the same cell in another grid serves that grid's claims too
                merged = list(dict.fromkeys([*(prev.get("claim_ids") or []), *(rec.get("claim_ids") or [])]))
                chosen[key] = {**chosen[key], "claim_ids": merged}
    return list(chosen.values())


# -- fields ------------------------------------------------------------------------------


def cfg(rec: Record, name: str, default: Any = None) -> Any:
    return rec.get("config", {}).get(name, default)


def spec_field(rec: Record, name: str, default: Any = None) -> Any:
    return rec.get("config", {}).get("spec", {}).get(name, default)


def task_param(rec: Record, name: str, default: Any = None) -> Any:
    return rec.get("config", {}).get("task_params", {}).get(name, default)


def opt(rec: Record, name: str, default: Any = None) -> Any:
    return rec.get("config", {}).get("optimizer", {}).get(name, default)


def setting(rec: Record, name: str, default: Any = None) -> Any:
    """A cell-kind setting (train ``steps``, ``eval_every``...; bench ``min_timed_steps``...)."""
    return rec.get("config", {}).get("settings", {}).get(name, default)


def metric(rec: Record, name: str, default: Any = None) -> Any:
    value = rec.get("metrics", {}).get(name, default)
    return default if value is None else value


def fmetric(rec: Record, name: str) -> float:
    """A metric as a float; NaN when missing or not a number."""
    value = rec.get("metrics", {}).get(name)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def arch(rec: Record) -> str:
    return rec.get("arch") or cfg(rec, "arch")


def backend(rec: Record) -> str:
    return rec.get("backend") or cfg(rec, "backend")


def kind(rec: Record) -> str:
    return rec.get("kind") or cfg(rec, "kind")


def seed(rec: Record) -> int:
    return int(rec.get("seed", cfg(rec, "seed", 0)))


def schema(rec: Record) -> int:
    return int(rec.get("schema", 1))


def size(rec: Record) -> int | None:
    """The grid's ``hidden`` coordinate (hidden_size, or d_model for a Transformer); None where the grid
    set no hidden size (schema 2)."""
    if schema(rec) >= 2:
        return (rec.get("sizes") or {}).get("hidden")
    return _schema1_size(rec)


def _schema1_size(rec: Record) -> int | None:
    """Schema 1 records lack ``sizes``: the spec field that ``fields_for_size`` set from the hidden size."""
    return spec_field(rec, "hidden_size", spec_field(rec, "d_model"))


def seq_len(rec: Record) -> int | None:
    return cfg(rec, "seq_len")


def device(rec: Record) -> str:
    """``cpu`` or ``cuda``: where the cell ran."""
    return str(cfg(rec, "device") or rec.get("env", {}).get("device_kind") or "cpu")


def device_name(rec: Record) -> str:
    """The device's model name (the CPU's or the GPU's); the device kind where the record names none."""
    env = rec.get("env", {})
    name = env.get("device_name") if schema(rec) >= 2 else _schema1_device_name(rec)
    return str(name) if name else device(rec)


def _schema1_device_name(rec: Record) -> str | None:
    """Schema 1: torch recorded the CPU's model, jax just "cpu" (kept: the report shows what was recorded);
    a record with no device name falls back to the CPU model when it ran on the CPU."""
    env = rec.get("env", {})
    return env.get("device_name") or (env.get("cpu") if device(rec) == "cpu" else None)


def exec_path(rec: Record) -> str:
    """The execution path the cell actually used (``cudnn``, ``aten``, ``scan``, ``fused_attention``...)."""
    return str(rec.get("path") or cfg(rec, "path") or "")


def ok(rec: Record) -> bool:
    return rec.get("status") == "ok"


def has_claim(rec: Record, claim_id: str) -> bool:
    return claim_id in (rec.get("claim_ids") or [])


def select(
    records: Iterable[Record],
    claim_id: str | None = None,
    *,
    kinds: tuple[str, ...] | None = None,
    only_ok: bool = False,
    where: Callable[[Record], bool] | None = None,
) -> list[Record]:
    out = []
    for rec in records:
        if claim_id is not None and not has_claim(rec, claim_id):
            continue
        if kinds is not None and kind(rec) not in kinds:
            continue
        if only_ok and not ok(rec):
            continue
        if where is not None and not where(rec):
            continue
        out.append(rec)
    return out


def group(records: Iterable[Record], key: Callable[[Record], Any]) -> dict[Any, list[Record]]:
    """Records grouped by ``key``, groups in sorted key order (None sorts first)."""
    groups: dict[Any, list[Record]] = {}
    for rec in records:
        groups.setdefault(key(rec), []).append(rec)
    return dict(sorted(groups.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_sort_key(v) for v in value)
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)):
        return (1, float(value), "")
    return (2, 0.0, str(value))


def devices(records: Iterable[Record]) -> list[str]:
    """Devices present, cpu first."""
    return sorted({device(r) for r in records}, key=lambda d: (d != "cpu", d))


def device_label(records: list[Record], dev: str) -> str:
    """``cpu (Intel Xeon ...)`` / ``cuda (NVIDIA H100 ...)``: the device and its name(s)."""
    names = sorted({device_name(r) for r in records if device(r) == dev} - {dev})
    return f"{dev} ({'; '.join(names)})" if names else dev
