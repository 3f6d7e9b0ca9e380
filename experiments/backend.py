"""The seam between the framework-free driver and a framework: the ``Backend`` protocol.

``torch_impl`` and ``jax_impl`` each export ``BACKEND``, an object implementing
this protocol, and ``MODELS``, a dict from architecture name to model class whose
keys equal ``experiments.spec.ARCHITECTURES``. The driver and the tests reach a
backend only through ``load_backend(name)``, in a process of their own.

Arrays cross the seam as NumPy, batch-first. Canonical parameter names and
layouts are those of ``experiments.spec`` (PyTorch's).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from experiments.errors import UserError
from experiments.spec import ArchSpec, OptimizerSpec

BACKENDS: dict[str, str] = {"torch": "torch_impl", "jax": "jax_impl"}
# Test-only backends: "name=module,..." adds backends under new names for the test suite
# (tests/_driver_helpers.py); it can never replace torch or jax, so it is no fallback for them.
TEST_BACKENDS_ENV = "SEQBENCH_TEST_BACKENDS"

# float32 means true IEEE float32 (TF32 off); tf32 is a named precision of its own.
Precision = Literal["float64", "float32", "tf32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("float64", "float32", "tf32", "bfloat16")
Device = Literal["cpu", "cuda"]
PathChoice = Literal["auto", "on", "off"]  # the fast-path switch: "on" that cannot apply raises
PATH_CHOICES: tuple[str, ...] = ("auto", "on", "off")
# Beside the switch, a grid may ask for a backend's own path by name (a kernel: "aten" runs torch's
# per-step ops where it would pick oneDNN). Each backend's model files name theirs in EXECUTION_PATHS;
# tests/test_import_rules.py keeps this table equal to them, so a grid's typo is refused before any cell runs.
PATH_NAMES: dict[str, tuple[str, ...]] = {
    "torch": ("cudnn", "onednn", "aten", "reference", "fused_attention", "parallel_scan"),
    "jax": ("scan", "scan_batch", "scan_feature", "reference", "cudnn", "fused_attention", "parallel_scan"),
}
# What ``describe`` returns on both backends (each adds its framework's versions and flags).
DESCRIBE_KEYS: tuple[str, ...] = (
    "backend",
    "device_kind",
    "device_name",  # the GPU's name, or on CPU the processor's model name
    "precision",
    "dtype",
    "tf32",  # whether TF32 is in effect: precision "tf32" on a CUDA device
    "cuda_version",
    "cudnn_version",
)


@dataclass
class Batch:
    """One batch. ``x`` (B, T, I) float; ``lengths`` (B,) int64, 1 <= lengths <= T.

    ``y`` by head kind: classify (B,) int64; regress (B, out); per_step_classify
    (B, T) int64; per_step_regress (B, T, out). Targets at padded steps are ignored.
    """

    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """(B, T) bool, True at valid steps (never a framework's own convention)."""
        return np.arange(self.x.shape[1])[None, :] < self.lengths[:, None]


@dataclass
class ForwardResult:
    outputs: np.ndarray  # (B, T, F): last layer / encoder outputs, zero at padded steps
    pooled: np.ndarray  # (B, P): what a sequence-level head reads
    logits: np.ndarray  # head output: (B, out) or (B, T, out)
    final_states: dict[str, np.ndarray] = field(default_factory=dict)  # "h", "c": (L*D, B, H)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # "gates" (L*D, B, T, G*H), "attention" (B, T)


@dataclass
class Gradients:
    loss: float
    params: dict[str, np.ndarray]  # canonical names and shapes
    inputs: np.ndarray  # dL/dx, (B, T, I)


@runtime_checkable
class Backend(Protocol):
    name: str

    def numerics(self) -> contextlib.AbstractContextManager[None]:
        """The floating-point mode a cell runs in; the worker enters it around each cell. Both
        backends flush float32 subnormals to zero on CPU (XLA does by itself; torch must be told)."""

    def build(
        self,
        spec: ArchSpec,
        params: dict[str, np.ndarray],
        *,
        precision: Precision = "float32",
        device: Device = "cpu",
        path: PathChoice = "auto",
    ) -> Any:
        """A model holding exactly ``params`` (cast to the precision's dtype)."""

    def export_params(self, model: Any) -> dict[str, np.ndarray]:
        """Canonical parameters; ``build`` then ``export_params`` is bit-identical."""

    def execution_path(self, model: Any) -> str:
        """The path the model runs: ``cudnn``, ``aten``, ``scan``, ``reference``, ``fused_attention``..."""

    def forward(
        self, model: Any, batch: Batch, *, train: bool = False, seed: int = 0, return_extras: bool = False
    ) -> ForwardResult: ...

    def loss_and_grads(self, model: Any, batch: Batch) -> Gradients:
        """Loss of the head (see ``HeadSpec``) in eval mode, gradients w.r.t. params and inputs."""

    def saved_bytes(self, model: Any, batch: Batch) -> dict[str, int]:
        """Bytes the backward pass of one training step holds: what the head's loss (as in
        ``loss_and_grads``, dropout off), differentiated w.r.t. the parameters, keeps between
        the forward and the backward pass. Exact and device-independent, the measure memory
        claims are decided by (torch: ``saved_tensors_hooks``, each storage once; jax: the
        residuals of ``jax.vjp``, each buffer once). Keys, the same on every backend:

        - ``saved_bytes``: activations, i.e. every saved buffer that is not a parameter (the
          input ``x`` when an op saves it, integer masks, a fused kernel's workspace);
        - ``saved_param_bytes``: saved buffers that are the parameters' own storage;
        - ``saved_input_bytes``: the part of ``saved_bytes`` that is the input ``x``;
        - ``saved_buffers``: how many distinct non-parameter buffers ``saved_bytes`` sums.

        Compare with the spec's analytic ``stored_activations(B, T, attention_path) * itemsize``;
        the frameworks legitimately store different things (tests/test_saved_bytes.py measures how)."""

    def make_train_state(self, model: Any, optimizer: OptimizerSpec, *, seed: int = 0) -> Any: ...

    def prepare_batch(self, state_or_model: Any, batch: Batch) -> Any:
        """The batch on the model's device and dtype, ready for ``train_step``."""

    def train_step(self, state: Any, batch: Any) -> Any:
        """One optimizer step (train mode: dropout on). Returns the loss as a device value,
        without waiting for it; ``loss_value`` reads it, ``synchronize`` waits."""

    def loss_value(self, loss: Any) -> float: ...

    def state_params(self, state: Any) -> dict[str, np.ndarray]:
        """Canonical parameters of a train state."""

    def check_device(self, device: Device = "cpu") -> None:
        """Raise ``UserError`` (field ``device``) when this backend cannot run on ``device`` on this
        machine (torch: ``torch.cuda.is_available()``; jax: ``jax.devices("gpu")``). The driver asks
        it in each worker before any cell runs (``check_device`` below), so that a device that cannot
        be had is a person's error, never a stored record."""

    def synchronize(self, device: Device = "cpu") -> None: ...

    def reset_peak_memory(self, device: Device = "cpu") -> None: ...

    def peak_memory_bytes(self, device: Device = "cpu") -> int | None:
        """Peak device memory since the last reset; None where the device cannot tell (CPU)."""

    def describe(self, device: Device = "cpu", precision: Precision = "float32") -> dict[str, Any]:
        """``DESCRIBE_KEYS``, plus the framework's versions and precision flags."""

    def gemm_times(self, device: Device = "cpu", precision: Precision = "float32") -> tuple[int, list[float]]:
        """``n`` and the seconds of each repeat of an n x n GEMM at this precision, after a warm-up
        (``time_repeats``'s rule). No statistic and no cache: the driver takes the peak from them."""


def backend_modules() -> dict[str, str]:
    """Backend name -> module: ``experiments.backend.BACKENDS`` plus test-only additions."""
    modules = dict(BACKENDS)
    for item in os.environ.get(TEST_BACKENDS_ENV, "").split(","):
        name, _, module = item.strip().partition("=")
        if name and module and name not in modules:
            modules[name] = module
    return modules


def load_backend(name: str) -> Backend:
    """Import a backend by name. Only a worker process should call this."""
    if name not in BACKENDS:
        raise UserError("backend", f"unknown backend {name!r}", f"use one of {', '.join(BACKENDS)}")
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as exc:  # the framework itself is missing
        raise UserError("backend", f"{name} is not installed ({exc})", "run `make install`") from exc
    return module.BACKEND


DEVICES: tuple[str, ...] = ("cpu", "cuda")


def check_device(backend: Any, device: str) -> None:
    """Whether ``backend`` (a loaded backend object, in its worker) can run on ``device`` here;
    ``UserError`` with field ``device`` when not. A backend without ``check_device`` (a test-only
    one) runs on cpu only."""
    if device not in DEVICES:
        raise UserError("device", f"unknown device {device!r}", f"use one of {', '.join(DEVICES)}")
    ask = getattr(backend, "check_device", None)
    if ask is not None:
        ask(device)
    elif device != "cpu":
        name = getattr(backend, "name", "this")
        raise UserError("device", f"the {name} backend runs on cpu only, not {device}", "use --device cpu")


# -- host facts and timing both backends share (framework-free) ----------------------------------


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def time_repeats(
    once: Callable[[], float], *, budget_s: float = 0.5, min_repeats: int = 3, max_repeats: int = 50
) -> list[float]:
    """Call ``once`` (which returns its own duration in seconds) at least ``min_repeats`` times and
    then while ``budget_s`` of wall time lasts, at most ``max_repeats`` times: the durations."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < budget_s and len(times) < max_repeats):
        times.append(once())
    return times
