"""The rules of a fair learning experiment, in one place: every L claim judges through them.

1. **A positive control per claim**: the setting where the claim's baseline arm must learn at the
   chosen budget (the shortest T, the default learning rate, ...). When more than
   ``MAX_CONTROL_FAILURES`` of its runs fail, the claim's verdict is computed as "inconclusive
   (under-trained: ...)", whatever its other parts say: a comparison against a baseline that did
   not learn measures the budget, not the claim.
2. **Budgets from a committed sizing run** (``experiments.claims.learning.budgets``), not by hand.
3. **Intervals that fit the data**: a solve-or-not outcome gets a Wilson interval (scipy) and at
   least ``MIN_BINARY_RUNS`` runs; a continuous one a Student-t interval over at least
   ``MIN_CONTINUOUS_RUNS`` runs. A part measured on fewer runs can show its numbers but cannot
   confirm or refute (``require_runs``).
4. **Every verdict reachable**: each claim's judgement maps its estimate onto confirmed, partly,
   refuted and inconclusive alike (``experiments.claims.verdict``); tests build records that
   reach each one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from experiments.claims.base import fmt
from experiments.claims.stats import Estimate, wilson
from experiments.claims.verdict import (
    CONFIRMED,
    INCONCLUSIVE,
    NOT_RUN,
    PARTLY,
    REFUTED,
    Judgement,
    Part,
    Verdict,
    combine,
)
from experiments.records import fields as R
from experiments.records.fields import Record

MAX_CONTROL_FAILURES = 0.10
MIN_BINARY_RUNS = 20
MIN_CONTINUOUS_RUNS = 5
CONTROL_PART = "positive control"
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD", "adamw": "AdamW"}  # as the paper writes them


def runs(recs: Sequence[Record]) -> dict[tuple[str, int], list[Record]]:
    """Records by run: a (backend, seed) pair is one run (its cells share data and initial weights)."""
    out: dict[tuple[str, int], list[Record]] = {}
    for r in recs:
        out.setdefault((R.backend(r), R.seed(r)), []).append(r)
    return out


@dataclass(frozen=True)
class Control:
    """The outcome of a claim's positive control: how many of its runs learnt, by which criterion."""

    setting: str  # "LSTM, delayed recall T=20, default init"
    criterion: str  # "validation accuracy >= 0.95 by the last step"
    learnt: int
    runs: int
    budget: str = ""  # "2000 steps, Adam lr 3e-3, H=64, B=32"

    @property
    def failures(self) -> int:
        return self.runs - self.learnt

    @property
    def ran(self) -> bool:
        return self.runs > 0

    @property
    def passed(self) -> bool:
        return self.ran and self.failures <= MAX_CONTROL_FAILURES * self.runs

    @property
    def rate(self) -> Estimate:
        return wilson(self.learnt, self.runs)

    def measured(self) -> str:
        return f"{self.learnt}/{self.runs} runs learnt"

    def sentence(self) -> str:
        """The paper's sentence on the control (it names the words "positive control")."""
        if not self.ran:
            return f"The positive control ({self.setting}) did not run, so nothing here can be decided."
        budget = f" at {self.budget}" if self.budget else ""
        head = (
            f"The positive control ({self.setting}; learnt = {self.criterion}) learnt in {self.learnt} of "
            f"{self.runs} runs{budget}"
        )
        if self.passed:
            return f"{head}: passed (at most {fmt(100 * MAX_CONTROL_FAILURES)}% may fail)."
        return (
            f"{head}: failed (more than {fmt(100 * MAX_CONTROL_FAILURES)}% did not learn), so the verdict is "
            "inconclusive (under-trained) whatever the comparison shows."
        )

    def part(self) -> Part:
        """The control as a verdict part: shown, and deciding only when it fails."""
        if not self.ran:
            return Part(f"{CONTROL_PART} ({self.setting})", "not run", INCONCLUSIVE, "under-trained: control not run")
        if self.passed:
            return Part(f"{CONTROL_PART} ({self.setting})", self.measured(), CONFIRMED, "passed", decides=False)
        reason = f"under-trained: {self.setting} learnt in {self.learnt}/{self.runs} runs ({self.criterion})"
        return Part(f"{CONTROL_PART} ({self.setting})", self.measured(), INCONCLUSIVE, reason)


def control(
    recs: Sequence[Record], learnt: Callable[[Record], bool], setting: str, criterion: str, budget: str = ""
) -> Control:
    """The control from its records: a run learnt when every one of its cells did (usually one)."""
    by_run = runs(recs)
    ok = sum(all(learnt(r) for r in cells) for cells in by_run.values())
    return Control(setting, criterion, ok, len(by_run), budget)


def gate(parts: Sequence[Part], ctrl: Control) -> list[Part]:
    """The parts one control stands behind (a task's, in a claim with several tasks): kept as they are
    when it passed; shown but not deciding, and saying why, when it failed."""
    if ctrl.passed:
        return list(parts)
    return [
        Part(p.name, p.measured, p.verdict, f"not judged, under-trained ({ctrl.setting}): {p.reason}", p.core, False)
        for p in parts
    ]


def judged(parts: Sequence[Part]) -> Verdict:
    """``combine`` under rule 1: when no positive control passed, the verdict is "inconclusive
    (under-trained: ...)"; the other parts stay in the table for their evidence. Where a claim has a
    control per task and only some fail, the failed tasks' parts were ``gate``d out and the verdict
    comes from the rest, its reason naming what was left out; when the rest decide nothing (their
    parts are shown only), it is "inconclusive (under-trained: ...)" as if no control had passed."""
    controls = [p for p in parts if p.name.startswith(CONTROL_PART)]
    failed = [p for p in controls if p.verdict != CONFIRMED]
    rest = combine([p for p in parts if p not in failed])
    if failed and len(failed) < len(controls) and rest.verdict != NOT_RUN:  # else: nothing left decides
        left = "; ".join(p.reason for p in failed)
        return Verdict(rest.verdict, f"{rest.reason} (not judged: {left})", list(parts))
    if failed and any(p.verdict != NOT_RUN for p in parts if not p.name.startswith(CONTROL_PART)):
        reason = "; ".join(p.reason for p in failed)
        if not reason.startswith("under-trained"):
            reason = f"under-trained: {reason}"
        return Verdict(INCONCLUSIVE, reason, list(parts))
    return combine(parts)


def require_runs(j: Judgement, n: int, binary: bool) -> Judgement:
    """Rule 3: a decided judgement (confirmed, partly, refuted) on fewer runs than the outcome needs
    becomes inconclusive."""
    need = MIN_BINARY_RUNS if binary else MIN_CONTINUOUS_RUNS
    if n >= need or j.verdict not in (CONFIRMED, PARTLY, REFUTED):
        return j
    kind = "solve-or-not" if binary else "continuous"
    return Judgement(INCONCLUSIVE, f"{j.reason}; but {n} runs < the {need} a {kind} outcome needs")


def solve_rate(recs: Sequence[Record], solved: Callable[[Record], bool]) -> Estimate:
    """The fraction of runs solved, with its Wilson interval (n = runs)."""
    by_run = runs(recs)
    return wilson(sum(all(solved(r) for r in cells) for cells in by_run.values()), len(by_run))
