"""What the benchmark scripts share: their timing options and the single-thread switch for XLA.

``--threads 1`` has to reach XLA before jax is imported, so a script calls
``single_thread_xla_if_asked()`` at import time, ahead of argparse and of any jax import.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"  # Eigen's pool off: as torch.set_num_threads(1)


def single_thread_xla_if_asked(argv: list[str] | None = None) -> int | None:
    """Read ``--threads N`` from the command line; with N = 1, set XLA_FLAGS for one thread. Returns N."""
    argv = sys.argv if argv is None else argv
    if "--threads" not in argv:
        return None
    threads = int(argv[argv.index("--threads") + 1])
    if threads == 1 and XLA_ONE_THREAD not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
    return threads


def add_timing_args(ap: argparse.ArgumentParser, *, steps: int, warmup: int, threads_help: str) -> None:
    """``--steps``, ``--warmup``, ``--threads`` and ``--clock``, the same in every benchmark."""
    ap.add_argument("--steps", type=int, default=steps, help="timed steps per side (>= 20 for a reported figure)")
    ap.add_argument("--warmup", type=int, default=warmup)
    ap.add_argument("--threads", type=int, default=None, help=threads_help)
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: process CPU time per step, robust to other load on the machine; a fair "
        "measure only with --threads 1 (with more threads it adds the threads' times up)",
    )


def clock(name: str) -> Callable[[], float]:
    return time.process_time if name == "cpu" else time.perf_counter
