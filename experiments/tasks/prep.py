"""Preprocessing shared by the tasks: normalisation fitted on the train split, padding, baselines.

Two task parameters every real task (and the variable-length synthetic one) takes:

- ``normalize``: ``none`` | ``mean`` (subtract the mean) | ``minmax`` (to [0, 1]) |
  ``zscore`` (zero mean, unit variance). Statistics are per input channel, over the
  valid steps of the **train split only** (claim L12); val and test reuse them.
- ``padding``: ``post`` | ``pre`` | ``masked`` (claim L10). Variable-length sequences
  are laid out in a (N, T, I) array with zeros at the pads:

  - ``post``: values at steps [0, L), zeros after, and ``lengths = T``: the model
    runs over the pads and reads its state after them (Keras' default without masking);
  - ``pre``: zeros at steps [0, T - L), values after, ``lengths = T``;
  - ``masked``: as ``post``, but ``lengths = L``: the model stops at each sequence's end.

  Pads are zeros in the normalised space (inserted after normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.errors import UserError
from experiments.spec.common import HeadSpec

Normalize = Literal["none", "mean", "minmax", "zscore"]
Padding = Literal["post", "pre", "masked"]
NORMALIZE: tuple[str, ...] = ("none", "mean", "minmax", "zscore")
PADDING: tuple[str, ...] = ("post", "pre", "masked")


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(field, f"unknown value {value!r}", f"use one of {', '.join(choices)}")


@dataclass(frozen=True)
class Scaler:
    """An affine per-channel map x -> (x - shift) / scale, fitted on the train split."""

    mode: str
    shift: np.ndarray  # (I,)
    scale: np.ndarray  # (I,)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.shift) / self.scale

    def invert(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale + self.shift


def fit_scaler(mode: str, train_values: np.ndarray) -> Scaler:
    """``train_values``: (M, I), every valid step of every train sequence, one row each."""
    check_choice("normalize", mode, NORMALIZE)
    channels = train_values.shape[-1]
    shift, scale = np.zeros(channels), np.ones(channels)
    if mode == "mean":
        shift = train_values.mean(axis=0)
    elif mode == "minmax":
        lo, hi = train_values.min(axis=0), train_values.max(axis=0)
        shift, scale = lo, np.where(hi > lo, hi - lo, 1.0)
    elif mode == "zscore":
        sd = train_values.std(axis=0)
        shift, scale = train_values.mean(axis=0), np.where(sd > 0, sd, 1.0)
    return Scaler(mode=mode, shift=np.asarray(shift, float), scale=np.asarray(scale, float))


def pad_sequences(seqs: list[np.ndarray], padding: str, seq_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``seqs``: list of (L_i, I) arrays. Returns x (N, T, I) and the lengths the model runs over.

    Sequences longer than ``seq_len`` keep their most recent ``seq_len`` steps.
    """
    check_choice("padding", padding, PADDING)
    seqs = [s if s.ndim == 2 else s[:, None] for s in seqs]
    t = seq_len or max(len(s) for s in seqs)
    n, channels = len(seqs), seqs[0].shape[1]
    x = np.zeros((n, t, channels))
    true_len = np.zeros(n, dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-t:]
        true_len[i] = len(s)
        if padding == "pre":
            x[i, t - len(s) :] = s
        else:
            x[i, : len(s)] = s
    lengths = true_len if padding == "masked" else np.full(n, t, dtype=np.int64)
    return x, lengths


def valid_rows(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(M, I): the valid steps of a (N, T, I) array, stacked."""
    mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
    return x[mask]


def trivial_baseline(head: HeadSpec, metric: str, y_train: np.ndarray, y_val: np.ndarray, val_mask=None) -> float:
    """The metric of a model that ignores its input, fitted on train and scored on val:
    the majority class (accuracy) or the train mean (MSE)."""
    if metric == "accuracy":
        train_labels = y_train.reshape(-1)
        majority = np.bincount(train_labels.astype(np.int64), minlength=head.out_size).argmax()
        hits = y_val == majority
        if val_mask is not None:
            return float(hits[val_mask].mean())
        return float(hits.mean())
    if head.per_step:
        mean = y_train.reshape(-1, y_train.shape[-1]).mean(axis=0)
        err = ((y_val - mean) ** 2).mean(-1)
        return float(err[val_mask].mean() if val_mask is not None else err.mean())
    mean = y_train.mean(axis=0)
    return float(((y_val - mean) ** 2).mean())


def split_indices(n: int, fractions: tuple[float, float], rng: np.random.Generator, labels=None) -> list[np.ndarray]:
    """Seeded train/val/test indices; stratified by ``labels`` when given (every class in every split
    when it has >= 3 members)."""
    f_train, f_val = fractions
    if labels is None:
        perm = rng.permutation(n)
        a, b = round(n * f_train), round(n * (f_train + f_val))
        return [np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])]
    parts: list[list[int]] = [[], [], []]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        m = len(idx)
        f_test = 1.0 - f_train - f_val
        n_val = max(1, round(m * f_val)) if m >= 3 and f_val > 0 else 0
        n_test = max(1, round(m * f_test)) if m >= 3 and f_test > 1e-9 else 0
        n_train = m - n_val - n_test
        parts[0] += idx[:n_train].tolist()
        parts[1] += idx[n_train : n_train + n_val].tolist()
        parts[2] += idx[n_train + n_val :].tolist()
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
