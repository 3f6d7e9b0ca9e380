"""Grid cells: the fully resolved config, its stable key, and the registry of cell kinds.

A ``Cell`` is one unit of work: one architecture, one backend, one set of sizes,
one kind of measurement. Its ``config`` is the full resolved configuration (every
spec field explicit, optimizer, task, measurement settings), and ``key`` is a hash
of it: the same config always gives the same key, on any machine, so ``run`` can
skip cells already stored.

Cell kinds
----------
A kind is a function registered with ``@register_cell_kind(name, ...)``::

    @register_cell_kind("my_probe", settings={"probe_steps": 10}, task="optional")
    def my_probe(backend: Backend, cell: Cell) -> dict | CellResult:
        spec = cell.build_spec()                       # the ArchSpec, validated
        model = backend.build(spec, spec.init_params(cell.seed), precision=cell.precision,
                              device=cell.device, path=cell.path)
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
head in ``cell.spec`` from the task. An exception raised by the function is
recorded: an out-of-memory error as status ``oom``, ``FloatingPointError`` as
``nan``, anything else as ``error`` with its message; the grid goes on.
Metric values must be JSON-serialisable (NumPy scalars/arrays are converted).

Kinds other than ``bench`` and ``train`` live in plugin modules listed in
``CELL_KIND_MODULES``; the driver and every worker import those that exist.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from experiments.errors import UserError

# Plugin modules that register more kinds (imported by the driver and the workers if present).
CELL_KIND_MODULES: tuple[str, ...] = ("experiments.probes",)

KEY_SALT = "seqbench-cell/1"
STATUSES: tuple[str, ...] = ("ok", "oom", "nan", "diverged", "error")
TaskUse = Literal["none", "optional", "required"]


@dataclass
class CellResult:
    """What a kind function may return instead of a bare metrics dict."""

    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"
    path: str | None = None
    error: str | None = None


KindFn = Callable[[Any, "Cell"], "dict[str, Any] | CellResult"]
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


_plugins_loaded = False


def load_kinds() -> dict[str, CellKind]:
    """All kinds: the built-in ones and those of the plugin modules that exist."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for module in CELL_KIND_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # the plugin exists but something it imports does not
                    raise
    return CELL_KINDS


def get_kind(name: str) -> CellKind:
    kinds = load_kinds()
    if name not in kinds:
        raise UserError("kind", f"unknown cell kind {name!r}", f"use one of {', '.join(sorted(kinds))}")
    return kinds[name]


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


def config_key(config: Mapping[str, Any]) -> str:
    """Stable hash of a resolved config: canonical JSON (sorted keys, no spaces), sha256, 16 hex digits."""
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

    @classmethod
    def make(
        cls,
        grid: str,
        claim_ids: tuple[str, ...],
        config: dict[str, Any],
        resources: dict[str, Any] | None = None,
        coords: dict[str, Any] | None = None,
    ) -> Cell:
        config = jsonable(config)
        return cls(
            grid=grid,
            claim_ids=tuple(claim_ids),
            config=config,
            key=config_key(config),
            resources=resources or {},
            coords=coords or {},
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
    def path(self) -> str:
        return self.config["path"]

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def batch(self) -> int:
        return int(self.config["batch"])

    @property
    def seq_len(self) -> int | None:
        return self.config["seq_len"]

    @property
    def task(self) -> str | None:
        return self.config["task"]

    @property
    def task_params(self) -> dict[str, Any]:
        return dict(self.config["task_params"])

    @property
    def data_seed(self) -> int:
        return int(self.config["data_seed"])

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.config["spec"])

    @property
    def optimizer(self) -> dict[str, Any]:
        return dict(self.config["optimizer"])

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.config["settings"])

    def build_spec(self):  # -> ArchSpec
        from experiments.spec import spec_from_dict

        return spec_from_dict(self.spec)

    def optimizer_spec(self):  # -> OptimizerSpec
        from experiments.spec import OptimizerSpec

        return OptimizerSpec(**self.optimizer)

    def label(self) -> str:
        """Short human description for progress lines."""
        spec = self.config["spec"]
        size = spec.get("hidden_size", spec.get("d_model"))
        parts = [f"{self.kind}", f"{self.arch}/{self.backend}", f"T={self.seq_len}", f"H={size}", f"B={self.batch}"]
        if self.task:
            parts.append(f"task={self.task}")
        if self.precision != "float32":
            parts.append(self.precision)
        parts.append(f"seed={self.seed}")
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


