"""``seqbench verify``: do the torch and jax twins compute the same function?

For each architecture, a few cases (``experiments.verify.command_cases``: ragged
lengths with a length-1 row, full batches, length-1 sequences, inputs from 1e-3
to 1e3, non-zero biases) run in both backends, each backend in a worker process
of its own, and are compared check by check (``experiments.verify``). Prints
the largest errors per architecture and check, or with ``--json`` a list with
one object per architecture::

    {"arch", "dtype", "device", "precision", "passed", "cases",
     "checks": {NAME: {"max_abs_err", "max_rel_err", "tol", "passed"}},
     "env": {BACKEND: its describe(): device name, versions, TF32 flags}}

Exit status 1 when any check fails. ``--device cuda`` runs float32 with TF32
off; ``--precision tf32`` measures TF32 matmuls as a mode of its own (float32
storage, its own tolerances).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from typing import Any

from experiments.errors import UserError
from experiments.spec import ARCHITECTURES
from experiments.verify import OTHER, REFERENCE, SCENARIOS, verify_archs
from experiments.verify.workers import worker_observers

FRAMEWORKS: dict[str, str] = {"torch": "torch", "jax": "jax"}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "verify",
        help="cross-backend agreement of outputs, states, gradients and optimizer steps",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("--arch", default="all", help="an architecture's name, or all (default)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default=None, help="default float64")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--precision", choices=["tf32"], default=None, help="measure TF32 matmuls (float32 storage) as their own mode"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn cases (default 0)")
    parser.add_argument(
        "--cases", type=int, default=len(SCENARIOS), help=f"cases per architecture (default {len(SCENARIOS)})"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per architecture")
    return parser


def resolve(args: argparse.Namespace) -> tuple[list[str], str, str]:
    """(architectures, dtype, precision) from the flags; bad input raises ``UserError``."""
    if args.arch == "all":
        archs = list(ARCHITECTURES)
    elif args.arch in ARCHITECTURES:
        archs = [args.arch]
    else:
        names = ", ".join(ARCHITECTURES)
        raise UserError("--arch", f"unknown architecture {args.arch!r}", f"use all or one of {names}")
    if args.precision == "tf32":
        if args.dtype == "float64":
            raise UserError("--precision", "tf32 stores float32", "use --dtype float32 (or leave it out) with tf32")
        dtype, precision = "float32", "tf32"
    else:
        dtype = args.dtype or "float64"
        precision = dtype
    if args.cases < 1:
        raise UserError("--cases", f"must be >= 1, got {args.cases}")
    for name in (REFERENCE, OTHER):
        if importlib.util.find_spec(FRAMEWORKS[name]) is None:
            raise UserError("backend", f"{name} is not installed", "run `make install`")
    return archs, dtype, precision


def _fmt(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2e}"


def print_table(reports: list[dict[str, Any]], header: str) -> None:
    print(header)
    print(f"{'arch':<16}{'check':<14}{'max_abs_err':>12}{'max_rel_err':>13}{'tol':>10}  result")
    for report in reports:
        if "error" in report:
            print(f"{report['arch']:<16}{'(error)':<14}  {report['error']}")
            continue
        for name, r in report["checks"].items():
            mark = "ok" if r["passed"] else f"FAIL  {report['worst'].get(name, '')}"
            tol = "exact" if r["tol"] == 0 else f"{r['tol']:.0e}"
            line = f"{_fmt(r['max_abs_err']):>12}{_fmt(r['max_rel_err']):>13}{tol:>10}  {mark}"
            print(f"{report['arch']:<16}{name:<14}{line}")
    failed = [r["arch"] for r in reports if not r["passed"]]
    summary = f"FAILED: {', '.join(failed)}" if failed else "all passed"
    print(f"{len(reports) - len(failed)}/{len(reports)} architectures agree; {summary}")


def run(args: argparse.Namespace) -> int:
    archs, _, precision = resolve(args)
    with worker_observers(args.device, precision) as (submit, env):
        reports = verify_archs(archs, precision, args.device, args.seed, args.cases, submit)
    for report in reports:
        report["env"] = env  # what it ran on: device name, versions, TF32 flags
    if args.json:
        json.dump(reports, sys.stdout, indent=2)
        print()
    else:
        versions = ", ".join(f"{n} {_version(n, d)}" for n, d in env.items())
        print_table(reports, f"seqbench verify: {precision} on {args.device} ({versions}), {args.cases} cases per arch")
    return 0 if all(r["passed"] for r in reports) else 1


def _version(name: str, describe: dict[str, Any]) -> str:
    return str(describe.get(f"{name}_version") or describe.get(name) or "")


__all__ = ["add_parser", "run", "verify_archs", "worker_observers"]
