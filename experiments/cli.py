"""``seqbench`` (also ``python -m experiments``): the public command line.

Each subcommand lives in ``experiments/commands/<name>.py`` and exports
``add_parser(subparsers)`` and ``run(args) -> int``. Bad input raises
``UserError``; it is printed on one line and the exit status is 2. A flag argparse
rejects is reported the same way (one line and a pointer to ``--help``, status 2),
not with the usage block. SIGTERM ends a run as Ctrl-C does, so that ``finally``
blocks and ``atexit`` hooks (a local Ray's shutdown) run.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import NoReturn

from experiments.errors import UserError

COMMANDS: tuple[str, ...] = ("list", "verify", "bench", "run", "report", "reproduce", "compare")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr and exit status 2.

    argparse's own ``error`` prints the whole usage block first; a person needs the flag,
    the problem and where to read more. Subparsers inherit the class (``add_subparsers``
    uses ``type(self)``), so every subcommand reports the same way."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse wraps long choice lists over lines
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="seqbench", description="Twin PyTorch/JAX sequence models, benchmarked and verified.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        module = importlib.import_module(f"experiments.commands.{name.replace('-', '_')}")
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(handler=module.run)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the same orderly end as Ctrl-C: workers stopped, claims released


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # restored below: main() may be called in a test; signals can only be set in the main thread
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        previous = None
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished cells are stored; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``seqbench run --dry-run | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit would raise again
        return 141  # 128 + SIGPIPE, as a shell reports a process killed by it
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
