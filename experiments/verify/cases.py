"""Cases: everything both backends see, drawn from a source of choices.

A **case** fixes the spec, canonical parameters (float64 values exactly
representable in the case's dtype), one batch (padded steps filled with large
garbage, which must never reach a result), and the two optimizers. Every choice
comes from a :class:`Chooser`: NumPy's generator for ``seqbench verify``
(:func:`command_cases`), hypothesis's ``data`` in the property tests.
"""

from __future__ import annotations

import dataclasses
import typing
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from experiments.backend import Batch
from experiments.errors import UserError
from experiments.kinds.inputs import random_targets
from experiments.spec import HEAD_KINDS, REGISTRY, ArchSpec, OptimizerSpec, make_spec
from experiments.verify.checks import ADAM_EPS, CHECKS, FORWARD_CHECKS, GRADIENT_MAX_INPUT_SCALE, STORAGE_DTYPE

T = TypeVar("T")


class Chooser(Protocol):
    """A source of choices: NumPy's generator for the CLI, hypothesis's ``data`` in tests."""

    def choice(self, label: str, options: Sequence[T]) -> T: ...

    def integer(self, label: str, lo: int, hi: int) -> int: ...


class RandomChooser:
    """Choices from a NumPy generator; ``fixed`` pins some labels to a value."""

    def __init__(self, rng: np.random.Generator, fixed: dict[str, Any] | None = None) -> None:
        self.rng = rng
        self.fixed = dict(fixed or {})

    def choice(self, label: str, options: Sequence[T]) -> T:
        if label in self.fixed:
            return self.fixed[label]
        return options[int(self.rng.integers(len(options)))]

    def integer(self, label: str, lo: int, hi: int) -> int:
        if label in self.fixed:
            return int(self.fixed[label])
        return int(self.rng.integers(lo, hi + 1))


@dataclass(frozen=True)
class Sizes:
    """The values drawn for the size-like fields and the batch (kept tiny: jax compiles per shape)."""

    batch: tuple[int, ...] = (1, 3)
    seq_len: tuple[int, ...] = (1, 5)
    input_size: tuple[int, ...] = (1, 3)
    hidden_size: tuple[int, ...] = (2, 5)
    num_layers: tuple[int, ...] = (1, 2)
    d_model: tuple[int, ...] = (4, 6)
    num_heads: tuple[int, ...] = (1, 2)
    d_ff: tuple[int, ...] = (6,)
    max_len: tuple[int, ...] = (8,)
    attention_size: tuple[Any, ...] = (None, 3)
    head_out: tuple[int, ...] = (2, 3)
    input_scale: tuple[float, ...] = (1e-3, 1e-1, 1.0, 1e1, 1e3)
    param_scale: tuple[float, ...] = (0.1, 0.5, 1.0)


SIZES = Sizes()

# Fields whose drawn values are not their type's full range: dropout is off
# (dropout streams cannot be matched across frameworks), a forget bias is a value.
FIELD_OPTIONS: dict[str, tuple[Any, ...]] = {
    "dropout": (0.0,),
    "forget_bias": (None, 1.0),
    "forget_retention": (None,),
    "layer_norm_eps": (1e-5, 1e-6),
}


def field_options(arch: str, sizes: Sizes = SIZES) -> dict[str, tuple[Any, ...]]:
    """What a draw may set, per spec field of ``arch``: discovered from the spec class.

    Size fields take :class:`Sizes`; bools and ``Literal`` fields every value; a
    spec class's own ``DRAW_OPTIONS`` name the values of any other field it adds
    (they win over everything here). A field with no values from any of these is
    refused (``TypeError`` naming it), never left silently at its default: a new
    architecture is covered with no edit here, or told what to add to its spec.
    """
    cls, fixed = REGISTRY[arch]
    hints = typing.get_type_hints(cls)
    own = getattr(cls, "DRAW_OPTIONS", {})
    options: dict[str, tuple[Any, ...]] = {}
    for f in dataclasses.fields(cls):
        if f.name in ("arch", "head") or f.name in fixed:
            continue
        hint = hints.get(f.name)
        if f.name in own:
            options[f.name] = tuple(own[f.name])
        elif f.name in FIELD_OPTIONS:
            options[f.name] = FIELD_OPTIONS[f.name]
        elif hasattr(sizes, f.name):
            options[f.name] = getattr(sizes, f.name)
        elif hint is bool:
            options[f.name] = (False, True)
        elif typing.get_origin(hint) is Literal:
            options[f.name] = typing.get_args(hint)
        else:
            raise TypeError(
                f"{cls.__name__}.{f.name}: the property tests have no values to draw for it; "
                f"give them in {cls.__name__}.DRAW_OPTIONS (a tuple; one value if it must stay fixed, and say why)"
            )
    options["head_kind"] = HEAD_KINDS
    options["head_out"] = sizes.head_out
    return options


def draw_spec(arch: str, chooser: Chooser, sizes: Sizes = SIZES, tries: int = 50) -> ArchSpec:
    """A valid spec for ``arch``: fields drawn from :func:`field_options`; invalid mixes drawn again."""
    options = field_options(arch, sizes)
    last: UserError | None = None
    for _ in range(tries):
        fields = {name: chooser.choice(f"{arch}.{name}", values) for name, values in options.items()}
        try:
            return make_spec(arch, **fields)
        except UserError as exc:
            last = exc
    raise RuntimeError(f"no valid {arch} spec in {tries} draws (last: {last})")


