"""The ``seqbench verify`` reports under ``results/verify/`` and their two tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from experiments.claims.base import Table, fmt

VerifyReport = tuple[str, dict[str, Any]]  # (file name, one architecture's report)
_WHERE = ["report", "arch", "dtype", "device"]


def load_verify(results_dir: Path) -> list[VerifyReport]:
    """Every architecture's report in ``<results_dir>/verify/*.json``, by file name; unreadable files are skipped."""
    out = []
    for path in sorted((results_dir / "verify").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and "arch" in item:
                out.append((path.name, item))
    return out


def passed_count(reports: list[VerifyReport]) -> int:
    """How many architecture runs passed every check."""
    return sum(1 for _, rep in reports if rep.get("passed"))


def verify_tables(reports: list[VerifyReport]) -> tuple[Table, Table]:
    """A summary row per architecture run and a detail row per check."""
    summary, detail = [], []
    for name, rep in reports:
        where = [name, rep.get("arch"), rep.get("dtype"), rep.get("device")]
        checks = rep.get("checks", {}) or {}
        n_pass = sum(bool(c.get("passed")) for c in checks.values())
        rels = [c.get("max_rel_err") for c in checks.values() if isinstance(c.get("max_rel_err"), (int, float))]
        worst = max(rels) if rels else math.nan
        summary.append([*where, bool(rep.get("passed")), f"{n_pass}/{len(checks)}", fmt(worst)])
        for check, c in sorted(checks.items()):
            errors = [fmt(c.get("max_abs_err")), fmt(c.get("max_rel_err")), fmt(c.get("tol"))]
            detail.append([*where, check, *errors, bool(c.get("passed"))])
    return (
        Table(
            "verify_summary",
            "Cross-backend agreement per architecture",
            [*_WHERE, "passed", "checks passed", "worst relative error"],
            summary,
        ),
        Table(
            "verify_checks",
            "Cross-backend agreement per check",
            [*_WHERE, "check", "max abs err", "max rel err", "tolerance", "passed"],
            detail,
        ),
    )
