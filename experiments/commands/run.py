"""``seqbench run GRID|--claim ID|--preset NAME``: run grid cells, resume, show progress."""

from __future__ import annotations

import argparse

from experiments.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "run",
        help="run the cells of grids (resumes: stored cells are skipped)",
        description="Run grid cells and append one record per cell to RESULTS/<grid>/records.jsonl.",
    )
    parser.add_argument("grid", nargs="?", help="a grid's name (seqbench list) or a path to a grid file")
    parser.add_argument("--claim", metavar="ID", help="run every grid serving this claim")
    parser.add_argument("--preset", metavar="NAME", help="run every grid of this preset (quick, full, ...)")
    parser.add_argument("--executor", default="local", choices=("local", "ray"), help="where cells run")
    parser.add_argument("--ray-address", metavar="ADDR", help="an existing Ray cluster (default: start a local one)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="override the grids' device")
    parser.add_argument("--results", default="results", metavar="DIR", help="results folder (default: results)")
    parser.add_argument(
        "--retry-errors",
        action="store_true",
        help="also rerun cells stored with status error (run exits 1 while any remain)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the cells, their keys and estimated seconds; run nothing"
    )
    parser.add_argument(
        "--shrink", action="store_true", help="cap every size: check the run's path end to end (records say shrunk)"
    )
    return parser


def selected_grids(args: argparse.Namespace) -> list[str]:
    from experiments.grid import grids_for_claim, grids_in_preset

    chosen = [x for x in (args.grid, args.claim, args.preset) if x]
    if len(chosen) != 1:
        raise UserError("run", "name exactly one of GRID, --claim ID, --preset NAME", "e.g. seqbench run smoke")
    if args.claim:
        return grids_for_claim(args.claim)
    if args.preset:
        return grids_in_preset(args.preset)
    return [args.grid]


def dry_run(grids: list[str], device: str | None, shrink: bool) -> None:
    """The cells, their keys and the estimate (``experiments.run.estimate``) of what they will take."""
    from experiments.grid import load_cells
    from experiments.run.estimate import cell_seconds, estimate
    from experiments.run.memory import estimated_oom

    every = []
    for grid, cells in load_cells(grids, device, shrink):
        every += cells
        print(f"{grid.name}: {len(cells)} cells ({grid.path}), estimated {estimate(cells).seconds:.0f} s")
        for cell in cells:
            guard = "  (oom, estimated: will not start)" if estimated_oom(cell) else ""
            print(f"  {cell.key}  ~{cell_seconds(cell):5.1f} s  {cell.label()}{guard}")
    total = estimate(every)
    print(f"{total.cells} cells, estimated {total.seconds:.0f} device seconds (a model: experiments/run/estimate.py)")


def run(args: argparse.Namespace) -> int:
    from experiments.run.runner import run_grids

    grids = selected_grids(args)
    if args.dry_run:
        dry_run(grids, args.device, args.shrink)
        return 0
    summary = run_grids(
        grids,
        executor=args.executor,
        device=args.device,
        results_dir=args.results,
        address=args.ray_address,
        retry_errors=args.retry_errors,
        shrink=args.shrink,
    )
    # a cell stored as error looks finished to the next run: say so, and fail until it is rerun
    return 1 if summary.errors or summary.stored_errors else 0
