"""``seqbench compare A B [--json] [--brief]``: two results folders' verdicts side by side.

Claim by claim and device by device: the verdict in each, the deciding numbers (each verdict
part's measurement), and a flag where a verdict flips or a number leaves the other's interval;
a summary line last. It reports and does not test: the exit status is 0 whatever it finds
(2 only for a folder that is not there).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "compare",
        help="two results folders side by side: verdicts, deciding numbers, flips (e.g. results results/local)",
    )
    parser.add_argument("a", metavar="A", help="a results folder (e.g. results, the committed one)")
    parser.add_argument("b", metavar="B", help="another results folder (e.g. results/local, from make reproduce)")
    parser.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    parser.add_argument("--brief", action="store_true", help="one line per verdict, without the parts' numbers")
    return parser


def run(args: argparse.Namespace) -> int:
    from experiments.report.compare import compare_dirs, text_lines

    for name, folder in (("A", args.a), ("B", args.b)):
        if not Path(folder).is_dir():
            raise UserError(name, f"{folder!r} is not a folder", "name a results folder, e.g. results or results/local")
    cmp = compare_dirs(args.a, args.b)
    if args.json:
        print(json.dumps(cmp.to_json(), indent=1, sort_keys=True, allow_nan=True))
    else:
        print("\n".join(text_lines(cmp, parts=not args.brief)))
    return 0  # a report, not a test
