"""The one record builder: a cell and its result become the JSON line the store appends.

A record (DESIGN.md): ``schema``, ``key``, ``claim_ids``, ``grid``, ``arch``,
``backend``, ``path`` (the execution path that ran), ``task``, ``kind``,
``config``, ``seed``, ``status``, ``metrics``, ``env``; plus ``sizes`` (the grid's
own size coordinates, e.g. ``{"hidden": 128}``), ``wall_s``, and ``error`` when the
cell failed.

Schema history: 1 had no ``sizes`` and jax's ``env.device_name`` on CPU was "cpu"
(torch's the CPU model); 2 adds ``sizes`` and both backends name the CPU model.
``experiments.records.fields`` reads both.
"""

from __future__ import annotations

from typing import Any

from experiments.cell import STATUSES, Cell
from experiments.records.envinfo import record_env

SCHEMA = 2
RECORD_KEYS: tuple[str, ...] = (
    "schema",
    "key",
    "claim_ids",
    "grid",
    "arch",
    "backend",
    "path",
    "task",
    "kind",
    "config",
    "seed",
    "status",
    "metrics",
    "env",
)


def make_record(cell: Cell, result: dict[str, Any], driver: dict[str, Any]) -> dict[str, Any]:
    """``result``: a worker's answer (``status``, ``path``, ``metrics``, ``error``, ``worker_env``, ``cell_s``);
    ``driver``: ``envinfo.driver_env(executor)``."""
    if result["status"] not in STATUSES:  # a kind's bug, not a result: never stored
        raise ValueError(f"cell {cell.key}: status {result['status']!r} is none of {', '.join(STATUSES)}")
    worker = result.get("worker_env") or {"device_kind": cell.device}
    record = {
        "schema": SCHEMA,
        "key": cell.key,
        "claim_ids": list(cell.claim_ids),
        "grid": cell.grid,
        "arch": cell.arch,
        "backend": cell.backend,
        "path": result.get("path"),
        "task": cell.task,
        "kind": cell.kind,
        "config": cell.config,
        "seed": cell.seed,
        "status": result["status"],
        "metrics": result.get("metrics") or {},
        "env": record_env(driver, worker),
        "sizes": dict(cell.sizes),
        "wall_s": result.get("cell_s"),
    }
    if result.get("error"):
        record["error"] = result["error"]
    return record