def random_batch(spec: Any, batch: int, seq_len: int, rng: np.random.Generator) -> Any:
    """Seeded standard-normal inputs (B, T, I), full lengths, random targets matching the head."""
    from experiments.backend import Batch

    head = spec.head
    x = rng.standard_normal((batch, seq_len, spec.input_size))
    lengths = np.full(batch, seq_len, dtype=np.int64)
    if head.kind == "classify":
        y = rng.integers(0, head.out_size, size=batch).astype(np.int64)
    elif head.kind == "regress":
        y = rng.standard_normal((batch, head.out_size))
    elif head.kind == "per_step_classify":
        y = rng.integers(0, head.out_size, size=(batch, seq_len)).astype(np.int64)
    else:
        y = rng.standard_normal((batch, seq_len, head.out_size))
    return Batch(x=x, lengths=lengths, y=y)


def _build(backend: Any, cell: Cell, spec: Any, params: dict[str, np.ndarray]) -> Any:
    return backend.build(spec, params, precision=cell.precision, device=cell.device, path=cell.path)


# -- bench: timed training steps ------------------------------------------------------

BENCH_SETTINGS: dict[str, Any] = {
    "warmup_steps": 3,
    "max_warmup_steps": 50,
    "min_timed_steps": 20,
    "min_time_s": 1.0,
    "max_timed_steps": 100_000,
    "n_batches": 2,
}


def _check_bench(s: dict[str, Any]) -> None:
    if s["warmup_steps"] < 3:
        raise UserError("warmup_steps", f"the protocol warms up >= 3 steps, got {s['warmup_steps']}", "set >= 3")
    if s["max_warmup_steps"] < s["warmup_steps"]:
        raise UserError("max_warmup_steps", "is below warmup_steps", "set max_warmup_steps >= warmup_steps")
    if s["n_batches"] < 2:
        raise UserError("n_batches", f"the protocol alternates >= 2 batches, got {s['n_batches']}", "set >= 2")
    if s["min_timed_steps"] < 20 and s["min_time_s"] < 1.0:
        raise UserError(
            "min_timed_steps",
            "the protocol times >= 20 steps or >= 1 s",
            "set min_timed_steps >= 20 or min_time_s >= 1",
        )
    if s["max_timed_steps"] < s["min_timed_steps"]:
        raise UserError("max_timed_steps", "is below min_timed_steps", "raise max_timed_steps")


WARM_HIDDEN = 8  # the throwaway model of ``_warm_framework``: the cell's architecture, this small


def _warm_framework(backend: Any, cell: Cell, spec: Any) -> None:
    """Two training steps of a tiny model of the cell's architecture, on tiny data.

    A fresh worker's first cell otherwise pays the framework's first-use memory in its
    reading (thread pools, library pages, for jax the compiler): measured ~95 MiB (torch)
    and ~200 MiB (jax) on a tiny LSTM, the same at every size, which flattens
    memory-vs-size exponents. What the tiny model leaves in the allocator is small.
    """
    from experiments.spec import size_fields, spec_from_dict, spec_to_dict

    tiny = spec_from_dict({**spec_to_dict(spec), **size_fields(cell.arch, WARM_HIDDEN)})
    model = _build(backend, cell, tiny, tiny.init_params(cell.seed))
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    batch = backend.prepare_batch(state, random_batch(tiny, 2, min(int(cell.seq_len), 4), np.random.default_rng(0)))
    for _ in range(2):
        backend.train_step(state, batch)
    backend.synchronize(cell.device)


