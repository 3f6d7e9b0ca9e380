"""Training budgets from the sizing run (experiments/claims/learning/budgets.py): the rule on synthetic
sizing records, and the committed standard grids against the committed sizing records."""

from __future__ import annotations

import math
from functools import cache

import pytest
from _claims_helpers import train

from experiments.claims.learning import budgets as budgets_mod
from experiments.claims.learning.budgets import (
    MARGIN,
    MIN_STEPS,
    SIZING_CLAIM,
    Budget,
    budget_for,
    choose,
    s90,
    sizing_key,
)
from experiments.grid import grids_for_claim, grids_in_preset, load_grid
from experiments.records import fields as R
from experiments.records.fields import load_records


def sized(lr: float, steps: list[float | None], *, task: str = "adding", cap: int = 3000, every: int = 100, **kw):
    """One sizing record per entry of ``steps`` (seed = its index): the step it was solved at, None if never."""
    return [
        train(SIZING_CLAIM, 0.0, 0.16, threshold=0.01, seed=s, task=task, optimizer={"lr": lr},
              metrics={"steps_to_threshold": st}, settings={"steps": cap, "eval_every": every}, **kw)
        for s, st in enumerate(steps)
    ]  # fmt: skip


def test_s90_is_the_step_by_which_nine_in_ten_solved() -> None:
    assert s90([100, 200, 300, 400, 500]) == 500  # of 5, all 5 must have solved
    assert s90([100, 200, 300, 400, math.inf]) == math.inf
    assert s90([*range(100, 1000, 100), math.inf]) == 900  # of 10, 9
    assert s90([*range(100, 1900, 100), math.inf, math.inf]) == 1800  # of 20, 18
    assert s90([*range(100, 1800, 100), math.inf, math.inf, math.inf]) == math.inf  # 17 of 20: not
    assert s90([]) == math.inf


def test_choose_takes_the_fastest_lr_and_a_margin_over_its_s90() -> None:
    recs = sized(1e-3, [900, 1000, 1100, 1200, 1300]) + sized(3e-3, [600, 700, 800, 900, 1000])
    recs += sized(1e-2, [100, 200, 300, 400, None])  # fastest runs, but one never solved
    budget = choose(recs)["adding"]
    assert isinstance(budget, Budget) and budget.sized
    assert budget.lr == 3e-3 and budget.steps == 1500  # 1.5 x 1000
    per_lr = {z.lr: z for z in budget.per_lr}
    assert per_lr[1e-2].s90 == math.inf and per_lr[1e-2].solved == 4 and per_lr[1e-2].runs == 5
    assert per_lr[1e-3].s90 == 1300 and per_lr[1e-3].cap == 3000
    assert "90% solved by step 1000, x1.5" in budget.describe()


def test_steps_round_up_to_the_evaluation_interval_and_stop_at_the_floor() -> None:
    assert MARGIN == 1.5 and MIN_STEPS == 1000
    odd = choose(sized(1e-3, [900, 900, 900, 900, 900], every=250))["adding"]
    assert odd.steps == 1500  # 1.5 x 900 = 1350, up to a multiple of 250
    plain = choose(sized(1e-3, [900] * 5))["adding"]
    assert plain.steps == 1400  # 1350 up to a multiple of 100
    fast = choose(sized(1e-3, [200] * 5) + sized(3e-3, [100] * 5))["adding"]
    assert (fast.lr, fast.steps) == (3e-3, MIN_STEPS)  # 150 steps: the floor
    tie = choose(sized(1e-3, [300] * 5) + sized(3e-3, [300] * 5))["adding"]
    assert tie.lr == 1e-3  # equal s90: the smaller lr


def test_no_lr_at_ninety_percent_runs_at_the_cap_with_the_lr_that_solved_most() -> None:
    recs = sized(1e-3, [500, None, None, None, None], cap=2500) + sized(3e-3, [500, 600, 700, None, None], cap=2500)
    recs += sized(1e-2, [None] * 5, cap=2500)
    budget = choose(recs)["adding"]
    assert not budget.sized and (budget.lr, budget.steps) == (3e-3, 2500)
    assert "the cap, best lr" in budget.describe()
    tie = choose(sized(1e-3, [500, None, None, None, None]) + sized(1e-2, [400, None, None, None, None]))["adding"]
    assert tie.lr == 1e-3  # as many solved: the smaller lr


