"""``seqbench list [--json]``: architectures, backends, tasks, grids, presets, claims."""

from __future__ import annotations

import argparse
import importlib
import json


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("list", help="list architectures, backends, tasks, grids, presets and claims")
    parser.add_argument("--json", action="store_true", help="one JSON object with those six keys")
    return parser


def _names(module: str, function: str) -> list[str]:
    """Names from a part of the suite; a part not built yet lists nothing."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("experiments"):
            return []
        raise
    return sorted(getattr(mod, function)())


def catalogue() -> dict[str, list[str]]:
    from experiments.backend import BACKENDS
    from experiments.spec import ARCHITECTURES

    return {
        "architectures": list(ARCHITECTURES),
        "backends": list(BACKENDS),
        "tasks": _names("experiments.tasks", "task_names"),
        "grids": _names("experiments.grid", "grid_names"),
        "presets": _names("experiments.grid", "preset_names"),
        "claims": _names("experiments.claims", "claim_ids"),
    }


def run(args: argparse.Namespace) -> int:
    cat = catalogue()
    if args.json:
        print(json.dumps(cat, indent=2))
        return 0
    width = max(len(k) for k in cat)
    for key, names in cat.items():
        print(f"{key:<{width}}  {', '.join(names) if names else '(none yet)'}")
    return 0