@register_cell_kind("bench", settings=BENCH_SETTINGS, check=_check_bench)
def bench_cell(backend: Any, cell: Cell) -> CellResult:
    """Timed training steps (forward + backward + optimizer) on seeded random data; see ``measure``."""
    from experiments import measure
    from experiments.worker import fresh_process

    s = cell.settings
    spec = cell.build_spec()
    batch, seq_len = cell.batch, int(cell.seq_len)
    rng = np.random.default_rng(cell.seed)
    host = [random_batch(spec, batch, seq_len, rng) for _ in range(s["n_batches"])]
    params = spec.init_params(cell.seed)
    if cell.device == "cpu" and fresh_process():
        _warm_framework(backend, cell, spec)  # before the meter: the framework's first use is not this cell's

    meter = measure.MemoryMeter(backend, cell.device)
    meter.start()
    model = _build(backend, cell, spec, params)
    path = backend.execution_path(model)
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    batches = [backend.prepare_batch(state, b) for b in host]
    timing = measure.time_steps(
        lambda b: backend.train_step(state, b),
        lambda: backend.synchronize(cell.device),
        batches,
        warmup_steps=s["warmup_steps"],
        max_warmup_steps=s["max_warmup_steps"],
        min_timed_steps=s["min_timed_steps"],
        min_time_s=s["min_time_s"],
        max_timed_steps=s["max_timed_steps"],
    )
    peak_mem = meter.read()
    # The GEMM runs once per worker, after the memory reading: in a fresh worker its freed
    # buffers would otherwise be cached pages that hide the model's growth.
    peak = measure.peak_flops(backend, cell.device, cell.precision)
    loss = backend.loss_value(timing.last_loss)

    flops = int(spec.train_step_flops(batch, seq_len))
    median = timing.stats.median
    flops_per_s = flops / median if median > 0 else None
    metrics = {
        "step_s_median": median,
        "step_s_iqr": timing.stats.iqr,
        "step_s_cv": timing.stats.cv,
        "compile_s": timing.compile_s,
        "peak_mem_bytes": peak_mem,
        "flops_per_step": flops,
        "flops_per_s": flops_per_s,
        "peak_fraction": (flops_per_s / peak) if (flops_per_s and peak) else None,
        "device_peak_flops_per_s": peak,
        "mem_kind": meter.kind,
        "examples_per_s": batch / median if median > 0 else None,
        "tokens_per_s": batch * seq_len / median if median > 0 else None,
        "param_count": int(spec.param_count()),
        "stored_activations": int(spec.stored_activations(batch, seq_len, attention_path=path or "reference")),
        "step_s_mean": timing.stats.mean,
        "step_s_min": timing.stats.min,
        "timed_steps": timing.stats.n,
        "warmup_steps": len(timing.warmup_times),
        "first_step_s": timing.warmup_times[0],
        "final_loss": loss,
    }
    return CellResult(metrics=metrics, status="ok" if finite(loss) else "nan", path=path)


# -- train: to a step budget, with evaluation ------------------------------------------

TRAIN_SETTINGS: dict[str, Any] = {
    "steps": 500,
    "eval_every": 50,
    "eval_batch": 256,
    "log_every": 0,  # 0: steps / max_curve_points
    "max_curve_points": 200,
    "diverge_factor": 100.0,  # loss above this many times the first step's loss: diverged
    "threshold": None,  # "solved" level for steps_to_threshold; None: the task's own
}


def _check_train(s: dict[str, Any]) -> None:
    for name in ("steps", "eval_every", "eval_batch", "max_curve_points"):
        if s[name] < 1:
            raise UserError(name, f"must be >= 1, got {s[name]}", "set a positive integer")
    if s["log_every"] < 0:
        raise UserError("log_every", f"must be >= 0, got {s['log_every']}", "0 picks it from max_curve_points")
    if not s["diverge_factor"] > 1:
        raise UserError("diverge_factor", f"must be > 1, got {s['diverge_factor']}", "e.g. 100")


def evaluate_split(backend: Any, model: Any, split: Any, task: Any, batch_size: int) -> float:
    """The task's metric over a split, through ``Backend.forward`` and ``experiments.tasks.evaluate``."""
    from experiments.tasks import evaluate

    total, count = 0.0, 0
    for b in split.batches(batch_size):
        out = backend.forward(model, b, train=False)
        value, n = evaluate(task.metric, task.head, np.asarray(out.logits), b)
        total += value
        count += n
    return total / max(count, 1)


