"""Synthetic result records with known effects, for the claims and report tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from experiments.spec import make_spec, size_fields, spec_to_dict


def record(
    claim: str | list[str],
    *,
    kind: str = "bench",
    arch: str = "lstm",
    backend: str = "torch",
    device: str = "cpu",
    seq_len: int = 100,
    hidden: int = 32,
    batch: int = 8,
    seed: int = 0,
    status: str = "ok",
    metrics: dict[str, Any] | None = None,
    task: str | None = None,
    task_params: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    precision: str = "float32",
    path: str = "auto",
    exec_path: str = "aten",
    grid: str = "test_grid",
    head_kind: str | None = None,
    schema: int = 1,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    fields = {**size_fields(arch, hidden), **(spec or {})}
    if head_kind is not None:
        fields["head_kind"] = head_kind
        fields["head_out"] = 1 if head_kind.endswith("regress") else 2
    spec_obj = make_spec(arch, **fields)
    config = {
        "kind": kind,
        "arch": arch,
        "backend": backend,
        "device": device,
        "precision": precision,
        "path": path,
        "seed": seed,
        "data_seed": seed,
        "batch": batch,
        "seq_len": seq_len,
        "task": task,
        "task_params": dict(task_params or {}),
        "spec": spec_to_dict(spec_obj),
        "optimizer": {"name": "adam", "lr": 1e-3, "clip_norm": None, **(optimizer or {})},
        "settings": dict(settings or {}),
    }
    key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    claims = [claim] if isinstance(claim, str) else list(claim)
    env = {"device_kind": device, "device_name": "Test CPU" if device == "cpu" else "Test GPU", "cpu": "Test CPU"}
    rec = {
        "schema": schema,
        "key": key,
        "claim_ids": claims,
        "grid": grid,
        "arch": arch,
        "backend": backend,
        "path": exec_path,
        "task": task,
        "kind": kind,
        "config": config,
        "seed": seed,
        "status": status,
        "metrics": dict(metrics or {}),
        "env": env,
    }
    if schema >= 2:  # the grid's own size coordinates travel with the record
        rec["sizes"] = {"hidden": hidden}
    return rec


def bench(claim: str, step_s: float, mem: float | None = None, iqr_frac: float = 0.01, **kw: Any) -> dict[str, Any]:
    metrics = {"step_s_median": step_s, "step_s_iqr": step_s * iqr_frac, "step_s_cv": iqr_frac, "timed_steps": 50}
    if mem is not None:
        metrics["peak_mem_bytes"] = mem
    metrics.update(kw.pop("metrics", {}))
    return record(claim, kind="bench", metrics=metrics, **kw)


def train(claim: str, final: float, baseline: float, threshold: float | None = None, **kw: Any) -> dict[str, Any]:
    """A train cell's record; ``threshold`` is the solved level ``learnt`` reads (the cell's ``metrics.threshold``)."""
    metrics = {"final_val_metric": final, "best_val_metric": final, "baseline_metric": baseline, "diverged": False}
    if threshold is not None:
        metrics["threshold"] = threshold
    metrics.update(kw.pop("metrics", {}))
    return record(claim, kind="train", metrics=metrics, **kw)


def jitter(seed: int, scale: float) -> float:
    """A small deterministic per-seed perturbation in [-scale, scale]."""
    return scale * ((seed * 7919) % 11 - 5) / 5
