"""The unit of work: a ``Cell`` (one fully resolved grid cell), its stable key, and what a cell returns.

A ``Cell`` is one architecture, one backend, one set of sizes, one kind of
measurement. Its ``config`` is the full resolved configuration (every spec field
explicit, optimizer, task, measurement settings), and ``key`` is a hash of it: the
same config always gives the same key, on any machine, so ``run`` can skip cells
already stored. ``sizes`` are the grid's own size coordinates (``hidden`` as the
grid named it, before ``fields_for_size`` turned it into spec fields); they travel
into the record so that readers never invert ``fields_for_size``. What a cell
kind computes lives in ``experiments.kinds``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from experiments.spec import ArchSpec, OptimizerSpec, spec_from_dict

KEY_SALT = "seqbench-cell/1"
# Every status a record can have; all of them are final (a stored key is never rerun).
STATUSES: tuple[str, ...] = ("ok", "oom", "nan", "diverged", "error")


@dataclass
class CellResult:
    """What a kind function may return instead of a bare metrics dict."""

    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    path: str | None = None
    error: str | None = None


def jsonable(value: Any) -> Any:
    """NumPy scalars and arrays to plain Python; non-finite floats stay floats (JSON NaN/Infinity)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


# Settings a cell kind gained after records were stored: at their default they leave a cell's key as
# it was before they existed, so the stored records still count for their grid (set to anything else,
# they change what the cell does, and its key). The store also indexes a record under the key its
# stored config hashes to now (``Store``), so a record stored while a setting was spelt out at its
# default counts too.
KEY_NEUTRAL_SETTINGS: dict[str, Any] = {
    "stop_at_threshold": False,  # train
    "relative_threshold": None,  # train
    "layout": "batch_first",  # grad_flow
}


def config_key(config: Mapping[str, Any]) -> str:
    """Stable hash of a resolved config: canonical JSON (sorted keys, no spaces), sha256, 16 hex digits.
    Settings in ``KEY_NEUTRAL_SETTINGS`` at their default are left out of the hash."""
    settings = config.get("settings")
    if isinstance(settings, Mapping):
        kept = {k: v for k, v in settings.items() if k not in KEY_NEUTRAL_SETTINGS or v != KEY_NEUTRAL_SETTINGS[k]}
        config = {**config, "settings": kept}
    text = json.dumps(jsonable(config), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(f"{KEY_SALT}\n{text}".encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Cell:
    """One resolved grid cell. ``config`` is what the key hashes; ``resources`` are not part of it."""

    grid: str
    claim_ids: tuple[str, ...]
    config: dict[str, Any]
    key: str
    resources: dict[str, Any] = field(default_factory=dict)  # cpus, gpus, timeout_s: how, not what
    coords: dict[str, Any] = field(default_factory=dict)  # the grid's axis values for this cell (for labels)
    sizes: dict[str, Any] = field(default_factory=dict)  # the grid's size coordinates (hidden, layers) it set

    @classmethod
    def make(
        cls,
        grid: str,
        claim_ids: tuple[str, ...],
        config: dict[str, Any],
        resources: dict[str, Any] | None = None,
        coords: dict[str, Any] | None = None,
        sizes: dict[str, Any] | None = None,
    ) -> Cell:
        config = jsonable(config)
        return cls(
            grid=grid,
            claim_ids=tuple(claim_ids),
            config=config,
            key=config_key(config),
            resources=resources or {},
            coords=coords or {},
            sizes=sizes or {},
        )

    # -- the fields a kind reads ---------------------------------------------
    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def arch(self) -> str:
        return self.config["arch"]

    @property
    def backend(self) -> str:
        return self.config["backend"]

    @property
    def device(self) -> str:
        return self.config["device"]

    @property
    def precision(self) -> str:
        return self.config["precision"]

    @property
    def path_choice(self) -> str:
        """The fast-path switch the grid asked for (auto | on | off, or a backend's path name); the
        path that really ran is the record's top-level ``path``."""
        return self.config["path"]

    @property
    def seed(self) -> int:
        return int(self.config.get("seed", 0))  # a benchmark's own cell may have no seed axis

    @property
    def repeat(self) -> int:
        """Which repeat of its grid point this cell is (``repeats`` in the grid file); 0 for the first."""
        return int(self.config.get("repeat", 0))

    @property
    def batch(self) -> int:
        return int(self.config["batch"])

    @property
    def seq_len(self) -> int | None:
        return self.config["seq_len"]

    @property
    def task(self) -> str | None:
        return self.config.get("task")

    @property
    def task_params(self) -> dict[str, Any]:
        return dict(self.config["task_params"])

    @property
    def data_seed(self) -> int:
        return int(self.config["data_seed"])

    @property
    def spec_dict(self) -> dict[str, Any]:
        """The spec's fields as stored in the config; ``build_spec()`` makes the ArchSpec."""
        return dict(self.config["spec"])

    @property
    def optimizer(self) -> dict[str, Any]:
        return dict(self.config["optimizer"])

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.config["settings"])

    def build_spec(self) -> ArchSpec:
        return spec_from_dict(self.spec_dict)

    def optimizer_spec(self) -> OptimizerSpec:
        return OptimizerSpec(**self.optimizer)

    def label(self) -> str:
        """Short human description for progress lines."""
        parts = [f"{self.kind}", f"{self.arch}/{self.backend}", f"T={self.seq_len}"]
        if "hidden" in self.sizes:
            parts.append(f"H={self.sizes['hidden']}")
        parts.append(f"B={self.batch}")
        if self.task:
            parts.append(f"task={self.task}")
        if self.precision != "float32":
            parts.append(self.precision)
        parts.append(f"seed={self.seed}")
        if self.repeat:
            parts.append(f"repeat={self.repeat}")
        shown = {"kind", "arch", "backend", "seq_len", "hidden", "batch", "task", "precision", "seed"}
        parts += [f"{k}={v}" for k, v in self.coords.items() if k not in shown]
        return " ".join(parts)


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def is_oom(exc: BaseException) -> bool:
    """Out-of-memory errors of NumPy, torch (CPU and CUDA) and XLA, recognised without importing them."""
    if isinstance(exc, MemoryError):
        return True
    name = type(exc).__name__
    text = str(exc)
    return (
        "OutOfMemory" in name
        or "out of memory" in text.lower()
        or "RESOURCE_EXHAUSTED" in text
        or "Failed to allocate" in text
        or "DefaultCPUAllocator: can't allocate" in text
    )


# -- data for cells without a task -------------------------------------------------
