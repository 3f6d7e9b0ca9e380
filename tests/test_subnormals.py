"""Both backends flush float32 subnormals to zero on CPU: XLA does by itself, torch once its backend is
loaded (``torch_impl/backend.py``). Without it, a torch recurrent backward whose gradients vanish over
hundreds of steps runs several times slower than jax's on the same numbers, and the two compute
different values below 1.2e-38."""

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
after = product()
print(before != 0.0, after == 0.0, BACKEND.describe("cpu")["flush_denormal"])
"""


def test_loading_the_torch_backend_flushes_float32_subnormals() -> None:
    # a process of its own: the flag is per process, and this one's state must not decide the test
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    survived_before, flushed_after, described = out.stdout.split()
    assert survived_before == "True"  # the control: plain torch keeps the subnormal
    assert flushed_after == "True" and described == "True"


def test_xla_flushes_float32_subnormals_on_cpu_as_described() -> None:
    from jax_impl import BACKEND

    assert BACKEND.describe("cpu")["flush_denormal"] is True
