"""Real data that ships inside installed packages (nothing is downloaded at run time).

- ``ucr``: UCR/UEA classification archives bundled with ``aeon`` (JapaneseVowels is
  variable-length and multivariate; GunPoint, ArrowHead, OSULeaf, ACSF1,
  ItalyPowerDemand, BasicMotions, PickupGestureWiimoteZ are the others on disk).
- ``forecast``: one-step-ahead forecasting on ``statsmodels.datasets`` series cut into
  windows (sunspots, co2, elnino, nile), split chronologically.
- ``digits``: scikit-learn's 8x8 digits read as 8 rows of 8 values or 64 steps of 1.

Each takes ``normalize`` (fitted on the train split only) and, where lengths vary,
``padding``; see ``experiments.tasks.prep``. The packages are imported on first use.
"""

from __future__ import annotations

import functools

import numpy as np

from experiments.errors import UserError
from experiments.spec.common import HeadSpec
from experiments.tasks.base import Split, TaskData, register_task
from experiments.tasks.prep import (
    NORMALIZE,
    check_choice,
    fit_scaler,
    pad_sequences,
    split_indices,
    trivial_baseline,
)

UCR_DATASETS: tuple[str, ...] = (
    "JapaneseVowels",
    "GunPoint",
    "ArrowHead",
    "OSULeaf",
    "ACSF1",
    "ItalyPowerDemand",
    "BasicMotions",
    "PickupGestureWiimoteZ",
)
SERIES: tuple[str, ...] = ("sunspots", "co2", "elnino", "nile")


def _missing(package: str, exc: ImportError) -> UserError:
    return UserError("task", f"{package} is not installed ({exc})", "install the data extra: pip install -e '.[data]'")


def _label_codes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    names = sorted(
        {str(v) for v in labels},
        key=lambda s: (not s.lstrip("-").isdigit(), int(s) if s.lstrip("-").isdigit() else 0, s),
    )
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[str(v)] for v in labels], dtype=np.int64), names


@functools.lru_cache(maxsize=16)
def _ucr_raw(name: str) -> tuple[tuple[np.ndarray, ...], np.ndarray, int]:
    """Every sequence as (L, channels), train then test; labels; the size of the official train split."""
    try:
        from aeon.datasets import load_classification
    except ImportError as exc:
        raise _missing("aeon", exc) from exc
    seqs: list[np.ndarray] = []
    labels: list[str] = []
    n_train = 0
    for split in ("train", "test"):
        x, y = load_classification(name, split=split)
        for item in x:
            seqs.append(np.asarray(item, dtype=np.float64).T)  # aeon: (channels, L)
        labels += [str(v) for v in y]
        if split == "train":
            n_train = len(y)
    return tuple(seqs), np.asarray(labels), n_train


