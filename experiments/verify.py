"""Cross-backend verification: draw a case, observe it in two backends, compare with named checks.

Framework-free: nothing here imports torch or jax at module level. A backend is
either an object implementing ``experiments.backend.Backend`` (tests pass one,
or a deliberately broken wrapper around one) or a name, loaded in the calling
process; ``seqbench verify`` calls :func:`observe_in_worker` in one worker
process per backend.

A **case** fixes everything both backends see: the spec, canonical parameters
(float64 values exactly representable in the case's dtype), one batch (padded
steps filled with large garbage, which must never reach a result), and the two
optimizers. An **observation** runs the case through one backend and returns,
per check, the arrays to compare:

==============  ================================================================
check           arrays
==============  ================================================================
roundtrip       ``export_params(build(params))``, canonical names (must be exact)
outputs         per-step outputs, zeroed at padded steps on both sides
final_states    ``h`` (and ``c``), (layers * directions, B, H) (recurrent only)
pooled          the features a sequence-level head reads
logits          the head's output (zeroed at padded steps for per-step heads)
loss            the head's loss in eval mode
grad_inputs     dL/dx, every step (padded steps must get exactly nothing)
grad_params     dL/dθ for every canonical parameter
sgd_step        θ_after - θ_before after ``steps`` SGD steps (default 2: momentum shows)
adam_step       the same for Adam (or AdamW)
==============  ================================================================

**Error measures.** For one check, with ``ref`` the first backend's arrays and
``other`` the second's, over all arrays ``k`` of the check::

    max_abs_err = max_k max_i |ref_k[i] - other_k[i]|
    scale       = max_k max_i |ref_k[i]|
    max_rel_err = max_abs_err / max(scale, TINY)        TINY = 1e-300

i.e. the error relative to the scale of the whole quantity (the output, the
gradient, the parameter update), not element by element: an element that is
zero in exact arithmetic (the gradient of a Transformer's key bias, which
softmax ignores) carries only rounding noise, and an elementwise ratio would
measure that noise against itself. ``grad_inputs`` and ``grad_params`` share
one scale, the whole gradient's (the largest of both): a backward pass through
saturated units multiplies by derivatives such as 1 - tanh² that carry an
absolute error of order eps, so its errors scale with the gradient the loss
sends back (which the linear head's gradient shows), not with the vanishing
gradient that reaches the inputs. Shapes that differ, a missing array, or a
non-finite value in either give ``inf``; a check with no arrays on either side
(a Transformer's final states) is left out; a check passes when
``max_rel_err <= tol`` (``roundtrip`` demands ``max_abs_err == 0``).

The optimizer checks compare the *update* θ_after - θ_before (computed in
float64 on the host), which is far more sensitive than comparing θ_after
itself. Adam's ``eps`` is part of the case (:data:`ADAM_EPS`): the update
g / (sqrt(v) + eps) of an element moves by up to Δg / (4 eps) for a gradient
error Δg, i.e. by the gradient's relative error e times max|g| / (4 eps). For the
step check to be as tight as the gradient check, eps >= max|g| e / (4 tol): 1e-3 in
float64 (e ~ 1e-15, tol 1e-10: margin ~400 at |g| ~ 1) and 0.1 in float32 (e ~ 1e-6,
tol 1e-4: |g| up to 40). With torch's default 1e-8 the factor reaches 1e7 and the
check would measure Adam's conditioning, not the backends (measured: float32 at
eps 1e-3 came to 9e-5 of a 1e-4 tolerance). Both sides get the same eps, which
is all the check needs; eps placement, bias correction and weight-decay coupling
still change the update by 5% or more at eps 0.1.
"""

from __future__ import annotations

import dataclasses
import math
import typing
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from experiments.backend import Backend, Batch, load_backend
from experiments.errors import UserError
from experiments.spec import HEAD_KINDS, REGISTRY, ArchSpec, OptimizerSpec, make_spec

T = TypeVar("T")

TINY = 1e-300

# The checks, in report order, and the tolerance class each one uses.
CHECK_KINDS: dict[str, str] = {
    "roundtrip": "exact",
    "outputs": "forward",
    "final_states": "forward",
    "pooled": "forward",
    "logits": "forward",
    "loss": "forward",
    "grad_inputs": "gradient",
    "grad_params": "gradient",
    "sgd_step": "step",
    "adam_step": "step",
}
CHECKS: tuple[str, ...] = tuple(CHECK_KINDS)
# Kinds whose checks share one scale: the gradient w.r.t. the inputs and the parameters is one gradient.
SHARED_SCALE: tuple[str, ...] = ("gradient",)
FORWARD_CHECKS: tuple[str, ...] = tuple(c for c, kind in CHECK_KINDS.items() if kind in ("exact", "forward"))


