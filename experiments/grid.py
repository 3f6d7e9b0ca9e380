"""Grid files: TOML under ``experiments/configs/``, validated, expanded into ``Cell``s.

A grid file::

    description = "What it measures."
    kind = "bench"                 # the cell kind: bench | train | a registered plugin kind
    claim_ids = ["S1", "S6"]       # the claims it serves (``run --claim ID``)
    presets = ["quick"]            # the presets it belongs to (``run --preset NAME``)
    repeats = 3                    # run every point this many times, interleaved (default 1)

    [axes]                         # the cartesian product of these lists, in this order
    arch = ["lstm", "gru"]         # or "all": every registered architecture (backend alike)
    backend = ["torch", "jax"]
    seq_len = [16, 64]
    hidden = [32, 64]

    [fixed]                        # one value each
    batch = 8
    lr = 1e-3
    task_params.n_train = 500      # parameters of the task

    [[exclude]]                    # drop the cells that match every key given (a list = any of)
    arch = "gru"
    seq_len = 64

    [[override]]                   # set values on the cells that match ``when``
    when = { arch = "transformer" }
    set = { hidden = 48 }

Keys (in ``axes``, ``fixed``, ``exclude``, ``override``):

- cell: ``kind``, ``arch``, ``backend``, ``device`` (cpu|cuda; ``run --device`` overrides),
  ``precision`` (float64|float32|tf32|bfloat16), ``path`` (auto|on|off: the fast-path switch, or one
  of the backend's own path names, ``experiments.backend.PATH_NAMES``: a kernel asked for by name),
  ``seed`` (parameters, batches), ``data_seed`` (the task's data; default: ``seed``),
  ``batch``, ``seq_len``, ``task``;
- sizes: ``hidden`` (-> ``experiments.spec.size_fields(arch, hidden)``), ``layers`` (-> ``num_layers``),
  and any spec field by name (``experiments.spec.spec_fields(arch)``; explicit fields win over
  ``hidden``; a field applies to the architectures that have it). A task sets ``input_size``
  and the head itself;
- optimizer: ``optimizer`` (sgd|adam|adamw), ``lr``, ``beta1``, ``beta2``, ``eps``, ``weight_decay``,
  ``momentum``, ``clip_norm`` (``experiments.spec.OptimizerSpec``);
- task parameters: ``task_params.NAME``; ``seq_len`` is passed to the task too;
- the cell kind's settings (``experiments.kinds``: bench ``min_timed_steps``..., train ``steps``, ``eval_every``...);
- resources, not part of a cell's key: ``cpus``, ``gpus`` (what a Ray task asks for), ``timeout_s``,
  ``fresh_worker`` (run the cell in a newly started worker process, stopped right after it, so that
  a CPU memory reading is the cell's alone; default: true for ``bench`` cells on ``cpu``, else false).

``repeats = N`` makes N cells of every point: the whole grid once, then again, so that the
repeats of a point are interleaved with the other points (a slow minute of the machine
does not land on all repeats of one point). Repeat r > 0 adds ``"repeat": r`` to the config
(a key of its own); repeat 0 is the cell as without ``repeats``, so existing records still count.

Any mistake (an unknown key, a bad value, an impossible combination) raises
``UserError`` naming the file, the key and the fix, before any cell runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import itertools
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from experiments.backend import PATH_CHOICES, PATH_NAMES, backend_modules
from experiments.cell import Cell
from experiments.errors import UserError
from experiments.grid_keys import (
    ALL_MARKER,
    BENCH_SEQ_LEN,
    CORE_DEFAULTS,
    CORE_TYPES,
    OPTIMIZER_KEYS,
    RESOURCE_DEFAULTS,
    RESOURCE_TYPES,
    TASK_PREFIX,
    TASK_SPEC_FIELDS,
    adapter,
    describe_type,
    fresh_worker_default,
    optimizer_types,
    setting_type,
    shrunk,
    spec_types,
)
from experiments.kinds import CELL_KINDS, get_kind
from experiments.spec import ARCHITECTURES, OptimizerSpec, make_spec, size_fields, spec_fields, spec_to_dict
from experiments.tasks import load_task
from experiments.tasks.base import _TASKS as TASK_FACTORIES  # read only: which parameters a task takes

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# -- the file's own schema -----------------------------------------------------------------


class _Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: dict[str, Any] = {}
    set: dict[str, Any]


class GridFile(BaseModel):
    """The top level of a grid file (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    kind: str = "bench"
    claim_ids: list[str] = []
    presets: list[str] = []
    repeats: PositiveInt = 1
    axes: dict[str, Any] = {}  # lists (or "all"); nested tables (task_params.x = [...]) are flattened
    fixed: dict[str, Any] = {}
    exclude: list[dict[str, Any]] = []
    override: list[_Override] = []


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``task_params.n = 1`` arrives as a nested table; make it the key ``task_params.n``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _registered_backends() -> tuple[str, ...]:
    return tuple(backend_modules())


@dataclasses.dataclass
class Grid:
    """A validated grid file. ``cells(device)`` expands and resolves it (raising ``UserError``)."""

    name: str
    path: Path
    file: GridFile  # the validated TOML

    @property
    def kind(self) -> str:
        return self.file.kind

    @property
    def claim_ids(self) -> tuple[str, ...]:
        return tuple(self.file.claim_ids)

    @property
    def presets(self) -> tuple[str, ...]:
        return tuple(self.file.presets)

    @property
    def description(self) -> str:
        return self.file.description

    # -- errors ------------------------------------------------------------------------
    def _error(self, key: str, problem: str, fix: str = "") -> UserError:
        return UserError(f"{_display(self.path)}: {key}", problem, fix)

    # -- key validation ----------------------------------------------------------------
    def _axes(self) -> list[tuple[str, list[Any]]]:
        axes = []
        for key, values in _flatten(dict(self.file.axes)).items():
            if values == ALL_MARKER and key in ("arch", "backend"):
                values = list(ARCHITECTURES if key == "arch" else _registered_backends())
            if not isinstance(values, list) or not values:
                raise self._error(f"axes.{key}", "an axis needs a non-empty list of values", f"{key} = [v1, v2]")
            axes.append((key, values))
        return axes

    def _values_used(self, key: str, axes: list[tuple[str, list[Any]]], default: Any = None) -> list[Any]:
        """Every value ``key`` takes anywhere in the grid (axes, fixed, overrides)."""
        fixed = _flatten(self.file.fixed)
        values = list(dict(axes).get(key, [fixed[key]] if key in fixed else [default]))
        values += [_flatten(ov.set)[key] for ov in self.file.override if key in _flatten(ov.set)]
        return values

    def _kinds_used(self, axes: list[tuple[str, list[Any]]]) -> list[str]:
        kinds = self._values_used("kind", axes, self.file.kind)
        for kind in kinds:
            if not isinstance(kind, str) or kind not in CELL_KINDS:
                raise self._error("kind", f"unknown cell kind {kind!r}", f"use one of {', '.join(sorted(CELL_KINDS))}")
        return kinds

    def _key_types(self, kinds: list[str]) -> dict[str, Any]:
        types = {**CORE_TYPES, **optimizer_types(), **spec_types(), **RESOURCE_TYPES}
        for kind in kinds:
            for name, default in get_kind(kind).settings.items():
                types.setdefault(name, setting_type(default))
        return types

    def _check_value(self, where: str, key: str, value: Any, types: dict[str, Any]) -> None:
        if key.startswith(TASK_PREFIX):
            if not key[len(TASK_PREFIX) :]:
                raise self._error(f"{where}.{key}", "names no task parameter", "task_params.NAME = value")
            return
        if key not in types:
            close = difflib.get_close_matches(key, list(types), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see the key list in experiments/grid.py"
            raise self._error(f"{where}.{key}", "unknown key", hint)
        tp = types[key]
        try:
            adapter(tp).validate_python(value, strict=True)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise self._error(f"{where}.{key}", f"{msg}, got {value!r}", f"use {describe_type(tp)}") from None

    def _validate_keys(self) -> tuple[list[tuple[str, list[Any]]], dict[str, Any]]:
        axes = self._axes()
        kinds = self._kinds_used(axes)
        types = self._key_types(kinds)
        fixed = _flatten(self.file.fixed)
        for key, values in axes:
            if key in fixed:
                raise self._error(f"axes.{key}", "is also in [fixed]", "keep it in one place")
            for value in values:
                self._check_value("axes", key, value, types)
        for key, value in fixed.items():
            self._check_value("fixed", key, value, types)
        for i, ex in enumerate(self.file.exclude):
            for key, value in _flatten(ex).items():
                for v in value if isinstance(value, list) else [value]:
                    self._check_value(f"exclude[{i}]", key, v, types)
        for i, ov in enumerate(self.file.override):
            for key, value in _flatten(ov.when).items():
                for v in value if isinstance(value, list) else [value]:
                    self._check_value(f"override[{i}].when", key, v, types)
            for key, value in _flatten(ov.set).items():
                self._check_value(f"override[{i}].set", key, value, types)
        archs = [a for a in self._values_used("arch", axes) if a in ARCHITECTURES]
        set_anywhere = {k for k, _ in axes} | set(fixed)
        for ov in self.file.override:
            set_anywhere |= set(_flatten(ov.set))
        for key in sorted(set_anywhere & set(spec_types())):
            if archs and not any(key in spec_fields(a) for a in archs):
                raise self._error(key, f"is not a field of {', '.join(sorted(set(archs)))}", "remove it")
        names = [k for k, _ in axes] + list(fixed)
        for needed in ("arch", "backend"):
            if needed not in names and not any(needed in _flatten(ov.set) for ov in self.file.override):
                raise self._error(needed, "not set", f"add {needed} to [axes] or [fixed]")
        for key, values in [*axes, *((k, [v]) for k, v in fixed.items())]:
            if key == "arch":
                for v in values:
                    if v not in ARCHITECTURES:
                        raise self._error(
                            "arch", f"unknown architecture {v!r}", f"use one of {', '.join(ARCHITECTURES)}"
                        )
            if key == "backend":
                known = _registered_backends()
                for v in values:
                    if v not in known:
                        raise self._error("backend", f"unknown backend {v!r}", f"use one of {', '.join(known)}")
        return axes, fixed

    # -- expansion ---------------------------------------------------------------------
    def cells(self, device: str | None = None, shrink: bool = False) -> list[Cell]:
        """Every cell of the grid, resolved and validated, in axis order (duplicates dropped).
        ``shrink``: every size capped (``grid_keys.SHRINK``) to check a run's path, not to measure."""
        if device is not None and device not in ("cpu", "cuda"):
            raise UserError("--device", f"unknown device {device!r}", "use cpu or cuda")
        axes, fixed = self._validate_keys()
        keys = [k for k, _ in axes]
        out: dict[str, Cell] = {}
        for combo in itertools.product(*(values for _, values in axes)):
            values = {**fixed, **dict(zip(keys, combo, strict=True))}
            defaults = {**CORE_DEFAULTS, "kind": self.file.kind}
            if any(_matches(_flatten(ex), values, defaults) for ex in self.file.exclude):
                continue
            for ov in self.file.override:
                if _matches(_flatten(ov.when), values, defaults):
                    values.update(_flatten(ov.set))
            if device is not None:
                values["device"] = device
            if shrink:
                values = shrunk(values)
            cell = self._resolve(values, coords=dict(zip(keys, combo, strict=True)))
            out.setdefault(cell.key, cell)
        if not out:  # every combination excluded: running it would store nothing and look done
            raise self._error("exclude", "removes every cell of the grid", "narrow the [[exclude]] patterns")
        first = list(out.values())
        repeats = [self._repeat(cell, r) for r in range(1, self.file.repeats) for cell in first]
        return first + repeats

    def _repeat(self, cell: Cell, repeat: int) -> Cell:
        """Repeat ``repeat`` of a cell: the same config plus ``repeat``, hence a key of its own."""
        return Cell.make(
            cell.grid, cell.claim_ids, {**cell.config, "repeat": repeat}, cell.resources, cell.coords, cell.sizes
        )

    def _resolve(self, values: dict[str, Any], coords: dict[str, Any] | None = None) -> Cell:
        where = ", ".join(
            f"{k}={values[k]}"
            for k in ("kind", "arch", "backend", "task", "seq_len", "hidden", "layers")
            if k in values
        )

        def fail(exc: UserError) -> UserError:
            fix = exc.fix or f"change {exc.field} in the grid file"
            return self._error(exc.field, f"{exc.problem}, in the cell {where}", fix)

        core = {**CORE_DEFAULTS, "kind": self.file.kind, **{k: values[k] for k in CORE_TYPES if k in values}}
        arch = core["arch"]
        paths = (*PATH_CHOICES, *PATH_NAMES.get(core["backend"], ()))
        if core["path"] not in paths:
            raise fail(
                UserError("path", f"{core['path']!r} is no path of {core['backend']}", f"use {', '.join(paths)}")
            )
        kind = get_kind(core["kind"])
        task = core["task"]
        if kind.task == "required" and not task:
            raise fail(UserError("task", f"a {kind.name!r} cell needs a task", "set task = NAME (seqbench list)"))
        if kind.task == "none" and task:
            raise fail(UserError("task", f"a {kind.name!r} cell takes no task", "remove task, or use kind = 'train'"))
        data_seed = core["seed"] if core["data_seed"] is None else core["data_seed"]
        task_params = {k[len(TASK_PREFIX) :]: v for k, v in values.items() if k.startswith(TASK_PREFIX)}

        fields: dict[str, Any] = {}
        if core["hidden"] is not None:
            fields.update(size_fields(arch, core["hidden"]))
        if core["layers"] is not None:
            fields["num_layers"] = core["layers"]
        allowed = spec_fields(arch)
        fields.update({k: v for k, v in values.items() if k in spec_types() and k in allowed})
        seq_len = core["seq_len"]
        if task:
            for name in TASK_SPEC_FIELDS:
                if name in values:
                    raise fail(UserError(name, f"comes from the task {task!r}", f"remove {name}"))
            if seq_len is not None:
                task_params["seq_len"] = seq_len
            _check_task_params(task, task_params, self._error)
            try:
                meta = _task_meta(task, data_seed, tuple(sorted(task_params.items())))
            except UserError as exc:
                raise fail(exc) from None
            fields.update(input_size=meta["input_size"], head_kind=meta["head_kind"], head_out=meta["head_out"])
            seq_len = meta["seq_len"]
        elif seq_len is None:
            seq_len = BENCH_SEQ_LEN
        try:
            spec = make_spec(arch, **fields)
        except UserError as exc:
            raise fail(exc) from None
        max_len = getattr(spec, "max_len", None)
        if max_len is not None and seq_len > max_len:
            raise fail(UserError("seq_len", f"{seq_len} exceeds the model's max_len={max_len}", "raise max_len"))

        opt_fields = {OPTIMIZER_KEYS[k]: v for k, v in values.items() if k in OPTIMIZER_KEYS}
        optimizer = OptimizerSpec(**opt_fields)
        try:
            optimizer.validate()
        except UserError as exc:
            key = next((k for k, f in OPTIMIZER_KEYS.items() if exc.field.endswith(f)), exc.field)
            raise fail(UserError(key, exc.problem, exc.fix)) from None

        settings = {**kind.settings, **{k: values[k] for k in kind.settings if k in values}}
        if kind.check is not None:
            try:
                kind.check(settings)
            except UserError as exc:
                raise fail(exc) from None
        resources = {**RESOURCE_DEFAULTS, **{k: values[k] for k in RESOURCE_TYPES if k in values}}
        if resources["gpus"] is None:
            resources["gpus"] = 1 if core["device"] == "cuda" else 0
        if resources["fresh_worker"] is None:
            resources["fresh_worker"] = fresh_worker_default(kind.name, core["device"])

        config = {
            "kind": kind.name,
            "arch": arch,
            "backend": core["backend"],
            "device": core["device"],
            "precision": core["precision"],
            "path": core["path"],
            "seed": core["seed"],
            "data_seed": data_seed,
            "batch": core["batch"],
            "seq_len": seq_len,
            "task": task,
            "task_params": task_params,
            "spec": spec_to_dict(spec),
            "optimizer": dataclasses.asdict(optimizer),
            "settings": settings,
        }
        if core["shrunk"]:  # only then: every other cell keeps the key it always had
            config["shrunk"] = True
        sizes = {k: core[k] for k in ("hidden", "layers") if core[k] is not None}  # as the grid named them
        return Cell.make(self.name, self.claim_ids, config, resources, coords, sizes)


def _matches(pattern: dict[str, Any], values: dict[str, Any], defaults: dict[str, Any]) -> bool:
    for key, want in pattern.items():
        have = values.get(key, defaults.get(key))
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def _check_task_params(task: str, params: dict[str, Any], error: Any) -> None:
    """A parameter the task does not take is named as ``task_params.NAME`` (not blamed on ``task``)."""
    factory = TASK_FACTORIES.get(task)
    if factory is None:
        return  # an unknown task: load_task names it
    signature = inspect.signature(factory)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    takes = [n for n in signature.parameters if n != "seed"]
    for name in params:
        if name not in takes:
            close = difflib.get_close_matches(name, takes, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"{task!r} takes {', '.join(takes)}"
            raise error(f"{TASK_PREFIX}{name}", f"the task {task!r} has no parameter {name!r}", hint)


@functools.lru_cache(maxsize=256)
def _task_meta(name: str, seed: int, params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """What the driver needs of a task to resolve a cell (the data itself is dropped)."""
    data = load_task(name, seed=seed, **dict(params))
    return {
        "input_size": data.input_size,
        "head_kind": data.head.kind,
        "head_out": data.head.out_size,
        "seq_len": data.seq_len,
    }


# -- finding grid files ----------------------------------------------------------------


def _grid_paths() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.toml"))}


def grid_names() -> list[str]:
    return sorted(_grid_paths())


def _raw(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(_display(path), f"not valid TOML: {exc}", "fix the syntax at that line") from None


def raw_lists(key: str) -> dict[str, list[str]]:
    """``key`` (presets, claim_ids) of every grid file, read without validation (for listing)."""
    out = {}
    for name, path in _grid_paths().items():
        try:
            value = _raw(path).get(key, [])
        except UserError:
            continue
        out[name] = [str(v) for v in value] if isinstance(value, list) else []
    return out


def preset_names() -> list[str]:
    return sorted({p for presets in raw_lists("presets").values() for p in presets})


def grids_in_preset(preset: str) -> list[str]:
    names = [name for name, presets in raw_lists("presets").items() if preset in presets]
    if not names:
        raise UserError(
            "--preset", f"no grid belongs to the preset {preset!r}", f"use one of {', '.join(preset_names())}"
        )
    return names


def grids_for_claim(claim_id: str) -> list[str]:
    names = [name for name, ids in raw_lists("claim_ids").items() if claim_id in ids]
    if not names:
        known = sorted({i for ids in raw_lists("claim_ids").values() for i in ids})
        raise UserError(
            "--claim", f"no grid serves the claim {claim_id!r}", f"grids serve: {', '.join(known) or 'none yet'}"
        )
    return names


def load_grid(name_or_path: str | Path) -> Grid:
    """A grid by name (``experiments/configs/NAME.toml``) or by path; validated at the top level."""
    text = str(name_or_path)
    path = Path(text)
    if path.is_dir():
        raise UserError("grid", f"{text} is a directory", "give a grid file (NAME.toml) inside it, or a grid's name")
    if not (text.endswith(".toml") or path.is_file()):
        paths = _grid_paths()
        if text not in paths:
            raise UserError("grid", f"no grid named {text!r}", f"use a path or one of {', '.join(paths) or '(none)'}")
        path = paths[text]
    if not path.is_file():
        raise UserError("grid", f"no such file: {text}", "give a grid name or an existing .toml path")
    raw = _raw(path)
    try:
        file = GridFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            known = ", ".join(GridFile.model_fields)
            raise UserError(f"{_display(path)}: {loc}", "unknown key", f"top-level keys: {known}") from None
        raise UserError(f"{_display(path)}: {loc}", err["msg"], "see experiments/grid.py for the format") from None
    return Grid(name=path.stem, path=path, file=file)


def load_cells(
    grids: list[str | Path | Grid], device: str | None = None, shrink: bool = False
) -> list[tuple[Grid, list[Cell]]]:
    """Load and fully resolve several grids (every error surfaces here, before anything runs)."""
    out = []
    for g in grids:
        grid = g if isinstance(g, Grid) else load_grid(g)
        out.append((grid, grid.cells(device, shrink)))
    return out