class _Batches:
    """Training batches: a fresh seeded permutation each epoch, full batches only."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator) -> None:
        self.n, self.batch, self.rng = n, batch, rng
        self.order: np.ndarray = np.empty(0, dtype=np.int64)
        self.pos = 0

    def next(self) -> np.ndarray:
        if self.batch > self.n:
            return self.rng.integers(0, self.n, size=self.batch)
        if self.pos + self.batch > len(self.order):
            self.order, self.pos = self.rng.permutation(self.n), 0
        idx = self.order[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return idx


@register_cell_kind("train", settings=TRAIN_SETTINGS, task="required", check=_check_train)
def train_cell(backend: Any, cell: Cell) -> CellResult:
    """Train on the task's train split for ``steps`` steps; evaluate on val every ``eval_every`` steps.

    Evaluation rebuilds a model from ``backend.state_params(state)``, so it reads the
    train state only through the protocol. The train loss is read every step, for
    divergence detection: a NaN/inf loss stops the run with status ``nan``, a loss
    above ``diverge_factor`` x the first step's loss with ``diverged``.
    """
    import time

    from experiments.tasks import load_task

    s = cell.settings
    task = load_task(cell.task, seed=cell.data_seed, **cell.task_params)
    spec = cell.build_spec()
    model = _build(backend, cell, spec, spec.init_params(cell.seed))
    path = backend.execution_path(model)
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    sampler = _Batches(len(task.train), cell.batch, np.random.default_rng([cell.seed, 1]))
    threshold = s["threshold"] if s["threshold"] is not None else task.threshold
    higher = task.higher_is_better
    steps = s["steps"]
    log_every = s["log_every"] or max(1, steps // s["max_curve_points"])

    def eval_now(split: Any) -> float:
        current = _build(backend, cell, spec, backend.state_params(state))
        return evaluate_split(backend, current, split, task, s["eval_batch"])

    def better(a: float, b: float | None) -> bool:
        return b is None or (a > b if higher else a < b)

    def reached(v: float) -> bool:
        return threshold is not None and (v >= threshold if higher else v <= threshold)

    loss_curve: dict[str, list] = {"step": [], "value": []}
    val_curve: dict[str, list] = {"step": [], "value": []}
    status, first_loss, window, last_loss = "ok", None, [], None
    best, best_step, to_threshold, step = None, None, None, 0
    began = time.perf_counter()
    while step < steps:
        step += 1
        batch = backend.prepare_batch(state, task.train.batch(sampler.next()))
        last_loss = backend.loss_value(backend.train_step(state, batch))
        if first_loss is None:
            first_loss = last_loss
        window.append(last_loss)
        if not finite(last_loss):
            status = "nan"
        elif last_loss > s["diverge_factor"] * max(abs(first_loss), 1e-12):
            status = "diverged"
        if step % log_every == 0 or step == steps or status != "ok":
            loss_curve["step"].append(step)
            loss_curve["value"].append(float(np.mean(window)))
            window = []
        if status != "ok":
            break
        if step % s["eval_every"] == 0 or step == steps:
            value = eval_now(task.val)
            val_curve["step"].append(step)
            val_curve["value"].append(value)
            if not finite(value):
                status = "nan"
                break
            if better(value, best):
                best, best_step = value, step
            if to_threshold is None and reached(value):
                to_threshold = step
    train_s = time.perf_counter() - began

    final_val = val_curve["value"][-1] if val_curve["step"] and val_curve["step"][-1] == step else None
    if final_val is None:  # stopped early: evaluate where it stopped
        final_val = eval_now(task.val)
        val_curve["step"].append(step)
        val_curve["value"].append(final_val)
    final_test = eval_now(task.test) if status == "ok" else None
    metrics = {
        "final_val_metric": final_val if finite(final_val) else None,
        "best_val_metric": best,
        "steps_to_threshold": to_threshold,
        "baseline_metric": task.baseline,
        "diverged": status in ("nan", "diverged"),
        "curves": {"train_loss": loss_curve, "val_metric": val_curve},
        "metric": task.metric,
        "higher_is_better": higher,
        "threshold": threshold,
        "best_step": best_step,
        "final_test_metric": final_test,
        "final_train_loss": last_loss if finite(last_loss) else None,
        "steps_run": step,
        "train_s": train_s,
        "param_count": int(spec.param_count()),
    }
    return CellResult(metrics=metrics, status=status, path=path)
