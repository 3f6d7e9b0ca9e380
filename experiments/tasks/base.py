"""The task contract: seeded NumPy data with splits, a head, a metric and a trivial baseline.

A task is a function ``make(seed, **params) -> TaskData`` registered under a name
with ``@register_task``. It imports no framework. The driver's train cells and
the claims reach tasks only through ``load_task``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from experiments.backend import Batch
from experiments.errors import UserError
from experiments.spec.common import HeadSpec

Metric = Literal["accuracy", "mse"]


@dataclass
class Split:
    """N sequences: ``x`` (N, T, I) float64, ``lengths`` (N,) int64, ``y`` by head kind."""

    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(self, index: np.ndarray) -> Batch:
        return Batch(x=self.x[index], lengths=self.lengths[index], y=self.y[index])

    def batches(self, batch_size: int) -> list[Batch]:
        """In order, the last one possibly short: for evaluation."""
        return [self.batch(np.arange(i, min(i + batch_size, len(self)))) for i in range(0, len(self), batch_size)]


@dataclass
class TaskData:
    name: str
    train: Split
    val: Split
    test: Split
    input_size: int
    head: HeadSpec
    metric: Metric
    baseline: float  # the trivial baseline's metric on ``val`` (majority class, mean predictor...)
    threshold: float | None = None  # "solved" level for steps_to_threshold
    info: dict[str, Any] = field(default_factory=dict)  # params, provenance (real data set name...)

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    @property
    def seq_len(self) -> int:
        return int(self.train.x.shape[1])


TaskFactory = Callable[..., TaskData]
_TASKS: dict[str, TaskFactory] = {}


def register_task(name: str) -> Callable[[TaskFactory], TaskFactory]:
    def wrap(fn: TaskFactory) -> TaskFactory:
        if name in _TASKS:
            raise ValueError(f"task {name!r} registered twice")
        _TASKS[name] = fn
        return fn

    return wrap


def task_names() -> list[str]:
    return sorted(_TASKS)


def task_summary(name: str) -> str:
    """The first paragraph of a task's docstring, on one line."""
    doc = (_TASKS[name].__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def load_task(name: str, seed: int = 0, **params: Any) -> TaskData:
    if name not in _TASKS:
        raise UserError("task", f"unknown task {name!r}", f"use one of {', '.join(task_names())}")
    try:
        return _TASKS[name](seed=seed, **params)
    except TypeError as exc:  # an unknown keyword reaches here
        raise UserError("task", f"bad parameters for {name!r}: {exc}") from exc


def evaluate(metric: Metric, head: HeadSpec, logits: np.ndarray, batch: Batch) -> tuple[float, int]:
    """Sum of the metric over the batch's scored items, and their count (for a weighted mean)."""
    y = batch.y
    if head.per_step:
        mask = batch.mask
        if metric == "accuracy":
            hits = (logits.argmax(-1) == y) & mask
            return float(hits.sum()), int(mask.sum())
        err = ((logits - y) ** 2).mean(-1)
        return float((err * mask).sum()), int(mask.sum())
    if metric == "accuracy":
        return float((logits.argmax(-1) == y).sum()), len(y)
    return float(((logits - y) ** 2).mean(-1).sum()), len(y)


def task_loss(head: HeadSpec, logits: np.ndarray, batch: Batch) -> tuple[float, int]:
    """Sum of the training loss over the batch's scored items, and their count: cross-entropy in
    nats for a classification head (per step for a per-step head, padded steps excluded), squared
    error averaged over outputs for a regression head. Bai et al. (2018) report copy memory in
    this unit: the cross-entropy per step averaged over every step of the sequence."""
    y = batch.y
    if head.is_classification:
        z = logits - logits.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        nll = -np.take_along_axis(logp, y[..., None].astype(np.int64), axis=-1)[..., 0]  # (B,) or (B, T)
        if head.per_step:
            mask = batch.mask
            return float((nll * mask).sum()), int(mask.sum())
        return float(nll.sum()), len(y)
    if head.per_step:
        err = ((logits - y) ** 2).mean(-1)
        return float((err * batch.mask).sum()), int(batch.mask.sum())
    return float(((logits - y) ** 2).mean(-1).sum()), len(y)
