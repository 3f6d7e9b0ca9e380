"""Both backends flush float32 subnormals to zero on CPU inside a cell: XLA does by itself, torch in
``TorchBackend.numerics``, which the worker enters around each cell. Without it, a torch recurrent
backward whose gradients vanish over hundreds of steps runs several times slower than jax's on the
same numbers, and the two compute different values below 1.2e-38."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# 1e-36 x 1e-3 = 1e-39 is a float32 subnormal: it survives under IEEE arithmetic and is 0 when flushed.
PROBE = """
import torch
def product():
    return float(torch.tensor(1e-36) * torch.tensor(1e-3))
before = product()
from torch_impl import BACKEND
with BACKEND.numerics():
    inside = product()
after = product()
print(before != 0.0 and after != 0.0, inside == 0.0, BACKEND.describe("cpu")["flush_denormal"])
"""


def test_torch_cells_flush_float32_subnormals_and_only_cells() -> None:
    # a process of its own: the flag is per process, and this one's state must not decide the test
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    kept_outside, flushed_inside, described = out.stdout.split()
    assert kept_outside == "True"  # the control: outside a cell torch keeps IEEE subnormals
    assert flushed_inside == "True" and described == "True"


def test_xla_flushes_float32_subnormals_on_cpu_as_described() -> None:
    from jax_impl import BACKEND

    assert BACKEND.describe("cpu")["flush_denormal"] is True
