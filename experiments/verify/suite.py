"""The command's verification: each architecture's cases through the two backends, merged into one report.

The backends are reached through an *observer*, ``submit(backend_name, case)``
returning a future of the case's observation: worker processes for
``seqbench verify`` (``experiments.verify.workers``), the calling process in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from experiments.verify.cases import Case, command_cases
from experiments.verify.checks import OTHER, REFERENCE, Observation
from experiments.verify.compare import compare, failures, merge

# (backend name, case) -> a future of its observation
Observer = Callable[[str, Case], "Future[Observation]"]


def verify_archs(
    archs: Sequence[str], precision: str, device: str, seed: int, count: int, submit: Observer
) -> list[dict[str, Any]]:
    """One result object per architecture (the ``--json`` schema): every case is submitted first,
    so that the two backends work side by side, then the results are compared in order."""
    pending = []
    for arch in archs:
        cases = command_cases(arch, precision, seed, count)
        pending.append((arch, cases, [(submit(REFERENCE, c), submit(OTHER, c)) for c in cases]))
    reports = []
    for arch, cases, futures in pending:
        report: dict[str, Any] = {
            "arch": arch,
            "dtype": "float32" if precision == "tf32" else precision,
            "device": device,
            "precision": precision,
            "cases": len(cases),
        }
        try:
            per_case = [
                compare(ref.result(), other.result(), precision, case.label)
                for case, (ref, other) in zip(cases, futures, strict=True)
            ]
        except Exception as exc:  # a backend that raises is a failed verification, not a crash
            report.update(passed=False, error=f"{type(exc).__name__}: {exc}", checks={})
            reports.append(report)
            continue
        merged = merge(per_case)
        report["passed"] = not failures(merged)
        report["checks"] = {name: r.to_json() for name, r in merged.items()}
        report["worst"] = {name: r.worst for name, r in merged.items() if not r.passed}
        reports.append(report)
    return reports
