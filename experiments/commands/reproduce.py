"""``seqbench reproduce [--preset NAME ...] [--results DIR]``: run every grid of the presets, then ``report``.

It runs on this machine into a results folder of its own, ``results/local/`` (git-ignored), with
its own claims table, tables and paper (``results/local/paper/``); the committed ``results/`` stay
untouched unless ``--results results`` names them (as the developers do to refresh them). Running
it again resumes: cells already stored are skipped. ``seqbench compare results results/local``
then sets its verdicts beside the committed ones (``make reproduce`` runs both).

The default is the two CPU presets of tiny budgets: ``quick`` (the learning claims, minutes on 2
cores, any host) and then ``quick_cost`` (the small cost grids: each point 3 times in fresh
workers, about 40 min on 2 cores, on a host left to itself). ``--preset quick`` runs the first
alone. ``full`` is the GPU grid with the sizes CLAIMS.md names (``--device`` overrides the
grids' device). ``--threads N`` caps the CPU threads of each worker (``OMP_NUM_THREADS`` for
torch; for 1 thread also ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` for JAX; every record
names ``omp_num_threads``). The quick presets default to 1
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

LOCAL = "results/local"  # a reproduction's own folder: .gitignore names it
COMMITTED = "results"  # the committed records, the ones a reproduction is compared with
DEFAULT_PRESETS: tuple[str, ...] = ("quick", "quick_cost")  # learning first: its verdicts come in minutes


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("reproduce", help="run every grid of the presets (quick: CPU, full: GPU), then report")
    parser.add_argument(
        "--preset",
        action="append",
        metavar="NAME",
        help=f"a preset to run, repeatable: quick (CPU, minutes), quick_cost (CPU cost grids, host alone), "
        f"full (GPU), ...; default {' then '.join(DEFAULT_PRESETS)}",
    )
    parser.add_argument("--executor", default="local", choices=("local", "ray"), help="where cells run")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="override the grids' device")
    parser.add_argument(
        "--results",
        default=LOCAL,
        metavar="DIR",
        help=f"results folder (default: {LOCAL}, git-ignored; name results to refresh the committed records)",
    )
    parser.add_argument(
        "--paper", default=None, metavar="DIR", help=f"paper folder (default: {LOCAL}/paper; paper/ for results)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads per worker (default: 1 for the quick presets, else all)"
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
    from experiments.report.inventory import QUICK_PRESETS
    from experiments.run.runner import run_grids

    presets = list(dict.fromkeys(args.preset or DEFAULT_PRESETS))
    grids = list(dict.fromkeys(g for p in presets for g in grids_in_preset(p)))
    began = time.perf_counter()
    device = args.device
    quick = all(p in QUICK_PRESETS for p in presets)
    threads = args.threads if args.threads is not None else (1 if quick else None)
    if threads is not None and (args.threads is not None or "OMP_NUM_THREADS" not in os.environ):
        env = limit_threads(max(1, threads))
        os.environ.update(env)
        print(f"reproduce: {env['OMP_NUM_THREADS']} CPU thread(s) per worker", file=sys.stderr)
    print(f"reproduce: preset {', '.join(presets)}: {len(grids)} grids: {', '.join(grids)}", file=sys.stderr)
    summary = run_grids(
        grids, executor=args.executor, device=device, results_dir=args.results, retry_errors=args.retry_errors
    )
    report = write_report(Path(args.results), args.paper)  # paper: experiments.report.default_paper_dir
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
    if Path(args.results).resolve() != Path(COMMITTED).resolve() and Path(COMMITTED).is_dir():
        print(f"reproduce: compare with the committed verdicts: seqbench compare {COMMITTED} {args.results}")
    return 0  # failed cells are results: the report lists them
