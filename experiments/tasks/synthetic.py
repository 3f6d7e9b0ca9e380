"""Synthetic tasks with a known answer and a trivial baseline."""

from __future__ import annotations

import math

import numpy as np

from experiments.errors import UserError
from experiments.spec.common import HeadSpec
from experiments.tasks.base import Split, TaskData, register_task
from experiments.tasks.prep import pad_sequences


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


def _constant_lengths(n: int, seq_len: int) -> np.ndarray:
    return np.full(n, seq_len, dtype=np.int64)


def _one_hot(tokens: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((*tokens.shape, size))
    np.put_along_axis(out, tokens[..., None], 1.0, axis=-1)
    return out


def _require(field: str, ok: bool, problem: str) -> None:
    if not ok:
        raise UserError(field, problem)


@register_task("copy_memory")
def copy_memory(
    seed: int = 0,
    seq_len: int = 60,
    n_symbols: int = 8,
    n_copy: int = 10,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
) -> TaskData:
    """Copy memory (Arjovsky et al.): ``n_copy`` symbols from 1..n_symbols, then blanks (0), a
    delimiter (n_symbols + 1) ``n_copy`` steps before the end, and the model must emit the
    symbols over the last ``n_copy`` steps. Per-step classification over ``n_symbols + 2``
    classes; every step is scored (blank targets elsewhere). The delay between a symbol and its
    recall is ``seq_len - n_copy``. Baseline: always "blank", accuracy (T - K) / T; solved
    means at least 99% of the recall steps right as well."""
    _require("seq_len", seq_len >= 2 * n_copy + 1, f"copy_memory needs seq_len >= {2 * n_copy + 1}")
    rng = np.random.default_rng(seed)
    classes = n_symbols + 2
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        symbols = rng.integers(1, n_symbols + 1, size=(n, n_copy))
        tokens = np.zeros((n, seq_len), dtype=np.int64)
        tokens[:, :n_copy] = symbols
        tokens[:, seq_len - n_copy - 1] = n_symbols + 1
        y = np.zeros((n, seq_len), dtype=np.int64)
        y[:, seq_len - n_copy :] = symbols
        splits.append(Split(x=_one_hot(tokens, classes), lengths=_constant_lengths(n, seq_len), y=y))
    train, val, test = splits
    blank = (seq_len - n_copy) / seq_len
    return TaskData(
        name="copy_memory",
        train=train,
        val=val,
        test=test,
        input_size=classes,
        head=HeadSpec(kind="per_step_classify", out_size=classes),
        metric="accuracy",
        baseline=float((val.y == 0).mean()),
        threshold=blank + 0.99 * (1 - blank),
        info={"seq_len": seq_len, "n_symbols": n_symbols, "n_copy": n_copy, "delay": seq_len - n_copy},
    )


@register_task("delayed_recall")
def delayed_recall(
    seed: int = 0,
    seq_len: int = 50,
    n_classes: int = 4,
    distance: int | None = None,
    truncate: int | None = None,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
) -> TaskData:
    """Delayed recall: every step carries a one-hot symbol from ``n_classes``; one step, the cue,
    is flagged on an extra channel, and its symbol is the label. The cue sits ``distance`` steps
    before the last one (default ``seq_len - 1``: the first token, "first-token classification"),
    so a model that reads its final state must carry it over ``distance`` steps of distractors.
    ``truncate`` keeps only the most recent ``truncate`` steps (claim L11): a cue further back is
    cut off and the task falls to chance. Baseline: the majority class, about 1 / n_classes."""
    distance = seq_len - 1 if distance is None else distance
    _require("distance", 0 <= distance < seq_len, f"distance must lie in [0, {seq_len - 1}], got {distance}")
    _require("n_classes", n_classes >= 2, "delayed_recall needs n_classes >= 2")
    rng = np.random.default_rng(seed)
    cue_at = seq_len - 1 - distance
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        tokens = rng.integers(0, n_classes, size=(n, seq_len))
        labels = tokens[:, cue_at].copy()
        start = seq_len - truncate if truncate is not None and truncate < seq_len else 0
        x = _one_hot(tokens[:, start:], n_classes + 1)  # the last channel (the cue flag) is never a token
        if cue_at >= start:
            x[:, cue_at - start, -1] = 1.0
        splits.append(Split(x=x, lengths=_constant_lengths(n, x.shape[1]), y=labels))
    train, val, test = splits
    majority = np.bincount(train.y, minlength=n_classes).argmax()
    return TaskData(
        name="delayed_recall",
        train=train,
        val=val,
        test=test,
        input_size=n_classes + 1,
        head=HeadSpec(kind="classify", out_size=n_classes),
        metric="accuracy",
        baseline=float((val.y == majority).mean()),
        threshold=0.95,
        info={
            "seq_len": seq_len,
            "distance": distance,
            "truncate": truncate,
            "cue_kept": truncate is None or distance < truncate,
            "chance": 1.0 / n_classes,
        },
    )


@register_task("evidence")
def evidence(
    seed: int = 0,
    seq_len: int = 50,
    snr: float = 0.15,
    n_train: int = 2000,
    n_val: int = 1000,
    n_test: int = 1000,
) -> TaskData:
    """Evidence accumulation (claim L9 needs a task where more context can help): a label
    y in {0, 1} and one input channel x_t = snr * (2y - 1) + N(0, 1) at every step. Every step adds
    information: the Bayes-optimal rule sign(sum_t x_t) is right with probability
    Phi(snr * sqrt(T)) (``info["bayes_accuracy"]``; 0.68 at T=10, 0.93 at T=100, 0.9996 at T=500
    for snr 0.15), so a model's accuracy *can* keep rising with T. Solved: within 0.05 of Bayes."""
    _require("snr", snr > 0, f"snr must be > 0, got {snr}")
    rng = np.random.default_rng(seed)
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        y = rng.integers(0, 2, size=n)
        x = snr * (2.0 * y - 1.0)[:, None] + rng.standard_normal((n, seq_len))
        splits.append(Split(x=x[..., None], lengths=_constant_lengths(n, seq_len), y=y))
    train, val, test = splits
    bayes = float(0.5 * (1.0 + math.erf(snr * math.sqrt(seq_len) / math.sqrt(2.0))))
    majority = np.bincount(train.y, minlength=2).argmax()
    return TaskData(
        name="evidence",
        train=train,
        val=val,
        test=test,
        input_size=1,
        head=HeadSpec(kind="classify", out_size=2),
        metric="accuracy",
        baseline=float((val.y == majority).mean()),
        threshold=bayes - 0.05,
        info={"seq_len": seq_len, "snr": snr, "bayes_accuracy": bayes},
    )


@register_task("early_late")
def early_late(
    seed: int = 0,
    seq_len: int = 50,
    n_symbols: int = 3,
    window: int = 5,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
) -> TaskData:
    """Two cues, one early and one late (claim L5): every step carries a one-hot distractor symbol;
    a flagged cue in the first ``window`` steps and another in the last ``window`` steps each carry
    a class from ``n_symbols``, and the label is the pair (early * n_symbols + late). Every model
    that reads the whole sequence can reach 1.0, so no gap is built in; a unidirectional model
    must carry the early cue over about T steps while a bidirectional one meets each cue near one
    of its two final states. Baseline: the majority pair, about 1 / n_symbols**2."""
    _require("window", 1 <= window <= seq_len // 2, f"window must lie in [1, {seq_len // 2}]")
    _require("n_symbols", n_symbols >= 2, "early_late needs n_symbols >= 2")
    rng = np.random.default_rng(seed)
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        tokens = rng.integers(0, n_symbols, size=(n, seq_len))
        first = rng.integers(0, window, size=n)
        last = seq_len - 1 - rng.integers(0, window, size=n)
        x = _one_hot(tokens, n_symbols + 1)  # the last channel flags the two cues
        rows = np.arange(n)
        x[rows, first, -1] = 1.0
        x[rows, last, -1] = 1.0
        y = tokens[rows, first] * n_symbols + tokens[rows, last]
        splits.append(Split(x=x, lengths=_constant_lengths(n, seq_len), y=y))
    train, val, test = splits
    classes = n_symbols * n_symbols
    majority = np.bincount(train.y, minlength=classes).argmax()
    return TaskData(
        name="early_late",
        train=train,
        val=val,
        test=test,
        input_size=n_symbols + 1,
        head=HeadSpec(kind="classify", out_size=classes),
        metric="accuracy",
        baseline=float((val.y == majority).mean()),
        threshold=0.95,
        info={"seq_len": seq_len, "n_symbols": n_symbols, "window": window},
    )


@register_task("window_majority")
def window_majority(
    seed: int = 0,
    seq_len: int = 50,
    future: int = 1,
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
) -> TaskData:
    """A tagging task where future context helps (claims L5, T2): random bits a_t, and the label at
    step t is the majority of (a_{t-1}, a_t, a_{t+future}) (a missing neighbour counts as 0).
    A causal model knows a_{t-1} and a_t: when they agree the label is fixed, otherwise it is a
    coin flip, so its best accuracy is about 0.75 (``info["causal_ceiling"]``, computed exactly
    on val); a bidirectional model can reach 1.0. Per-step classification, baseline the majority."""
    _require("future", 1 <= future < seq_len, f"future must lie in [1, {seq_len - 1}]")
    rng = np.random.default_rng(seed)
    splits, ceilings = [], []
    for n in _split_sizes(n_train, n_val, n_test):
        bits = rng.integers(0, 2, size=(n, seq_len))
        prev = np.concatenate([np.zeros((n, 1), dtype=np.int64), bits[:, :-1]], axis=1)
        nxt = np.concatenate([bits[:, future:], np.zeros((n, future), dtype=np.int64)], axis=1)
        y = ((prev + bits + nxt) >= 2).astype(np.int64)
        # The causal optimum: the label when a_{t-1} == a_t, else the better guess given the
        # future bit is unknown (1/2 each way, except where the future step is missing: 0).
        known = prev == bits
        future_exists = np.arange(seq_len)[None, :] + future < seq_len
        causal_right = np.where(known, 1.0, np.where(future_exists, 0.5, 1.0))
        ceilings.append(float(causal_right.mean()))
        splits.append(Split(x=_one_hot(bits, 2), lengths=_constant_lengths(n, seq_len), y=y))
    train, val, test = splits
    majority = np.bincount(train.y.reshape(-1), minlength=2).argmax()
    return TaskData(
        name="window_majority",
        train=train,
        val=val,
        test=test,
        input_size=2,
        head=HeadSpec(kind="per_step_classify", out_size=2),
        metric="accuracy",
        baseline=float((val.y == majority).mean()),
        threshold=0.95,
        info={"seq_len": seq_len, "future": future, "causal_ceiling": ceilings[1]},
    )


@register_task("ar_forecast")
def ar_forecast(
    seed: int = 0,
    seq_len: int = 50,
    phi: float = 0.9,
    n_train: int = 1000,
    n_val: int = 250,
    n_test: int = 250,
) -> TaskData:
    """Per-step one-step-ahead forecasting of a stationary AR(1) process x_{t+1} = phi x_t + e,
    unit variance, e ~ N(0, 1 - phi^2). The target at step t is x_{t+1}. Any forecaster that sees
    only x_0..x_t has MSE >= 1 - phi^2 (``info["noise_floor"]``); a model whose output at t reads
    x_{t+1} (a bidirectional one) can go below it: the future leaks (claim L5). Baseline: the
    train mean, MSE about 1."""
    _require("phi", -1.0 < phi < 1.0, f"phi must lie in (-1, 1) for a stationary process, got {phi}")
    rng = np.random.default_rng(seed)
    sd = float(np.sqrt(1.0 - phi**2))
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        series = np.zeros((n, seq_len + 1))
        series[:, 0] = rng.normal(0.0, 1.0, size=n)
        noise = rng.normal(0.0, sd, size=(n, seq_len))
        for t in range(seq_len):
            series[:, t + 1] = phi * series[:, t] + noise[:, t]
        x, y = series[:, :-1, None], series[:, 1:, None]
        splits.append(Split(x=x, lengths=_constant_lengths(n, seq_len), y=y))
    train, val, test = splits
    baseline = float(((val.y - train.y.mean()) ** 2).mean())
    return TaskData(
        name="ar_forecast",
        train=train,
        val=val,
        test=test,
        input_size=1,
        head=HeadSpec(kind="per_step_regress", out_size=1),
        metric="mse",
        baseline=baseline,
        threshold=None,
        info={"seq_len": seq_len, "phi": phi, "noise_floor": sd**2},
    )


@register_task("varlen_sum")
def varlen_sum(
    seed: int = 0,
    seq_len: int = 50,
    min_len: int | None = None,
    last_k: int = 3,
    padding: str = "masked",
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 500,
) -> TaskData:
    """Variable-length classification (claim L10): lengths L ~ U[min_len, seq_len] (default
    min_len = seq_len // 5), x_t ~ N(0, 1) on one channel, label 1 when the last ``last_k`` valid
    values sum to > 0. The signal sits at each sequence's end: a model that reads its final state
    finds it there with pre-padding or masking, and must carry it across up to seq_len - L zero
    pads with post-padding. Baseline: the majority class (about 0.5)."""
    min_len = max(last_k, seq_len // 5) if min_len is None else min_len
    _require("min_len", last_k <= min_len <= seq_len, f"need last_k <= min_len <= seq_len, got {min_len}")
    rng = np.random.default_rng(seed)
    splits = []
    for n in _split_sizes(n_train, n_val, n_test):
        lens = rng.integers(min_len, seq_len + 1, size=n)
        seqs = [rng.normal(0.0, 1.0, size=(int(length), 1)) for length in lens]
        y = np.array([int(s[-last_k:].sum() > 0) for s in seqs], dtype=np.int64)
        x, lengths = pad_sequences(seqs, padding, seq_len)
        splits.append(Split(x=x, lengths=lengths, y=y))
    train, val, test = splits
    majority = np.bincount(train.y, minlength=2).argmax()
    return TaskData(
        name="varlen_sum",
        train=train,
        val=val,
        test=test,
        input_size=1,
        head=HeadSpec(kind="classify", out_size=2),
        metric="accuracy",
        baseline=float((val.y == majority).mean()),
        threshold=0.95,
        info={"seq_len": seq_len, "min_len": min_len, "last_k": last_k, "padding": padding},
    )
