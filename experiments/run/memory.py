"""The memory guard: no cell may take the machine down with it.

Two lines of defence, both on CPU cells (on a GPU the frameworks raise their own
out-of-memory errors, which already end as ``oom``):

1. Before a cell starts, ``estimated_oom(cell)`` compares a lower bound of what one
   training step holds (``cell_bytes``: the spec's analytic stored activations, the
   parameters, their gradients and the optimizer's state, at the precision's item size)
   with the memory a worker may use (``worker_limit_bytes``). A cell that cannot fit is
   recorded ``oom`` with an ``estimated`` note, without a worker ever starting it. The
   estimate is a lower bound (a framework holds more: workspaces, the batch, its own
   code), so a cell it refuses could not have run.
2. Each worker runs under ``RLIMIT_DATA`` = that limit (``apply_limit``, called first thing
   in the worker process), so an underestimate ends as a failed allocation inside the
   cell (``MemoryError``, torch's ``DefaultCPUAllocator: can't allocate``), recorded
   ``oom``, not as a machine swapping or the kernel's OOM killer picking a victim.
   ``RLIMIT_DATA`` counts writable private memory (heap, anonymous mmaps), not the address
   space frameworks reserve without touching (``RLIMIT_AS`` would stop XLA and CUDA from
   starting): torch and jax each start with about 245 MB of it (measured on the 2-core CPU
   host, torch 2 / jax 0.4 after a tiny step), far below any limit this module sets.

The limit: half the machine's memory (``MemTotal`` / 2), the same on every run of a machine,
so that a stored ``oom (estimated)`` does not depend on what else was running.
``SEQBENCH_WORKER_MEMORY_MB`` overrides it (``0``: no limit); workers that may touch a CUDA
device run without one (the CUDA driver maps large writable areas of its own).
"""

from __future__ import annotations

import os
from typing import Any

LIMIT_ENV = "SEQBENCH_WORKER_MEMORY_MB"  # the user's override, in MiB (0: no limit)
WORKER_LIMIT_ENV = "SEQBENCH_WORKER_DATA_LIMIT"  # what the driver hands a worker, in bytes
ITEMSIZE = {"float64": 8, "float32": 4, "tf32": 4, "bfloat16": 2}
OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2}  # first and second moments; sgd keeps one with momentum
MiB = 2**20


def meminfo() -> dict[str, int]:
    """``/proc/meminfo`` in bytes (``MemTotal``, ``MemAvailable``, ...); empty where there is none."""
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    out[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return out


def worker_limit_bytes() -> int | None:
    """The memory a worker may use (``RLIMIT_DATA``); None: no limit."""
    given = os.environ.get(LIMIT_ENV, "").strip()
    if given:
        if not given.isdigit():
            from experiments.errors import UserError

            raise UserError(LIMIT_ENV, f"must be a whole number of MiB, got {given!r}", "e.g. 4096, or 0 for no limit")
        return int(given) * MiB or None
    total = meminfo().get("MemTotal")
    return total // 2 if total else None


def cell_bytes(cell: Any) -> int:
    """A lower bound of the bytes one training step of ``cell`` holds (see the module's docstring)."""
    spec = cell.build_spec()
    itemsize = ITEMSIZE.get(cell.precision, 4)
    batch, seq_len = int(cell.batch), int(cell.seq_len or 1)
    activations = []
    for path in ("reference", "fused_attention"):  # the smaller of the paths the model may take
        try:
            activations.append(int(spec.stored_activations(batch, seq_len, path)))
        except (TypeError, ValueError, NotImplementedError):
            continue
    optimizer = dict(cell.config.get("optimizer") or {})
    name = str(optimizer.get("name", "adam"))
    slots = OPTIMIZER_SLOTS.get(name, 1 if optimizer.get("momentum") else 0)
    params = int(spec.param_count())
    return itemsize * (min(activations, default=0) + params * (2 + slots))


def estimated_oom(cell: Any, limit: int | None = None) -> dict[str, Any] | None:
    """A cell result with status ``oom`` when the CPU cell cannot fit in a worker's memory, else None."""
    if cell.device != "cpu":
        return None
    limit = worker_limit_bytes() if limit is None else limit
    if not limit:
        return None
    need = cell_bytes(cell)
    if need <= limit:
        return None
    gib = 2**30
    return {
        "status": "oom",
        "path": None,
        "metrics": {"estimated_bytes": need, "memory_limit_bytes": limit},
        "error": (
            f"estimated: one training step holds at least {need / gib:.1f} GiB (stored activations, parameters, "
            f"gradients, optimizer state), more than a worker's {limit / gib:.1f} GiB; not started"
        ),
        "worker_env": None,
        "cell_s": 0.0,
        "estimated": True,
    }


def apply_limit(nbytes: int | None = None) -> int | None:
    """In a worker: cap this process's data segment (``RLIMIT_DATA``) at ``nbytes`` (default: what the
    driver passed in ``SEQBENCH_WORKER_DATA_LIMIT``). Returns the limit set, None when none."""
    if nbytes is None:
        given = os.environ.get(WORKER_LIMIT_ENV, "")
        nbytes = int(given) if given.isdigit() else 0
    if not nbytes:
        return None
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            nbytes = min(nbytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (nbytes, hard))
    except (ImportError, OSError, ValueError):  # not Linux, or not allowed: the estimate still guards
        return None
    return nbytes


def limit_env(devices: set[str] | frozenset[str] | tuple[str, ...]) -> dict[str, str]:
    """Environment that makes a worker for ``devices`` apply the limit (none where CUDA may be used)."""
    limit = worker_limit_bytes()
    if not limit or "cuda" in devices:
        return {}
    return {WORKER_LIMIT_ENV: str(limit)}


def oom_in_log(text: str) -> bool:
    """A worker that died with this log tail ran out of memory (C++ code that aborts on a failed allocation)."""
    low = text.lower()
    return any(s in low for s in ("bad_alloc", "out of memory", "cannot allocate memory", "memoryerror"))


__all__ = [
    "LIMIT_ENV",
    "apply_limit",
    "cell_bytes",
    "estimated_oom",
    "limit_env",
    "meminfo",
    "oom_in_log",
    "worker_limit_bytes",
]
