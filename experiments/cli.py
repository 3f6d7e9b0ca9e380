"""``seqbench`` (also ``python -m experiments``): the public command line.

Each subcommand lives in ``experiments/commands/<name>.py`` and exports
``add_parser(subparsers)`` and ``run(args) -> int``. Bad input raises
``UserError``; it is printed on one line and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from experiments.errors import UserError

COMMANDS: tuple[str, ...] = ("list", "verify", "bench", "run", "report", "reproduce", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqbench", description="Twin PyTorch/JAX sequence models, benchmarked and verified."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"experiments.commands.{name.replace('-', '_')}")
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished cells are stored; run the same command again to resume", file=sys.stderr)
        return 130
