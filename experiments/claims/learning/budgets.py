"""Training budgets chosen from the committed sizing run (``experiments/configs/sizing.toml``).

Rule 2 of ``rules``: a learning claim's learning rate and step count come from data. The sizing
grid trains each task's positive-control arm (an LSTM at the shortest T, default init) at a few
learning rates, 5 seeds each, stopping at the first evaluation that reaches the task's solved
level. For each learning rate, ``s90`` is the step by which 90% of its runs were solved (infinite
when fewer were); the chosen learning rate has the smallest ``s90``, and the budget is
``MARGIN`` x that step, rounded up to the evaluation interval, and at least ``MIN_STEPS``: a
control solved in a few hundred steps (delayed recall at T=20 with the retention-length init is,
in 100-200) would otherwise cut the claim's longer-T arms off at the control's pace. A task none of whose learning rates
gets 90% solved within the sizing cap runs at the cap, with the learning rate that solved the
most runs (``sized`` False): its claims' positive control then decides whether that sufficed.

``tests/test_budgets.py`` checks that the ``standard`` grids train at these budgets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from experiments.claims.base import Table, fmt
from experiments.claims.learning.rules import MAX_CONTROL_FAILURES, OPTIMIZER_NAMES
from experiments.records import fields as R
from experiments.records.fields import Record

SIZING_CLAIM = "SIZING"
# Grids whose cells train at another sizing key's budget than their own, and why.
BUDGET_FROM: dict[str, str] = {
    # every arm at the LSTM control's budget: one budget for the comparison (the Transformer and the
    # parallel-scan recurrences have no sizing run of their own)
    "claim_l8_standard": "delayed_recall (forget N=T)",
    "claim_l8_scan": "delayed_recall (forget N=T)",  # claim_l8_standard's budget, for the same comparison
}
# Grids that do not train to a learning budget at all, and why.
BUDGET_EXEMPT: dict[str, str] = {}
MARGIN = 1.5
MIN_STEPS = 1000


@dataclass(frozen=True)
class LrSizing:
    lr: float
    runs: int
    solved: int
    s90: float  # the step by which (1 - MAX_CONTROL_FAILURES) of the runs were solved; inf if never
    cap: int  # the sizing run's step cap


@dataclass(frozen=True)
class Budget:
    task: str
    setting: str  # "LSTM H=64 B=32, T=20"
    lr: float
    steps: int
    per_lr: tuple[LrSizing, ...]
    sized: bool = True  # False: no learning rate solved 90% of the control runs within the cap
    optimizer: str = "adam"

    def describe(self) -> str:
        name = OPTIMIZER_NAMES.get(self.optimizer, self.optimizer)
        text = f"{name} lr {fmt(self.lr)}, {self.steps} steps (sizing run: {self.setting}"
        if not self.sized:
            return f"{text}; no learning rate solved 90% of its runs within the cap: the cap, best lr)"
        return f"{text}; 90% solved by step {fmt(min(z.s90 for z in self.per_lr))}, x{MARGIN:g})"


def sizing_key(rec: Record) -> str:
    """What a budget is for: the task (and series), the optimizer where it is not Adam (a budget for
    SGD is another budget), and whether the forget gate starts from a retention length."""
    task = str(R.cfg(rec, "task")) + (f":{R.task_param(rec, 'series')}" if R.task_param(rec, "series") else "")
    optimizer = str(R.opt(rec, "name") or "adam")
    task += f" ({optimizer})" if optimizer != "adam" else ""
    return f"{task} (forget N=T)" if R.spec_field(rec, "forget_retention") is not None else task


def budget_for(budgets: dict[str, Budget], rec: Record, grid: str | None = None) -> Budget | None:
    """The budget a record (or a cell's config as one) trains at: its grid's ``BUDGET_FROM`` entry, else
    its sizing key's; an arm with the retention-length init and no sizing run of its own takes its
    task's default-init budget (the claim's baseline arm's)."""
    if grid in BUDGET_EXEMPT:
        return None
    key = BUDGET_FROM.get(grid or "", sizing_key(rec))
    if key not in budgets and key.endswith(" (forget N=T)"):
        key = key.removesuffix(" (forget N=T)")
    return budgets.get(key)


def _steps_to_solve(rec: Record) -> float:
    value = R.fmetric(rec, "steps_to_threshold")
    return value if math.isfinite(value) else math.inf


def s90(steps: Sequence[float]) -> float:
    """The step by which a fraction (1 - MAX_CONTROL_FAILURES) of runs had solved the task."""
    if not steps:
        return math.inf
    need = math.ceil((1.0 - MAX_CONTROL_FAILURES) * len(steps))
    return sorted(steps)[need - 1]


def choose(records: Sequence[Record]) -> dict[str, Budget]:
    """The budget of every task in the sizing records."""
    recs = [r for r in R.select(records, SIZING_CLAIM, kinds=("train",)) if R.ok(r)]
    out: dict[str, Budget] = {}
    for task, trecs in sorted(R.group(recs, sizing_key).items()):
        sizings = []
        for lr, lrecs in sorted(R.group(trecs, lambda r: float(R.opt(r, "lr"))).items()):
            steps = [_steps_to_solve(r) for r in lrecs]
            cap = max(int(R.setting(r, "steps") or 0) for r in lrecs)
            sizings.append(LrSizing(lr, len(steps), sum(math.isfinite(s) for s in steps), s90(steps), cap))
        first = trecs[0]
        setting = f"{R.arch(first).upper()} H={R.size(first)} B={R.cfg(first, 'batch')}, T={R.seq_len(first)}"
        optimizer = str(R.opt(first, "name") or "adam")
        best = min(sizings, key=lambda z: (z.s90, z.lr))
        if math.isfinite(best.s90):
            every = int(R.setting(first, "eval_every") or 1)
            steps = max(MIN_STEPS, int(math.ceil(MARGIN * best.s90 / every) * every))
            out[task] = Budget(task, setting, best.lr, steps, tuple(sizings), optimizer=optimizer)
        else:
            most = max(sizings, key=lambda z: (z.solved, -z.lr))
            out[task] = Budget(task, setting, most.lr, most.cap, tuple(sizings), sized=False, optimizer=optimizer)
    return out


def budgets_table(budgets: dict[str, Budget]) -> Table:
    rows = []
    for b in budgets.values():
        for z in b.per_lr:
            chosen = "chosen" if z.lr == b.lr else ""
            rows.append([b.task, b.setting, fmt(z.lr), f"{z.solved}/{z.runs}", fmt(z.s90), z.cap, chosen])
        rows.append([b.task, "budget", fmt(b.lr), "", "", b.steps, f"x{MARGIN:g} of s90" if b.sized else "the cap"])
    return Table(
        "sizing_budgets",
        "Sizing run: per task and learning rate, runs solved within the cap and the step by which 90% were (s90); "
        "the chosen budget",
        ["task", "setting", "lr", "solved", "s90 (steps)", "cap", "chosen"],
        rows,
    )
