"""``seqbench reproduce [--preset quick|full]``: run every grid of the preset, then ``report``.

``quick`` (the default) is the CPU preset: every P1 claim in minutes on 2 cores, with tiny
budgets. ``full`` is the GPU grid with the sizes CLAIMS.md names (``--device`` overrides the
grids' device). ``--threads N`` caps the CPU threads of each worker (``OMP_NUM_THREADS`` for
torch; for 1 thread also ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` for JAX; every record
names ``omp_num_threads``). ``quick`` defaults to 1
thread: its models are small enough that a second thread buys little, and one thread keeps
the timings steady when other processes share the cores; ``full`` leaves the frameworks'
defaults. An ``OMP_NUM_THREADS`` already in the environment wins over both defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("reproduce", help="run every grid of a preset (quick: CPU, full: GPU), then report")
    parser.add_argument("--preset", default="quick", help="quick (CPU, minutes) or full (GPU); default quick")
    parser.add_argument("--executor", default="local", choices=("local", "ray"), help="where cells run")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="override the grids' device")
    parser.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    parser.add_argument("--paper", default=None, metavar="DIR", help="paper folder (default: beside the results)")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads per worker (default: 1 for quick, all for full)"
    )
    parser.add_argument("--retry-errors", action="store_true", help="also rerun cells stored with status error")
    return parser


def limit_threads(threads: int) -> dict[str, str]:
    """Environment for worker processes that share the cores: ``threads`` each (inherited by the workers)."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if threads == 1:  # XLA's CPU matmuls run on one thread
        env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    return env


def run(args: argparse.Namespace) -> int:
    from experiments.grid import grids_in_preset
    from experiments.report import write_report
    from experiments.run.runner import run_grids

    grids = grids_in_preset(args.preset)
    began = time.perf_counter()
    device = args.device
    threads = args.threads if args.threads is not None else (1 if args.preset == "quick" else None)
    if threads is not None and (args.threads is not None or "OMP_NUM_THREADS" not in os.environ):
        env = limit_threads(max(1, threads))
        os.environ.update(env)
        print(f"reproduce: {env['OMP_NUM_THREADS']} CPU thread(s) per worker", file=sys.stderr)
    print(f"reproduce: preset {args.preset}: {len(grids)} grids: {', '.join(grids)}", file=sys.stderr)
    summary = run_grids(
        grids, executor=args.executor, device=device, results_dir=args.results, retry_errors=args.retry_errors
    )
    report = write_report(Path(args.results), args.paper)
    counts: dict[str, int] = {}
    for verdict in report.verdicts.values():
        counts[verdict] = counts.get(verdict, 0) + 1
    shown = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    elapsed = time.perf_counter() - began
    print(
        f"reproduce: {summary.ran} cells run ({summary.errors} errors), {summary.skipped} stored already; "
        f"report from {report.records} records "
        f"({shown}); {elapsed / 60:.1f} min",
        file=sys.stderr,
    )
    return 0  # failed cells are results: the report lists them
