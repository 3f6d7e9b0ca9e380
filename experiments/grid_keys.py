"""The keys a grid file may set, their types and defaults, and how a type is described in an error.

``experiments.grid`` validates every key of a grid file against these tables before it
expands a single cell; the cell kinds' own settings join them from the kind registry.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Literal

from pydantic import NonNegativeInt, PositiveInt, TypeAdapter

from experiments.backend import PATH_CHOICES, PATH_NAMES, PRECISIONS
from experiments.spec import REGISTRY, OptimizerSpec

# every path name a grid may ask for: the switch, then each backend's own (checked per backend in the grid)
PATHS = tuple(dict.fromkeys([*PATH_CHOICES, *(n for names in PATH_NAMES.values() for n in names)]))

CORE_TYPES: dict[str, Any] = {
    "kind": str,
    "arch": str,
    "backend": str,
    "device": Literal["cpu", "cuda"],
    "precision": Literal[PRECISIONS],  # type: ignore[valid-type]
    "path": Literal[PATHS],  # type: ignore[valid-type]
    "seed": NonNegativeInt,
    "data_seed": NonNegativeInt | None,
    "batch": PositiveInt,
    "seq_len": PositiveInt | None,
    "hidden": PositiveInt | None,
    "layers": PositiveInt | None,
    "task": str | None,
    "shrunk": bool,  # set by --shrink (grid_keys.shrunk), never by a grid file's author
}
CORE_DEFAULTS: dict[str, Any] = {
    "device": "cpu",
    "precision": "float32",
    "path": "auto",
    "seed": 0,
    "data_seed": None,
    "batch": 32,
    "seq_len": None,
    "hidden": None,
    "layers": None,
    "task": None,
    "shrunk": False,
}
BENCH_SEQ_LEN = 64  # seq_len of a cell without a task when the grid gives none

OPTIMIZER_KEYS: dict[str, str] = {  # grid key -> OptimizerSpec field
    "optimizer": "name",
    "lr": "lr",
    "beta1": "beta1",
    "beta2": "beta2",
    "eps": "eps",
    "weight_decay": "weight_decay",
    "momentum": "momentum",
    "clip_norm": "clip_norm",
}
RESOURCE_TYPES: dict[str, Any] = {
    "cpus": PositiveInt,
    "gpus": NonNegativeInt | None,
    "timeout_s": float,
    "fresh_worker": bool | None,
}
# None: decided per cell in ``_resolve`` (gpus: 1 on cuda; fresh_worker: ``fresh_worker_default``).
RESOURCE_DEFAULTS: dict[str, Any] = {"cpus": 1, "gpus": None, "timeout_s": 3600.0, "fresh_worker": None}
# Kinds whose CPU memory reading (``measure.MemoryMeter``) a reused worker would spoil.
MEMORY_KINDS: tuple[str, ...] = ("bench",)


def fresh_worker_default(kind: str, device: str) -> bool:
    """A fresh worker per cell where a CPU memory reading is taken (the peak RSS must be the cell's alone)."""
    return device == "cpu" and kind in MEMORY_KINDS


TASK_PREFIX = "task_params."
# Spec fields a task sets; a grid with a task may not set them.
TASK_SPEC_FIELDS = ("input_size", "head_kind", "head_out")
ALL_MARKER = "all"


@functools.cache
def spec_types() -> dict[str, Any]:
    """Every spec field of every architecture, with its type (``head`` as head_kind/head_out)."""
    types: dict[str, Any] = {"head_kind": str, "head_out": PositiveInt}
    for cls, _ in REGISTRY.values():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in ("arch", "head"):
                types.setdefault(f.name, hints[f.name])
    return types


def optimizer_types() -> dict[str, Any]:
    hints = typing.get_type_hints(OptimizerSpec)
    return {key: hints[field] for key, field in OPTIMIZER_KEYS.items()}


def setting_type(default: Any) -> Any:
    if isinstance(default, bool):
        return bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    if default is None:
        return float | None
    return Any


def describe_type(tp: Any) -> str:
    text = {
        PositiveInt: "a positive integer",
        NonNegativeInt: "an integer >= 0",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        str: "a string",
    }.get(tp)
    if text:
        return text
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(map(str, args))
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return (describe_type(inner[0]) if len(inner) == 1 else "a value") + " (or omit it)"
    return "a valid value"


@functools.cache
def adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp)


# ``--shrink``: a grid's cells with every size capped, to check that a run's path works end to end
# (on CPU, before a GPU's minutes are spent), never to measure: such a cell's config says ``shrunk``,
# so its key and records never mix with a real cell's.
SHRINK: dict[str, int | float] = {"hidden": 8, "seq_len": 8, "batch": 2, "input_size": 4, "d_ff": 16}
SHRINK_SETTINGS: dict[str, Any] = {"min_time_s": 0.0, "min_timed_steps": 20, "max_warmup_steps": 3, "steps": 5}


def shrunk(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key, cap in SHRINK.items():
        if isinstance(out.get(key), int | float):
            out[key] = min(out[key], cap)
    out.setdefault("hidden", SHRINK["hidden"])
    out.setdefault("batch", SHRINK["batch"])
    out.update(SHRINK_SETTINGS)  # a kind reads the settings it has and ignores the others
    out["fresh_worker"] = False  # reused workers: the shrunk cells check the path, their timings mean nothing
    out["shrunk"] = True
    return out