def test_choose_reads_ok_sizing_records_only_per_sizing_key() -> None:
    recs = sized(1e-3, [500] * 5)
    recs += sized(1e-2, [100] * 5, status="error")  # failed cells do not count
    recs += [train("L2", 0.0, 0.16, optimizer={"lr": 1e-2}, metrics={"steps_to_threshold": 10})]  # not sizing
    recs += sized(1e-3, [200] * 5, task="forecast", task_params={"series": "co2"})
    recs += sized(1e-3, [300] * 5, task="delayed_recall", spec={"forget_retention": 20})
    recs += sized(1e-3, [None] * 5, task="delayed_recall")
    budgets = choose(recs)
    assert set(budgets) == {"adding", "forecast:co2", "delayed_recall (forget N=T)", "delayed_recall"}
    assert budgets["adding"].lr == 1e-3 and [z.lr for z in budgets["adding"].per_lr] == [1e-3]
    assert budgets["delayed_recall (forget N=T)"].sized and not budgets["delayed_recall"].sized


def test_sizing_key() -> None:
    assert sizing_key(train("L2", 0.0, 0.1, task="adding")) == "adding"
    assert sizing_key(train("L12", 0.0, 0.1, task="forecast", task_params={"series": "sunspots"})) == (
        "forecast:sunspots"
    )
    rec = train("L6", 0.0, 0.1, task="delayed_recall", spec={"forget_retention": 50})
    assert sizing_key(rec) == "delayed_recall (forget N=T)"
    assert sizing_key(train("L2", 0.0, 0.1, task="adding", spec={"forget_bias": 1.0})) == "adding"


# -- the committed grids train at the committed sizing budgets ------------------------------------------------


@cache
def _records() -> tuple:
    return tuple(load_records("results"))


def _as_record(cell) -> dict:
    return {"config": cell.config}


@cache
def _complete_budgets() -> dict[str, Budget]:
    """The budgets whose sizing runs have all finished: every cell of the sizing grids with that key has an
    ok record (matched by backend, lr and seed: a cell's key changes when a setting is added). Sizing
    may still be running; an unfinished budget is not checked."""
    recs = [r for r in R.select(list(_records()), SIZING_CLAIM, kinds=("train",)) if R.ok(r)]
    have = {(sizing_key(r), R.backend(r), float(R.opt(r, "lr")), R.seed(r)) for r in recs}
    want: dict[str, set] = {}
    for name in grids_for_claim(SIZING_CLAIM):
        for c in load_grid(name).cells():
            want.setdefault(sizing_key(_as_record(c)), set()).add(
                (sizing_key(_as_record(c)), c.backend, float(c.optimizer["lr"]), c.seed)
            )
    return {k: b for k, b in choose(recs).items() if k in want and want[k] <= have}


def _standard_train_grids() -> list[str]:
    """The CPU learning grids: ``standard``'s and ``extended``'s (the rows shown beside them)."""
    out = []
    for name in sorted({*grids_in_preset("standard"), *grids_in_preset("extended")}):
        grid = load_grid(name)
        if grid.kind == "train" and SIZING_CLAIM not in grid.claim_ids:
            out.append(name)
    return out


def test_the_committed_sizing_records_give_budgets() -> None:
    budgets = _complete_budgets()
    assert budgets, "no finished sizing run under results/"
    for b in budgets.values():
        assert b.steps >= MIN_STEPS and b.lr > 0


@pytest.mark.parametrize("name", _standard_train_grids())
def test_standard_grids_train_at_the_sizing_budget(name: str) -> None:
    """Each cell at its sizing key's budget: its steps, and its lr unless the grid sweeps lr (L13). A grid
    that says why it may not is in budgets.BUDGET_EXEMPT (none today)."""
    if name in getattr(budgets_mod, "BUDGET_EXEMPT", ()):
        pytest.skip(f"{name}: exempt from the sizing budget (budgets.BUDGET_EXEMPT)")
    grid = load_grid(name)
    budgets = _complete_budgets()
    lr_varies = "lr" in grid.file.axes  # a learning-rate sweep (L13): the steps must still be the budget's
    wrong, checked = set(), 0
    for cell in grid.cells():
        if cell.kind != "train":
            continue
        key = sizing_key(_as_record(cell))
        budget = budget_for(budgets, _as_record(cell), name)
        if budget is None:
            continue
        checked += 1
        steps, lr = cell.settings["steps"], float(cell.optimizer["lr"])
        if steps != budget.steps or (not lr_varies and lr != budget.lr):
            wrong.add(
                f"{cell.arch} on {key}: {steps} steps at lr {lr:g}, the sizing budget is {budget.steps} at lr "
                f"{budget.lr:g}" + ("" if budget.sized else " (unsized: the cap)")
            )
    if not checked:
        pytest.skip(f"{name}: no finished sizing budget for its cells yet")
    assert not wrong, f"{name}: " + "; ".join(sorted(wrong))