def _block_mean(seq: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return seq
    usable = (len(seq) // factor) * factor
    if usable == 0:
        return seq.mean(axis=0, keepdims=True)
    return seq[:usable].reshape(-1, factor, seq.shape[1]).mean(axis=1)


def _classification_task(
    name: str,
    seqs: list[np.ndarray],
    codes: np.ndarray,
    parts: list[np.ndarray],
    *,
    n_classes: int,
    normalize: str,
    padding: str,
    seq_len: int | None,
    info: dict,
) -> TaskData:
    check_choice("normalize", normalize, NORMALIZE)
    train_rows = np.concatenate([seqs[i] for i in parts[0]], axis=0)
    scaler = fit_scaler(normalize, train_rows)
    t = seq_len or max(len(s) for s in seqs)
    splits = []
    for idx in parts:
        x, lengths = pad_sequences([scaler.apply(seqs[i]) for i in idx], padding, t)
        splits.append(Split(x=x, lengths=lengths, y=codes[idx]))
    train, val, test = splits
    head = HeadSpec(kind="classify", out_size=n_classes)
    lens = np.array([len(s) for s in seqs])
    return TaskData(
        name=name,
        train=train,
        val=val,
        test=test,
        input_size=int(seqs[0].shape[1]),
        head=head,
        metric="accuracy",
        baseline=trivial_baseline(head, "accuracy", train.y, val.y),
        threshold=None,
        info={
            **info,
            "normalize": normalize,
            "padding": padding,
            "seq_len": t,
            "min_len": int(min(lens.min(), t)),
            "max_len": int(min(lens.max(), t)),
            "n_classes": n_classes,
            "sizes": [len(train), len(val), len(test)],
        },
    )


def _subsample(parts: list[np.ndarray], n_train: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    if n_train is None or n_train >= len(parts[0]):
        return parts
    if n_train < 1:
        raise UserError("n_train", f"must be >= 1, got {n_train}")
    keep = np.sort(rng.permutation(parts[0])[:n_train])
    return [keep, parts[1], parts[2]]


@register_task("ucr")
def ucr(
    seed: int = 0,
    dataset: str = "JapaneseVowels",
    split: str = "pooled",
    normalize: str = "zscore",
    padding: str = "masked",
    seq_len: int | None = None,
    downsample: int = 1,
    n_train: int | None = None,
) -> TaskData:
    """A UCR/UEA classification archive from ``aeon``.

    ``split="pooled"`` (default): train and test pooled, then a seeded stratified 60/20/20
    split (the official train splits are tiny: 36 for ArrowHead). ``split="official"``: the
    official test split, val a stratified quarter of the official train split.
    ``seq_len`` keeps the most recent steps of longer sequences (truncation) and pads
    shorter ones; ``downsample`` averages blocks of that many steps first (ACSF1 has 1460).
    ``n_train`` subsamples the train split (small-data claims)."""
    if dataset not in UCR_DATASETS:
        raise UserError("dataset", f"unknown UCR/UEA data set {dataset!r}", f"use one of {', '.join(UCR_DATASETS)}")
    check_choice("split", split, ("pooled", "official"))
    if downsample < 1:
        raise UserError("downsample", f"must be >= 1, got {downsample}")
    raw, labels, n_official = _ucr_raw(dataset)
    seqs = [_block_mean(s, downsample) for s in raw]
    codes, names = _label_codes(labels)
    rng = np.random.default_rng(seed)
    if split == "pooled":
        parts = split_indices(len(seqs), (0.6, 0.2), rng, labels=codes)
    else:
        official = np.arange(n_official)
        tr, va, _ = split_indices(n_official, (0.75, 0.25), rng, labels=codes[:n_official])
        parts = [official[tr], official[va], np.arange(n_official, len(seqs))]
    parts = _subsample(parts, n_train, rng)
    return _classification_task(
        "ucr",
        seqs,
        codes,
        parts,
        n_classes=len(names),
        normalize=normalize,
        padding=padding,
        seq_len=seq_len,
        info={"dataset": dataset, "split": split, "downsample": downsample, "source": "aeon"},
    )


@functools.lru_cache(maxsize=8)
def series_values(name: str) -> np.ndarray:
    try:
        import statsmodels.api as sm
    except ImportError as exc:
        raise _missing("statsmodels", exc) from exc
    if name == "sunspots":
        values = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(float)
    elif name == "co2":
        values = sm.datasets.co2.load_pandas().data["co2"].interpolate(limit_direction="both").to_numpy(float)
    elif name == "elnino":
        values = sm.datasets.elnino.load_pandas().data.drop(columns="YEAR").to_numpy(float).reshape(-1)
    else:
        values = sm.datasets.nile.load_pandas().data["volume"].to_numpy(float)
    return values


@register_task("forecast")
def forecast(
    seed: int = 0,
    series: str = "sunspots",
    seq_len: int = 24,
    horizon: int = 1,
    normalize: str = "zscore",
    fractions: tuple[float, float] = (0.7, 0.15),
    target_normalize: str | None = None,
) -> TaskData:
    """One-step-ahead (``horizon``) forecasting on a ``statsmodels`` series: inputs are the
    ``seq_len`` values before a target. The series is split in time (70/15/15 by default):
    a target belongs to the segment it falls in, and its inputs may reach back into earlier
    segments (never forward). The scaler is fitted on the train segment. The target is scaled by
    ``target_normalize`` (default: alike, with ``normalize``), so a metric is in the target's scaled
    units and ``info["target_scale"]`` converts an MSE back to the raw units (times its square).
    Claim L12 varies the input scaling only: it fixes ``target_normalize`` so that every arm's error
    is in one target scale and no arm is asked to output raw values near 350.
    Baseline: the train mean; ``info["persistence_mse"]`` is the last-value forecast's.
    Deterministic: ``seed`` plays no part."""
    if series not in SERIES:
        raise UserError("series", f"unknown series {series!r}", f"use one of {', '.join(SERIES)}")
    check_choice("normalize", normalize, NORMALIZE)
    target_normalize = normalize if target_normalize is None else target_normalize
    check_choice("target_normalize", target_normalize, NORMALIZE)
    values = series_values(series)
    n = len(values)
    if seq_len < 1 or horizon < 1 or seq_len + horizon >= n * fractions[0]:
        raise UserError("seq_len", f"window {seq_len} + horizon {horizon} does not fit the train part of {series}")
    cut1, cut2 = round(n * fractions[0]), round(n * (fractions[0] + fractions[1]))
    scaler = fit_scaler(normalize, values[:cut1, None])
    scaled = scaler.apply(values[:, None])[:, 0]
    target_scaler = fit_scaler(target_normalize, values[:cut1, None])
    target = target_scaler.apply(values[:, None])[:, 0]
    splits = []
    for lo, hi in ((0, cut1), (cut1, cut2), (cut2, n)):
        targets = np.arange(max(lo, seq_len + horizon - 1), hi)
        starts = targets - horizon - seq_len + 1
        x = np.stack([scaled[s : s + seq_len] for s in starts])[:, :, None]
        y = target[targets][:, None]
        splits.append(Split(x=x, lengths=np.full(len(targets), seq_len, dtype=np.int64), y=y))
    train, val, test = splits
    head = HeadSpec(kind="regress", out_size=1)
    last = target_scaler.apply(scaler.invert(val.x[:, -1, :])) if target_normalize != normalize else val.x[:, -1, :]
    persistence = float(((last - val.y) ** 2).mean())
    return TaskData(
        name="forecast",
        train=train,
        val=val,
        test=test,
        input_size=1,
        head=head,
        metric="mse",
        baseline=trivial_baseline(head, "mse", train.y, val.y),
        threshold=None,
        info={
            "series": series,
            "seq_len": seq_len,
            "horizon": horizon,
            "normalize": normalize,
            "target_normalize": target_normalize,
            "target_scale": float(target_scaler.scale[0]),
            "persistence_mse": persistence,
            "sizes": [len(train), len(val), len(test)],
            "source": "statsmodels",
        },
    )


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise _missing("scikit-learn", exc) from exc
    data = load_digits()
    return np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)


@register_task("digits")
def digits(
    seed: int = 0,
    steps: int = 8,
    normalize: str = "none",
    n_train: int | None = None,
    seq_len: int | None = None,
) -> TaskData:
    """scikit-learn's 8x8 digits (1797 images, values 0..16) as sequences: ``steps=8`` reads
    one row of 8 pixels per step, ``steps=64`` one pixel per step (``seq_len``, when a grid sets
    it, is the same choice). 10 classes; a seeded stratified 60/20/20 split; ``n_train``
    subsamples train."""
    if seq_len is not None:
        if seq_len != steps and steps != 8:
            raise UserError("seq_len", f"seq_len={seq_len} contradicts steps={steps}", "set one of them")
        steps = seq_len
    if steps not in (8, 64):
        raise UserError("steps", f"must be 8 or 64, got {steps}")
    images, labels = _digits_raw()
    seqs = [img.reshape(steps, 64 // steps) for img in images]
    rng = np.random.default_rng(seed)
    parts = _subsample(split_indices(len(seqs), (0.6, 0.2), rng, labels=labels), n_train, rng)
    return _classification_task(
        "digits",
        seqs,
        labels,
        parts,
        n_classes=10,
        normalize=normalize,
        padding="masked",
        seq_len=steps,
        info={"steps": steps, "source": "scikit-learn"},
    )