@dataclass(frozen=True)
class Tolerances:
    forward: float
    gradient: float
    step: float
    trajectory: float
    exact: float = 0.0

    def for_check(self, check: str) -> float:
        return getattr(self, CHECK_KINDS.get(check, "trajectory"))


# Relative tolerances per precision (see the module docstring for the measure).
# tf32 keeps float32 storage with 10-bit-mantissa matmuls (unit roundoff 2^-11):
# it is a measured mode of its own, with tolerances a hundred times float32's.
TOLERANCES: dict[str, Tolerances] = {
    "float64": Tolerances(forward=1e-10, gradient=1e-10, step=1e-10, trajectory=1e-10),
    "float32": Tolerances(forward=1e-5, gradient=1e-4, step=1e-4, trajectory=1e-3),
    "tf32": Tolerances(forward=1e-3, gradient=1e-2, step=1e-2, trajectory=1e-1),
}
ADAM_EPS: dict[str, float] = {"float64": 1e-3, "float32": 0.1, "tf32": 0.1}
# Inputs up to this scale get every check; above it (up to 1e3) a case checks the
# forward only. At scale 1e3 every unit saturates and the gradient's scale is set
# by the least saturated one, where 1 - tanh^2 and sigma (1 - sigma) cancel, and a
# post-norm Transformer's LayerNorms see mean >> std. Measured there, against the
# float64 truth, float32 gradients err by 1.1e-3 (torch's GRU, and jax's reference
# path), 1.6e-2 (jax's fused GRU scan) and 7.5e-3 (torch's Transformer); in float64
# the two backends' Transformer gradients differ by up to 1.9e-10 (1 draw in 30).
# That measures the problem's conditioning, not the backends, so no fixed relative
# tolerance can hold there.
GRADIENT_MAX_INPUT_SCALE = 10.0
STORAGE_DTYPE: dict[str, str] = {"float64": "float64", "float32": "float32", "tf32": "float32"}


# --------------------------------------------------------------------------- cases


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
    field not known here keeps its default. A new architecture is covered by
    this without an edit; name a field here only to draw more of it.
    """
    cls, fixed = REGISTRY[arch]
    hints = typing.get_type_hints(cls)
    options: dict[str, tuple[Any, ...]] = {}
    for f in dataclasses.fields(cls):
        if f.name in ("arch", "head") or f.name in fixed:
            continue
        hint = hints.get(f.name)
        if f.name in FIELD_OPTIONS:
            options[f.name] = FIELD_OPTIONS[f.name]
        elif hasattr(sizes, f.name):
            options[f.name] = getattr(sizes, f.name)
        elif hint is bool:
            options[f.name] = (False, True)
        elif typing.get_origin(hint) is Literal:
            options[f.name] = typing.get_args(hint)
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

    @property
    def dtype(self) -> str:
        return STORAGE_DTYPE[self.precision]

    def describe(self) -> str:
        b = self.batch
        return f"{self.label} B={b.x.shape[0]} T={b.x.shape[1]} lengths={b.lengths.tolist()} spec={self.spec}"


def representable(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values exactly representable in ``dtype``: both backends then load identical numbers."""
    return np.asarray(values, dtype=dtype).astype(np.float64)


