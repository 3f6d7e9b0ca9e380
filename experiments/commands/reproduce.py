"""`seqbench reproduce`: placeholder until its issue lands (replaced by the module's owner)."""

from __future__ import annotations

import argparse

from experiments.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return sub.add_parser("reproduce", help="(not built yet)")


def run(args: argparse.Namespace) -> int:
    raise UserError("command", "`reproduce` is not built yet")
