"""Synthetic tasks with a known answer and a trivial baseline."""

from __future__ import annotations

import numpy as np

from experiments.spec.common import HeadSpec
from experiments.tasks.base import Split, TaskData, register_task


def _split_sizes(n_train: int, n_val: int, n_test: int) -> list[int]:
    return [n_train, n_val, n_test]


@register_task("adding")
def adding_problem(
    seed: int = 0, seq_len: int = 50, n_train: int = 2000, n_val: int = 500, n_test: int = 500
) -> TaskData:
    """Hochreiter & Schmidhuber's adding problem: channel 0 holds U(0, 1) values,
    channel 1 marks two positions (one in each half); the target is the sum of the
    two marked values. Baseline: predicting the mean sum (1.0) gives MSE ~ 1/6."""
    rng = np.random.default_rng(seed)
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        values = rng.uniform(0.0, 1.0, size=(n, seq_len))
        marks = np.zeros((n, seq_len))
        half = max(seq_len // 2, 1)
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, seq_len, size=n) if seq_len > 1 else first
        marks[np.arange(n), first] = 1.0
        marks[np.arange(n), second] = 1.0
        x = np.stack([values, marks], axis=-1)
        y = (values * marks).sum(axis=1, keepdims=True)
        splits.append(Split(x=x, lengths=np.full(n, seq_len, dtype=np.int64), y=y))
    train, val, test = splits
    baseline = float(((val.y - train.y.mean()) ** 2).mean())
    return TaskData(
        name="adding",
        train=train,
        val=val,
        test=test,
        input_size=2,
        head=HeadSpec(kind="regress", out_size=1),
        metric="mse",
        baseline=baseline,
        threshold=0.01,
        info={"seq_len": seq_len},
    )
