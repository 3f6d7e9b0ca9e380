"""Helpers the cross-backend, invariant, mutation and trajectory tests share."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from experiments.spec import ArchSpec
from experiments.verify import CheckResult

T = TypeVar("T")

PROFILE = os.environ.get("SEQBENCH_HYPOTHESIS", "quick")


def examples(quick: int, thorough: int) -> int:
    """Examples for an expensive test under the active hypothesis profile."""
    return thorough if PROFILE == "thorough" else quick


class HypothesisChooser:
    """``experiments.verify.Chooser`` over hypothesis's ``data``: the engine's draws, shrinkable."""

    def __init__(self, data: st.DataObject, fixed: dict[str, Any] | None = None) -> None:
        self.data = data
        self.fixed = dict(fixed or {})

    def choice(self, label: str, options: Sequence[T]) -> T:
        if label in self.fixed:
            return self.fixed[label]
        return self.data.draw(st.sampled_from(list(options)), label=label)

    def integer(self, label: str, lo: int, hi: int) -> int:
        if label in self.fixed:
            return int(self.fixed[label])
        return self.data.draw(st.integers(lo, hi), label=label)


def table(results: dict[str, CheckResult]) -> str:
    """The checks as lines, failing ones marked: for assertion messages."""
    lines = []
    for name, r in results.items():
        mark = "ok" if r.passed else "FAIL"
        lines.append(f"  {name:<13} abs {r.max_abs_err:.3e} rel {r.max_rel_err:.3e} tol {r.tol:.0e} {mark} {r.worst}")
    return "\n".join(lines)


def causal_outputs(spec: ArchSpec) -> bool:
    """Whether outputs at step t may depend only on inputs up to t (claim T2).

    A spec with a ``causal`` field says so; otherwise a model is causal unless
    ``bidirectional``. A new architecture follows one of the two conventions.
    """
    if hasattr(spec, "causal"):
        return bool(spec.causal)
    return not getattr(spec, "bidirectional", False)