def make_targets(spec: ArchSpec, batch_size: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    head = spec.head
    if head.kind == "classify":
        return rng.integers(0, head.out_size, size=batch_size).astype(np.int64)
    if head.kind == "regress":
        return rng.standard_normal((batch_size, head.out_size))
    if head.kind == "per_step_classify":
        return rng.integers(0, head.out_size, size=(batch_size, seq_len)).astype(np.int64)
    return rng.standard_normal((batch_size, seq_len, head.out_size))


def draw_lengths(chooser: Chooser, batch_size: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
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
    y = make_targets(spec, batch_size, seq_len, rng)
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


# --------------------------------------------------------------------------- observations

Observation = dict[str, dict[str, np.ndarray]]


def _valid_steps(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.where(mask.reshape(mask.shape + (1,) * (values.ndim - 2)), values, 0.0)


@contextmanager
def _jit_context(backend: Backend, jit: bool) -> Iterator[None]:
    """Run the jax backend op by op (``jax.disable_jit``) when ``jit`` is False."""
    if jit or backend.name != "jax":
        yield
        return
    import jax  # only a jax worker (or a test) ever gets here

    with jax.disable_jit():
        yield


def _as_backend(backend: Backend | str) -> Backend:
    return load_backend(backend) if isinstance(backend, str) else backend


def _f64(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}


def observe(
    backend: Backend | str,
    case: Case,
    *,
    device: str = "cpu",
    jit: bool = True,
    checks: Sequence[str] | None = None,
) -> Observation:
    """Run ``case`` through ``backend``: the arrays of every check in ``checks`` (default: the case's)."""
    backend = _as_backend(backend)
    checks = case.checks if checks is None else checks
    spec, batch, precision = case.spec, case.batch, case.precision
    mask = batch.mask
    obs: Observation = {}
    with _jit_context(backend, jit):
        model = backend.build(spec, case.params, precision=precision, device=device)
        if "roundtrip" in checks:
            exported = backend.export_params(model)
            obs["roundtrip"] = {name: np.asarray(value) for name, value in exported.items()}
        if {"outputs", "final_states", "pooled", "logits"} & set(checks):
            fwd = backend.forward(model, batch)
            obs["outputs"] = {"outputs": _valid_steps(fwd.outputs, mask)}
            obs["final_states"] = _f64(fwd.final_states)
            obs["pooled"] = {"pooled": np.asarray(fwd.pooled, dtype=np.float64)}
            logits = np.asarray(fwd.logits, dtype=np.float64)
            obs["logits"] = {"logits": _valid_steps(logits, mask) if spec.head.per_step else logits}
        if {"loss", "grad_inputs", "grad_params"} & set(checks):
            grads = backend.loss_and_grads(model, batch)
            obs["loss"] = {"loss": np.asarray(grads.loss, dtype=np.float64)}
            obs["grad_inputs"] = {"inputs": np.asarray(grads.inputs, dtype=np.float64)}
            obs["grad_params"] = _f64(grads.params)
        for check, optimizer in (("sgd_step", case.sgd), ("adam_step", case.adam)):
            if check in checks:
                obs[check] = _optimizer_steps(backend, case, optimizer, device, case.steps)
    return {name: arrays for name, arrays in obs.items() if name in checks}


def _optimizer_steps(
    backend: Backend, case: Case, optimizer: OptimizerSpec, device: str, steps: int
) -> dict[str, np.ndarray]:
    model = backend.build(case.spec, case.params, precision=case.precision, device=device)
    state = backend.make_train_state(model, optimizer, seed=0)
    prepared = backend.prepare_batch(state, case.batch)
    for _ in range(steps):
        backend.train_step(state, prepared)
    after = backend.state_params(state)
    return {name: np.asarray(after[name], dtype=np.float64) - case.params[name] for name in after}


def observe_trajectory(
    backend: Backend | str,
    spec: ArchSpec,
    params: dict[str, np.ndarray],
    batches: Sequence[Batch],
    optimizer: OptimizerSpec,
    *,
    precision: str = "float64",
    device: str = "cpu",
) -> Observation:
    """Train on ``batches`` in order, one step each: the loss curve and the final parameters."""
    backend = _as_backend(backend)
    model = backend.build(spec, params, precision=precision, device=device)
    state = backend.make_train_state(model, optimizer, seed=0)
    prepared = [backend.prepare_batch(state, b) for b in batches]
    losses = [backend.train_step(state, b) for b in prepared]
    curve = np.asarray([backend.loss_value(loss) for loss in losses], dtype=np.float64)
    return {"loss_curve": {"loss": curve}, "final_params": _f64(backend.state_params(state))}


_WORKER_BACKENDS: dict[str, Backend] = {}


def worker_init(backend_name: str) -> None:
    """Worker-process setup: JAX without preallocation, then the backend (imported once)."""
    import os

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    _WORKER_BACKENDS[backend_name] = load_backend(backend_name)


class WorkerError(RuntimeError):
    """An error raised in a worker, carried back as text (some errors do not survive pickling)."""


def observe_in_worker(backend_name: str, case: Case, device: str = "cpu", jit: bool = True) -> Observation:
    """The function ``seqbench verify`` runs in each backend's worker process."""
    try:
        if backend_name not in _WORKER_BACKENDS:
            worker_init(backend_name)
        return observe(_WORKER_BACKENDS[backend_name], case, device=device, jit=jit)
    except Exception as exc:
        raise WorkerError(f"{backend_name}: {type(exc).__name__}: {exc}") from None


# --------------------------------------------------------------------------- comparison


@dataclass
class CheckResult:
    max_abs_err: float
    max_rel_err: float
    tol: float
    passed: bool
    worst: str = ""  # the array (and case) where the largest relative error sits

    def to_json(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "max_abs_err": num(self.max_abs_err),
            "max_rel_err": num(self.max_rel_err),
            "tol": self.tol,
            "passed": self.passed,
        }


def compare_arrays(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[float, float, str]:
    """(max_abs_err, scale, worst array) over the arrays of one check; inf where they cannot be compared."""
    if set(ref) != set(other):
        missing = sorted(set(ref) ^ set(other))
        return math.inf, 0.0, f"names differ: {', '.join(missing[:4])}"
    worst_abs, worst_name, scale = 0.0, "", 0.0
    for name in ref:
        a, b = np.asarray(ref[name], dtype=np.float64), np.asarray(other[name], dtype=np.float64)
        if a.shape != b.shape:
            return math.inf, 0.0, f"{name}: shape {a.shape} vs {b.shape}"
        if a.size == 0:
            continue
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            return math.inf, 0.0, f"{name}: non-finite values"
        err = float(np.max(np.abs(a - b)))
        scale = max(scale, float(np.max(np.abs(a))))
        if err > worst_abs or not worst_name:
            worst_abs, worst_name = err, name
    return worst_abs, scale, worst_name


def compare(ref: Observation, other: Observation, precision: str, label: str = "") -> dict[str, CheckResult]:
    """Named checks of two observations of the same case."""
    tolerances = TOLERANCES[precision]
    measured = {
        check: compare_arrays(ref.get(check, {}), other.get(check, {}))
        for check in ref.keys() | other.keys()
        if ref.get(check) or other.get(check)  # a check with nothing on either side is left out
    }
    # The gradient's scale covers the whole gradient, inputs and parameters together.
    group_scale = {
        kind: max((scale for check, (_, scale, _) in measured.items() if CHECK_KINDS.get(check) == kind), default=0.0)
        for kind in SHARED_SCALE
    }
    results: dict[str, CheckResult] = {}
    for check, (abs_err, scale, worst) in measured.items():
        kind = CHECK_KINDS.get(check, "trajectory")
        scale = max(scale, group_scale.get(kind, 0.0))
        rel_err = abs_err / max(scale, TINY)
        tol = tolerances.for_check(check)
        passed = abs_err == 0.0 if kind == "exact" else rel_err <= tol
        results[check] = CheckResult(abs_err, rel_err, tol, passed, f"{label} {worst}".strip())
    return {name: results[name] for name in sorted(results, key=_check_order)}


def _check_order(name: str) -> tuple[int, str]:
    return (CHECKS.index(name) if name in CHECKS else len(CHECKS), name)


def merge(results: Sequence[dict[str, CheckResult]]) -> dict[str, CheckResult]:
    """The worst of several cases' results, per check (a check fails if it fails in any case)."""
    merged: dict[str, CheckResult] = {}
    for result in results:
        for name, r in result.items():
            m = merged.get(name)
            if m is None:
                merged[name] = dataclasses.replace(r)
                continue
            if r.max_rel_err > m.max_rel_err or (not math.isfinite(r.max_rel_err)):
                m.max_rel_err, m.worst = r.max_rel_err, r.worst
            m.max_abs_err = max(m.max_abs_err, r.max_abs_err)
            m.tol = max(m.tol, r.tol)
            m.passed = m.passed and r.passed
    return {name: merged[name] for name in sorted(merged, key=_check_order)}


def failures(results: dict[str, CheckResult]) -> list[str]:
    return [name for name, r in results.items() if not r.passed]


def verify_case(
    ref: Backend | str,
    other: Backend | str,
    case: Case,
    *,
    device: str = "cpu",
    jit: bool = True,
    checks: Sequence[str] | None = None,
) -> dict[str, CheckResult]:
    """Observe ``case`` in both backends in this process and compare (jit applies to jax)."""
    a = observe(ref, case, device=device, jit=jit, checks=checks)
    b = observe(other, case, device=device, jit=jit, checks=checks)
    return compare(a, b, case.precision, case.label)
