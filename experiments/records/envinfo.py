"""The environment manifest on every record (``env``).

The driver's part (``driver_env``: git commit, host, Python, seqbench, executor)
is computed once per run; the worker's part comes from ``Backend.describe``
(device kind and name, framework and CUDA/cuDNN versions, precision flags) and
the worker's host; ``record_env`` merges them and stamps the time.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import experiments
from experiments.backend import cpu_name

REPO = Path(__file__).resolve().parents[2]  # experiments/records/envinfo.py -> the repository


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


@functools.cache
def git_info() -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    dirty = None
    if commit is not None:
        dirty = (
            _git("status", "--porcelain", "--untracked-files=no", "--", "experiments", "torch_impl", "jax_impl")
            is not None
        )
    return {"git_commit": commit, "git_dirty": dirty}


def host_env() -> dict[str, Any]:
    """What the process that runs a cell knows about its machine."""
    return {
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
    }


def driver_env(executor: str) -> dict[str, Any]:
    return {**git_info(), "seqbench": experiments.__version__, "executor": executor}


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def record_env(driver: dict[str, Any], worker: dict[str, Any] | None) -> dict[str, Any]:
    """``worker``: ``host_env()`` merged with ``Backend.describe`` (``device_kind``/``device_name`` at least)."""
    env = {**(worker or {}), **driver, "time": now()}
    env.setdefault("device_kind", None)
    env.setdefault("device_name", None)
    return env