@dataclass
class Case:
    spec: ArchSpec
    params: dict[str, np.ndarray]
    batch: Batch
    precision: str = "float64"
    sgd: OptimizerSpec = field(default_factory=lambda: OptimizerSpec(name="sgd", lr=0.1))
    adam: OptimizerSpec = field(default_factory=lambda: OptimizerSpec(name="adam", lr=1e-2, eps=ADAM_EPS["float64"]))
    steps: int = 2
    label: str = ""
    checks: tuple[str, ...] = CHECKS

    def describe(self) -> str:
        b = self.batch
        return f"{self.label} B={b.x.shape[0]} T={b.x.shape[1]} lengths={b.lengths.tolist()} spec={self.spec}"


def representable(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values exactly representable in ``dtype``: both backends then load identical numbers."""
    return np.asarray(values, dtype=dtype).astype(np.float64)


def draw_lengths(chooser: Chooser, batch_size: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Per-row lengths: all ``seq_len``, all 1, or ragged with the last row of length 1."""
    mode = chooser.choice("lengths", ("full", "ragged", "ones"))
    if mode == "full":
        return np.full(batch_size, seq_len, dtype=np.int64)
    if mode == "ones":
        return np.ones(batch_size, dtype=np.int64)
    lengths = rng.integers(1, seq_len + 1, size=batch_size)
    lengths[-1] = 1  # a length-1 row alongside longer ones
    return lengths.astype(np.int64)


def make_batch(
    spec: ArchSpec, lengths: np.ndarray, seq_len: int, scale: float, rng: np.random.Generator, dtype: str = "float64"
) -> Batch:
    """Inputs ~ N(0, scale²) at valid steps and large garbage at padded ones (it must never matter)."""
    batch_size = len(lengths)
    x = rng.standard_normal((batch_size, seq_len, spec.input_size)) * scale
    mask = np.arange(seq_len)[None, :] < lengths[:, None]
    garbage = 100.0 + 1e3 * rng.standard_normal(x.shape)
    x = np.where(mask[..., None], x, garbage)
    y = random_targets(spec, batch_size, seq_len, rng)
    if y.dtype.kind == "f":
        y = representable(y, dtype)
    return Batch(x=representable(x, dtype), lengths=np.asarray(lengths, dtype=np.int64), y=y)


def draw_case(arch: str, chooser: Chooser, precision: str = "float64", sizes: Sizes = SIZES, label: str = "") -> Case:
    """One case for ``arch``: spec, parameters, batch and optimizers, every choice from ``chooser``."""
    dtype = STORAGE_DTYPE[precision]
    spec = draw_spec(arch, chooser, sizes)
    rng = np.random.default_rng(chooser.integer("seed", 0, 2**31 - 1))
    batch_size = chooser.choice("batch", sizes.batch)
    seq_len = chooser.choice("seq_len", sizes.seq_len)
    lengths = draw_lengths(chooser, batch_size, seq_len, rng)
    scale = chooser.choice("input_scale", sizes.input_scale)
    checks = CHECKS if scale <= GRADIENT_MAX_INPUT_SCALE else FORWARD_CHECKS
    batch = make_batch(spec, lengths, seq_len, scale, rng, dtype)
    if chooser.choice("params", ("random", "init")) == "random":
        params = spec.random_params(int(rng.integers(2**31)), scale=chooser.choice("param_scale", sizes.param_scale))
    else:
        params = spec.init_params(int(rng.integers(2**31)))
    params = {name: representable(value, dtype) for name, value in params.items()}
    sgd = OptimizerSpec(
        name="sgd",
        lr=0.1,
        momentum=chooser.choice("sgd.momentum", (0.0, 0.9)),
        weight_decay=chooser.choice("sgd.weight_decay", (0.0, 1e-2)),
    )
    adam_name = chooser.choice("adam.name", ("adam", "adamw"))
    adam = OptimizerSpec(
        name=adam_name,
        lr=1e-2,
        eps=ADAM_EPS[precision],
        weight_decay=chooser.choice("adam.weight_decay", (0.0, 1e-2)),
        clip_norm=chooser.choice("adam.clip_norm", (None, 0.5)),
    )
    return Case(spec, params, batch, precision, sgd, adam, label=label, checks=checks)


# Scenarios of the command's cases, each with the rest drawn: every run covers
# ragged lengths with a length-1 row, full batches, length-1 sequences and inputs
# from 1e-3 to 1e3.
SCENARIOS: tuple[dict[str, Any], ...] = (
    {"lengths": "ragged", "input_scale": 1.0, "seq_len": 5, "batch": 3, "params": "random"},
    {"lengths": "full", "input_scale": 1e-3, "params": "random"},
    {"lengths": "ones", "input_scale": 1e3, "params": "random"},
    {"lengths": "ragged", "input_scale": 1e1, "seq_len": 5, "batch": 3, "params": "init"},
)


def command_cases(arch: str, precision: str, seed: int = 0, count: int = len(SCENARIOS)) -> list[Case]:
    """The command's cases for ``arch``: deterministic in (arch, precision, seed)."""
    cases = []
    for k in range(count):
        fixed = SCENARIOS[k] if k < len(SCENARIOS) else {}
        rng = np.random.default_rng([seed, zlib.crc32(arch.encode()), k])
        cases.append(draw_case(arch, RandomChooser(rng, fixed), precision, label=f"case{k}"))
    return cases
