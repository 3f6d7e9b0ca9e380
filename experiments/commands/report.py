"""``seqbench report [--results DIR] [--paper DIR]``: verdicts, tables, figures and the paper, from the records."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "report",
        help="regenerate results/claims.md, results/tables/, paper/figures/ and paper/paper.md from the records",
    )
    parser.add_argument("--results", default="results", help="the results folder to read (default: results)")
    parser.add_argument(
        "--paper", default=None, help="where the paper goes (default: paper/ beside the results folder)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    from experiments.report import write_report

    summary = write_report(Path(args.results), args.paper)
    counts = Counter(summary.verdicts.values())
    shown = ", ".join(f"{v} {n}" for v, n in sorted(counts.items()))
    print(f"report: {summary.records} records, {len(summary.verdicts)} claims ({shown}); {len(summary.files)} files")
    return 0
