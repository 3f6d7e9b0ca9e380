"""Cell kinds for measurements that are neither timing nor training.

- ``grad_flow`` (claim L1): at initialisation, the norm of the loss gradient with respect
  to every input step, ||dL/dx_t|| (over the batch and the input features), for a loss on
  the sequence head (which reads the final state), and the first/last ratio. Inputs
  x ~ N(0, 1), targets drawn for the head; ``Backend.loss_and_grads`` in eval mode.
- ``forget_gate`` (claim L3): at initialisation, the LSTM's forget-gate activations on
  x ~ N(0, 1) inputs (``Backend.forward(..., return_extras=True)``, gates after their
  sigmoid), their mean, and the cell's retention after N = ``forget_retention`` steps:
  the product of the forget activations over steps 0..N-1, averaged over units and batch.

Both run inside a worker through the ``Backend`` protocol only (no framework imports) and
take no task: the driver's ``seq_len``/``batch``/spec give the sizes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from experiments.backend import Batch
from experiments.cell import Cell, CellResult
from experiments.errors import UserError
from experiments.kinds.inputs import random_targets
from experiments.kinds.registry import build_model, register_cell_kind
from experiments.tasks import evaluate, load_task

INPUT_SEED_OFFSET = 1_000_003  # the probe's inputs come from another stream than the weights


def _inputs(cell: Cell, spec: Any) -> Batch:
    rng = np.random.default_rng(cell.seed + INPUT_SEED_OFFSET)
    b, t = cell.batch, int(cell.seq_len)
    if spec.head.kind not in ("classify", "regress"):
        raise UserError(
            "head_kind", f"grad_flow needs a sequence-level head, not {spec.head.kind!r}", "use classify or regress"
        )
    x = rng.standard_normal((b, t, spec.input_size))  # (B, T, I)
    return Batch(x=x, lengths=np.full(b, t, dtype=np.int64), y=random_targets(spec, b, t, rng))


LAYOUTS = ("batch_first", "time_major_mistake")


def _check_grad_flow(s: dict[str, Any]) -> None:
    if s["layout"] not in LAYOUTS:
        raise UserError("layout", f"unknown layout {s['layout']!r}", f"use one of {', '.join(LAYOUTS)}")


@register_cell_kind("grad_flow", settings={"layout": "batch_first"}, task="none", check=_check_grad_flow)
def grad_flow(backend: Any, cell: Cell) -> CellResult:
    """``layout = "time_major_mistake"`` reproduces the claim's source snippet (seed 002, Q6): a
    (1, T, I) tensor given to an ``nn.LSTM`` built without ``batch_first=True`` is read as T
    sequences of one step each, so "the gradient at step t" is that of an unrelated one-step
    sequence, and the first/last ratio is of order 1 whatever the recurrence does."""
    spec = cell.build_spec()
    model = build_model(backend, cell, spec, spec.init_params(cell.seed))
    batch = _inputs(cell, spec)
    mistake = cell.settings.get("layout", "batch_first") == "time_major_mistake"
    if mistake:  # (B, T, I) read as T*B one-step sequences
        b, t = batch.x.shape[:2]
        rng = np.random.default_rng(cell.seed + INPUT_SEED_OFFSET + 1)
        batch = Batch(
            x=batch.x.reshape(b * t, 1, -1),  # (B*T, 1, I)
            lengths=np.ones(b * t, dtype=np.int64),
            y=random_targets(spec, b * t, 1, rng),
        )
    grads = backend.loss_and_grads(model, batch)
    g = np.asarray(grads.inputs, dtype=np.float64)  # (B, T, I); the mistake: (B*T, 1, I)
    if mistake:
        g = g.reshape(cell.batch, int(cell.seq_len), -1)  # back to the steps the snippet meant
    norms = np.sqrt((g**2).sum(axis=(0, 2)))  # per step, over the batch and the features
    first, last = float(norms[0]), float(norms[-1])
    ratio = first / last if last > 0 else math.nan
    status = "ok" if np.isfinite(norms).all() and math.isfinite(grads.loss) else "nan"
    return CellResult(
        metrics={
            "grad_norms": norms.tolist(),
            "ratio_first_last": ratio,
            "log10_ratio_first_last": math.log10(ratio) if ratio > 0 else None,
            "loss": grads.loss,
            "underflow_steps": int((norms == 0).sum()),
        },
        status=status,
        path=backend.execution_path(model),
    )


@register_cell_kind("forget_gate", settings={}, task="none")
def forget_gate(backend: Any, cell: Cell) -> CellResult:
    spec = cell.build_spec()
    n = getattr(spec, "forget_retention", None)
    if getattr(spec, "arch", "") not in ("lstm", "bilstm", "attention_lstm") or n is None:
        raise UserError(
            "forget_retention", "forget_gate needs an LSTM with forget_retention set", "set forget_retention"
        )
    if cell.seq_len < n:
        raise UserError("seq_len", f"must be >= forget_retention={n}, got {cell.seq_len}")
    model = build_model(backend, cell, spec, spec.init_params(cell.seed))
    out = backend.forward(model, _inputs(cell, spec), return_extras=True)
    gates = np.asarray(out.extras["gates"], dtype=np.float64)  # (L*D, B, T, 4H), order i, f, g, o
    h = spec.hidden_size
    f = gates[0, :, :, h : 2 * h]  # layer 0, forward direction: (B, T, H)
    retention = np.prod(f[:, :n, :], axis=1)  # (B, H)
    target = 0.5 ** (1.0 / n)
    return CellResult(
        metrics={
            "forget_mean": float(f.mean()),
            "forget_target": target,
            "forget_bias": float(spec.effective_forget_bias),
            "retention_after_n": float(retention.mean()),
            "retention_median": float(np.median(retention)),
        },
        path=backend.execution_path(model),
    )


ATTENTION_SETTINGS: dict[str, Any] = {"steps": 300, "eval_examples": 256}


@register_cell_kind("attention_map", settings=ATTENTION_SETTINGS, task="required")
def attention_map(backend: Any, cell: Cell) -> CellResult:
    """Train an attention-LSTM for ``steps`` steps on the task's train split, then read its attention
    weights (``extras["attention"]``, (B, T)) on the first ``eval_examples`` validation sequences: their
    mean over sequences per position, and, for delayed recall, the mean weight on the cue's position.
    (Training here is a plain loop of ``Backend.train_step``; the ``train`` kind is the one that measures
    learning, with evaluation curves and divergence.)"""
    spec = cell.build_spec()
    if "attention" not in getattr(spec, "arch", ""):
        raise UserError("arch", "attention_map needs an attention architecture", "use attention_lstm")
    settings = cell.settings
    task = load_task(cell.task, seed=cell.data_seed, **cell.task_params)
    model = build_model(backend, cell, spec, spec.init_params(cell.seed))
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    rng = np.random.default_rng([cell.seed, 2])
    loss = math.nan
    for _ in range(settings["steps"]):
        idx = rng.integers(0, len(task.train), size=cell.batch)
        loss = backend.loss_value(backend.train_step(state, backend.prepare_batch(state, task.train.batch(idx))))
    trained = build_model(backend, cell, spec, backend.state_params(state))
    val = task.val.batch(np.arange(min(settings["eval_examples"], len(task.val))))
    out = backend.forward(trained, val, return_extras=True)
    weights = np.asarray(out.extras["attention"], dtype=np.float64)  # (B, T)
    hits, count = evaluate(task.metric, task.head, np.asarray(out.logits), val)
    metrics: dict[str, Any] = {
        "attention_mean": weights.mean(axis=0).tolist(),
        "val_metric": hits / max(count, 1),
        "final_train_loss": loss,
        "baseline_metric": task.baseline,
    }
    distance = task.info.get("distance")
    if distance is not None and task.info.get("cue_kept", True):
        cue = task.seq_len - 1 - int(distance)
        metrics["cue_position"] = cue
        metrics["attention_on_cue"] = float(weights[:, cue].mean())
        metrics["uniform_weight"] = 1.0 / task.seq_len
    status = "ok" if math.isfinite(loss) else "nan"
    return CellResult(metrics=metrics, status=status, path=backend.execution_path(model))
