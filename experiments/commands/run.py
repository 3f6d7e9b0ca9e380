"""`seqbench run`: placeholder until its issue lands (replaced by the module's owner)."""

from __future__ import annotations

import argparse

from experiments.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("run", help="(not built yet)")


def run(args: argparse.Namespace) -> int:
    raise UserError("command", "`run` is not built yet")
