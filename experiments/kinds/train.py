"""The ``train`` cell kind: train on a task's train split to a step budget, evaluating on val."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from experiments.cell import Cell, CellResult, finite
from experiments.errors import UserError
from experiments.kinds.registry import build_model, register_cell_kind
from experiments.tasks import evaluate, load_task, task_loss

TRAIN_SETTINGS: dict[str, Any] = {
    "steps": 500,
    "eval_every": 50,
    "eval_batch": 256,
    "log_every": 0,  # 0: steps / max_curve_points
    "max_curve_points": 200,
    "diverge_factor": 100.0,  # loss above this many times the first step's loss: diverged
    "threshold": None,  # "solved" level for steps_to_threshold; None: the task's own
    # or a fraction of the way from the trivial baseline to a perfect score (for tasks with no
    # solved level of their own, e.g. forecasting): 0.5 = half the baseline's error removed
    "relative_threshold": None,
    "stop_at_threshold": False,  # end the run at the first evaluation that reaches the threshold (sizing runs)
}


def _check_train(s: dict[str, Any]) -> None:
    for name in ("steps", "eval_every", "eval_batch", "max_curve_points"):
        if s[name] < 1:
            raise UserError(name, f"must be >= 1, got {s[name]}", "set a positive integer")
    if s["log_every"] < 0:
        raise UserError("log_every", f"must be >= 0, got {s['log_every']}", "0 picks it from max_curve_points")
    if s["relative_threshold"] is not None and not 0 < s["relative_threshold"] <= 1:
        raise UserError("relative_threshold", f"must lie in (0, 1], got {s['relative_threshold']}", "e.g. 0.5")
    if s["threshold"] is not None and s["relative_threshold"] is not None:
        raise UserError("relative_threshold", "set either threshold or relative_threshold, not both")
    if not s["diverge_factor"] > 1:
        raise UserError("diverge_factor", f"must be > 1, got {s['diverge_factor']}", "e.g. 100")


def evaluate_split(backend: Any, model: Any, split: Any, task: Any, batch_size: int) -> tuple[float, float]:
    """The task's metric and its loss (``experiments.tasks.task_loss``) over a split, through
    ``Backend.forward``: one forward pass serves both."""
    total, count, loss_total, loss_count = 0.0, 0, 0.0, 0
    for b in split.batches(batch_size):
        logits = np.asarray(backend.forward(model, b, train=False).logits)
        value, n = evaluate(task.metric, task.head, logits, b)
        loss, m = task_loss(task.head, logits, b)
        total, count, loss_total, loss_count = total + value, count + n, loss_total + loss, loss_count + m
    return total / max(count, 1), loss_total / max(loss_count, 1)


class _Batches:
    """Training batches: a fresh seeded permutation each epoch, full batches only."""

    def __init__(self, n: int, batch: int, rng: np.random.Generator) -> None:
        self.n, self.batch, self.rng = n, batch, rng
        self.order: np.ndarray = np.empty(0, dtype=np.int64)
        self.pos = 0

    def next(self) -> np.ndarray:
        if self.batch > self.n:
            return self.rng.integers(0, self.n, size=self.batch)
        if self.pos + self.batch > len(self.order):
            self.order, self.pos = self.rng.permutation(self.n), 0
        idx = self.order[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return idx


@register_cell_kind("train", settings=TRAIN_SETTINGS, task="required", check=_check_train)
def train_cell(backend: Any, cell: Cell) -> CellResult:
    """Train on the task's train split for ``steps`` steps; evaluate on val every ``eval_every`` steps.

    Evaluation rebuilds a model from ``backend.state_params(state)``, so it reads the
    train state only through the protocol. The train loss is read every step, for
    divergence detection: a NaN/inf loss stops the run with status ``nan``, a loss
    above ``diverge_factor`` x the first step's loss with ``diverged``.
    """
    s = {**TRAIN_SETTINGS, **cell.settings}  # a cell built before a setting existed reads its default
    task = load_task(cell.task, seed=cell.data_seed, **cell.task_params)
    spec = cell.build_spec()
    model = build_model(backend, cell, spec, spec.init_params(cell.seed))
    path = backend.execution_path(model)
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    sampler = _Batches(len(task.train), cell.batch, np.random.default_rng([cell.seed, 1]))
    higher = task.higher_is_better
    threshold = s["threshold"] if s["threshold"] is not None else task.threshold
    if s["relative_threshold"] is not None:
        perfect = 1.0 if higher else 0.0
        threshold = task.baseline + s["relative_threshold"] * (perfect - task.baseline)
    steps = s["steps"]
    log_every = s["log_every"] or max(1, steps // s["max_curve_points"])

    def eval_now(split: Any) -> tuple[float, float]:
        current = build_model(backend, cell, spec, backend.state_params(state))
        return evaluate_split(backend, current, split, task, s["eval_batch"])

    def better(a: float, b: float | None) -> bool:
        return b is None or (a > b if higher else a < b)

    def reached(v: float) -> bool:
        return threshold is not None and (v >= threshold if higher else v <= threshold)

    loss_curve: dict[str, list] = {"step": [], "value": []}
    val_curve: dict[str, list] = {"step": [], "value": []}
    status, first_loss, window, last_loss = "ok", None, [], None
    best, best_step, to_threshold, step = None, None, None, 0
    began = time.perf_counter()
    while step < steps:
        step += 1
        batch = backend.prepare_batch(state, task.train.batch(sampler.next()))
        last_loss = backend.loss_value(backend.train_step(state, batch))
        if first_loss is None:
            first_loss = last_loss
        window.append(last_loss)
        if not finite(last_loss):
            status = "nan"
        elif last_loss > s["diverge_factor"] * max(abs(first_loss), 1e-12):
            status = "diverged"
        if step % log_every == 0 or step == steps or status != "ok":
            loss_curve["step"].append(step)
            loss_curve["value"].append(float(np.mean(window)))
            window = []
        if status != "ok":
            break
        if step % s["eval_every"] == 0 or step == steps:
            value, _ = eval_now(task.val)
            val_curve["step"].append(step)
            val_curve["value"].append(value)
            if not finite(value):
                status = "nan"
                break
            if better(value, best):
                best, best_step = value, step
            if to_threshold is None and reached(value):
                to_threshold = step
                if s["stop_at_threshold"]:
                    break
    train_s = time.perf_counter() - began

    final_val = val_curve["value"][-1] if val_curve["step"] and val_curve["step"][-1] == step else None
    if final_val is None:  # stopped early: evaluate where it stopped
        final_val, _ = eval_now(task.val)
        val_curve["step"].append(step)
        val_curve["value"].append(final_val)
    final_test, final_test_loss = eval_now(task.test) if status == "ok" else (None, None)
    metrics = {
        "final_val_metric": final_val if finite(final_val) else None,
        "best_val_metric": best,
        "steps_to_threshold": to_threshold,
        "baseline_metric": task.baseline,
        "diverged": status in ("nan", "diverged"),
        "curves": {"train_loss": loss_curve, "val_metric": val_curve},
        "metric": task.metric,
        "higher_is_better": higher,
        "threshold": threshold,
        "best_step": best_step,
        "final_test_metric": final_test,
        "final_test_loss": final_test_loss,  # the task's loss on test (per-step cross-entropy, or MSE)
        "final_train_loss": last_loss if finite(last_loss) else None,
        "steps_run": step,
        "train_s": train_s,
        "param_count": int(spec.param_count()),
    }
    return CellResult(metrics=metrics, status=status, path=path)
