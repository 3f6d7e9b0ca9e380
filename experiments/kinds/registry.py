"""The registry of cell kinds: ``@register_cell_kind(name, ...)`` on ``fn(backend, cell)``.

A kind is a function registered with ``@register_cell_kind(name, ...)``::

    @register_cell_kind("my_probe", settings={"probe_steps": 10}, task="optional")
    def my_probe(backend: Backend, cell: Cell) -> dict | CellResult:
        spec = cell.build_spec()                       # the ArchSpec, validated
        model = build_model(backend, cell, spec, spec.init_params(cell.seed))
        ...
        return {"my_metric": 1.0}                      # metrics; status "ok", path unset
        # or CellResult(metrics={...}, status="nan", path=backend.execution_path(model))

It runs inside a worker process that holds exactly one backend (``backend``, an
``experiments.backend.Backend``); it must not import torch or jax itself (go
through ``backend``). ``cell.settings`` holds the kind's settings (the defaults
given at registration, overridden by the grid); ``cell.task`` /
``cell.task_params`` / ``cell.data_seed`` name the task (``task="none"``: the
kind takes no task; ``"optional"``; ``"required"``: the driver refuses a grid
without one). With a task, the driver has already set ``input_size`` and the
head in ``cell.spec_dict`` from the task. An exception raised by the function is
recorded: an out-of-memory error as status ``oom``, ``FloatingPointError`` as
``nan``, anything else as ``error`` with its message; the grid goes on.
Metric values must be JSON-serialisable (NumPy scalars/arrays are converted).

The kinds themselves live in the modules of ``experiments.kinds`` (bench, train,
probes); importing ``experiments.kinds`` registers them all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from experiments.cell import Cell, CellResult
from experiments.errors import UserError

TaskUse = Literal["none", "optional", "required"]
KindFn = Callable[[Any, Cell], "dict[str, Any] | CellResult"]
SettingsCheck = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CellKind:
    name: str
    fn: KindFn
    settings: dict[str, Any]  # defaults; the grid may set exactly these keys
    task: TaskUse = "none"
    check: SettingsCheck | None = None  # raises UserError(setting, problem, fix) on bad settings


CELL_KINDS: dict[str, CellKind] = {}


def register_cell_kind(
    name: str, *, settings: Mapping[str, Any] | None = None, task: TaskUse = "none", check: SettingsCheck | None = None
) -> Callable[[KindFn], KindFn]:
    """Register ``fn(backend, cell) -> metrics dict | CellResult`` as the cell kind ``name``.

    ``settings``: the kind's own grid keys and their defaults (JSON values; ``None``
    means "unset, any number allowed"). ``task``: whether cells of this kind read a task.
    ``check(settings)``: extra validation, raising ``UserError``.
    """
    if task not in ("none", "optional", "required"):
        raise ValueError(f"task must be none, optional or required, not {task!r}")

    def wrap(fn: KindFn) -> KindFn:
        if name in CELL_KINDS and CELL_KINDS[name].fn is not fn:
            raise ValueError(f"cell kind {name!r} registered twice")
        CELL_KINDS[name] = CellKind(name=name, fn=fn, settings=dict(settings or {}), task=task, check=check)
        return fn

    return wrap


def get_kind(name: str) -> CellKind:
    if name not in CELL_KINDS:
        raise UserError("kind", f"unknown cell kind {name!r}", f"use one of {', '.join(sorted(CELL_KINDS))}")
    return CELL_KINDS[name]


def build_model(backend: Any, cell: Cell, spec: Any, params: dict[str, Any]) -> Any:
    """``backend.build`` with the cell's precision, device and fast-path switch: how every kind builds."""
    return backend.build(spec, params, precision=cell.precision, device=cell.device, path=cell.path_choice)
