"""Tasks: shapes and dtypes by head kind, seeding, known answers, train-only normalisation, padding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.errors import UserError
from experiments.tasks import evaluate, load_task, task_names
from experiments.tasks.prep import fit_scaler, pad_sequences, split_indices, valid_rows

SMALL = {"n_train": 64, "n_val": 32, "n_test": 32}
CASES: dict[str, dict] = {
    "adding": {"seq_len": 20, **SMALL},
    "copy_memory": {"seq_len": 30, "n_copy": 5, **SMALL},
    "delayed_recall": {"seq_len": 20, **SMALL},
    "window_majority": {"seq_len": 20, **SMALL},
    "ar_forecast": {"seq_len": 20, **SMALL},
    "varlen_sum": {"seq_len": 20, **SMALL},
    "ucr": {"dataset": "GunPoint"},
    "forecast": {"series": "sunspots", "seq_len": 12},
    "digits": {"steps": 8},
    "evidence": {"seq_len": 20, **SMALL},
    "early_late": {"seq_len": 20, **SMALL},
}


def test_every_task_has_a_case() -> None:
    assert sorted(CASES) == task_names()


@pytest.mark.parametrize("name", sorted(CASES))
def test_task_contract(name: str) -> None:
    data = load_task(name, seed=3, **CASES[name])
    for split in (data.train, data.val, data.test):
        n, t, i = split.x.shape
        assert n == len(split) > 0
        assert split.x.dtype == np.float64 and i == data.input_size and t == data.seq_len
        assert split.lengths.dtype == np.int64 and split.lengths.shape == (n,)
        assert (split.lengths >= 1).all() and (split.lengths <= t).all()
        assert np.isfinite(split.x).all()
        head = data.head
        if head.kind == "classify":
            assert split.y.shape == (n,) and split.y.dtype == np.int64
            assert split.y.min() >= 0 and split.y.max() < head.out_size
        elif head.kind == "regress":
            assert split.y.shape == (n, head.out_size)
        elif head.kind == "per_step_classify":
            assert split.y.shape == (n, t) and split.y.dtype == np.int64 and split.y.max() < head.out_size
        else:
            assert split.y.shape == (n, t, head.out_size)
    if data.metric == "accuracy":
        assert 0.0 <= data.baseline <= 1.0
    else:
        assert data.baseline > 0
    # the trivial baseline is what evaluate gives a constant predictor of the train majority / mean
    batch = data.val.batch(np.arange(len(data.val)))
    if data.metric == "accuracy":
        majority = np.bincount(data.train.y.reshape(-1), minlength=data.head.out_size).argmax()
        shape = (*batch.y.shape, data.head.out_size)
        logits = np.zeros(shape)
        logits[..., majority] = 1.0
    else:
        logits = np.broadcast_to(data.train.y.reshape(-1, data.head.out_size).mean(0), batch.y.shape).copy()
    total, count = evaluate(data.metric, data.head, logits, batch)
    assert total / count == pytest.approx(data.baseline, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    "name", ["adding", "copy_memory", "delayed_recall", "window_majority", "ar_forecast", "varlen_sum"]
)
def test_synthetic_tasks_are_seeded(name: str) -> None:
    a, b, c = (load_task(name, seed=s, **CASES[name]) for s in (1, 1, 2))
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.val.y, b.val.y)
    assert not np.array_equal(a.train.x, c.train.x)


def test_real_splits_are_seeded_and_disjoint() -> None:
    a, b, c = (load_task("ucr", seed=s, dataset="ItalyPowerDemand") for s in (1, 1, 2))
    assert np.array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.train.x, c.train.x)
    rows = [tuple(np.round(s.x[i, :, 0], 12)) for s in (a.train, a.val, a.test) for i in range(len(s))]
    assert len(a.train) + len(a.val) + len(a.test) == 67 + 1029
    assert len(set(rows)) >= 0.99 * len(rows)  # (the archive has a handful of exact duplicates)


def test_adding_known_answer() -> None:
    d = load_task("adding", seed=0, **CASES["adding"])
    x = d.train.x
    assert (x[:, :, 1].sum(1) == 2).all()
    np.testing.assert_allclose(d.train.y[:, 0], (x[:, :, 0] * x[:, :, 1]).sum(1))


def test_copy_memory_known_answer() -> None:
    d = load_task("copy_memory", seed=0, seq_len=30, n_copy=5, n_symbols=6, **SMALL)
    tokens = d.train.x.argmax(-1)
    np.testing.assert_array_equal(d.train.y[:, -5:], tokens[:, :5])
    assert (d.train.y[:, :-5] == 0).all()
    assert (tokens[:, 30 - 5 - 1] == 7).all()  # the delimiter
    assert d.baseline == pytest.approx(25 / 30)


def test_delayed_recall_cue_and_truncation() -> None:
    d = load_task("delayed_recall", seed=0, seq_len=40, distance=10, **SMALL)
    flag = d.train.x[:, :, -1]
    assert (flag.sum(1) == 1).all() and (flag.argmax(1) == 40 - 1 - 10).all()
    np.testing.assert_array_equal(d.train.y, d.train.x[:, 29, :-1].argmax(-1))
    cut = load_task("delayed_recall", seed=0, seq_len=40, distance=30, truncate=20, **SMALL)
    assert cut.seq_len == 20 and cut.train.x[:, :, -1].sum() == 0 and not cut.info["cue_kept"]
    kept = load_task("delayed_recall", seed=0, seq_len=40, distance=10, truncate=20, **SMALL)
    assert (kept.train.x[:, :, -1].sum(1) == 1).all() and kept.info["cue_kept"]
    first = load_task("delayed_recall", seed=0, seq_len=40, **SMALL)
    assert (first.train.x[:, 0, -1] == 1).all()  # default: the first token


def test_window_majority_needs_the_future() -> None:
    d = load_task("window_majority", seed=0, seq_len=50, n_train=400, n_val=400, n_test=10)
    bits = d.val.x.argmax(-1)
    prev = np.pad(bits, ((0, 0), (1, 0)))[:, :-1]
    nxt = np.pad(bits, ((0, 0), (0, 1)))[:, 1:]
    np.testing.assert_array_equal(d.val.y, (prev + bits + nxt >= 2).astype(int))
    assert d.info["causal_ceiling"] == pytest.approx(0.75, abs=0.02)
    # the causal rule (prev when prev == now, else a guess) scores about the ceiling; the oracle scores 1
    causal = np.where(prev == bits, bits, 0)
    assert (causal == d.val.y).mean() == pytest.approx(d.info["causal_ceiling"], abs=0.02)


def test_ar_forecast_targets_and_floor() -> None:
    d = load_task("ar_forecast", seed=0, seq_len=60, phi=0.8, n_train=2000, n_val=10, n_test=10)
    np.testing.assert_array_equal(d.train.y[:, :-1, 0], d.train.x[:, 1:, 0])
    resid = d.train.y[:, :, 0] - 0.8 * d.train.x[:, :, 0]
    assert resid.var() == pytest.approx(d.info["noise_floor"], rel=0.05)
    assert d.info["noise_floor"] == pytest.approx(1 - 0.8**2)


@pytest.mark.parametrize("padding", ["post", "pre", "masked"])
def test_varlen_padding_layouts(padding: str) -> None:
    d = load_task("varlen_sum", seed=0, seq_len=30, padding=padding, **SMALL)
    ref = load_task("varlen_sum", seed=0, seq_len=30, padding="masked", **SMALL)
    np.testing.assert_array_equal(d.train.y, ref.train.y)  # same sequences whatever the layout
    true_len = ref.train.lengths
    for i in range(len(d.train)):
        length = true_len[i]
        seq = ref.train.x[i, :length]
        if padding == "pre":
            np.testing.assert_array_equal(d.train.x[i, 30 - length :], seq)
            assert (d.train.x[i, : 30 - length] == 0).all()
        else:
            np.testing.assert_array_equal(d.train.x[i, :length], seq)
            assert (d.train.x[i, length:] == 0).all()
        assert d.train.y[i] == int(seq[-3:].sum() > 0)
    if padding == "masked":
        assert true_len.min() < 30
    else:
        assert (d.train.lengths == 30).all()


def test_pad_sequences_truncates_to_most_recent() -> None:
    seqs = [np.arange(5.0)[:, None], np.arange(3.0)[:, None]]
    x, lengths = pad_sequences(seqs, "masked", 4)
    np.testing.assert_array_equal(x[0, :, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(x[1, :, 0], [0, 1, 2, 0])
    np.testing.assert_array_equal(lengths, [4, 3])
    with pytest.raises(UserError):
        pad_sequences(seqs, "middle")


@settings(max_examples=30, deadline=None)
@given(
    mode=st.sampled_from(["none", "mean", "minmax", "zscore"]), shift=st.floats(-500, 500), scale=st.floats(0.01, 100)
)
def test_scalers_fit_train_only(mode: str, shift: float, scale: float) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(shift, scale, size=(200, 3))
    other = rng.normal(shift + 3 * scale, scale, size=(50, 3))
    scaler = fit_scaler(mode, train)
    t, o = scaler.apply(train), scaler.apply(other)
    if mode == "minmax":
        assert t.min() == pytest.approx(0.0, abs=1e-9) and t.max() == pytest.approx(1.0, abs=1e-9)
        assert o.max() > 1.0  # val beyond the train range stays beyond it: no peeking
    elif mode == "zscore":
        np.testing.assert_allclose(t.mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(t.std(0), 1, atol=1e-9)
    elif mode == "mean":
        np.testing.assert_allclose(t.mean(0), 0, atol=1e-7 * max(1, abs(shift)))
        np.testing.assert_allclose(t.std(0), train.std(0))
    else:
        np.testing.assert_array_equal(t, train)
    np.testing.assert_allclose(scaler.invert(o), other, rtol=1e-9, atol=1e-9 * max(1.0, abs(shift)))


def test_split_indices_stratified_partition() -> None:
    labels = np.repeat(np.arange(4), [10, 20, 30, 3])
    parts = split_indices(len(labels), (0.6, 0.2), np.random.default_rng(0), labels=labels)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(labels)))
    for part in parts:
        assert set(labels[part]) == {0, 1, 2, 3}


def test_japanese_vowels_variable_length_and_train_only_normalisation() -> None:
    post = load_task("ucr", seed=0, dataset="JapaneseVowels", padding="post", normalize="zscore")
    masked = load_task("ucr", seed=0, dataset="JapaneseVowels", padding="masked", normalize="zscore")
    assert post.input_size == 12 and post.head.out_size == 9
    assert masked.info["min_len"] == 7 and masked.info["max_len"] == 29
    assert (post.train.lengths == post.seq_len).all() and masked.train.lengths.min() < masked.seq_len
    rows = valid_rows(masked.train.x, masked.train.lengths)
    np.testing.assert_allclose(rows.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(rows.std(0), 1, atol=1e-9)
    val_rows = valid_rows(masked.val.x, masked.val.lengths)
    assert np.abs(val_rows.mean(0)).max() > 1e-6  # fitted on train, not on val
    official = load_task("ucr", seed=0, dataset="JapaneseVowels", split="official")
    assert len(official.test) == 370 and len(official.train) + len(official.val) == 270


def test_forecast_is_chronological_and_causal() -> None:
    d = load_task("forecast", series="co2", seq_len=10, normalize="minmax")
    raw = load_task("forecast", series="co2", seq_len=10, normalize="none")
    scale, shift = d.info["target_scale"], None
    # scaled = (raw - lo) / scale, so raw = scaled * scale + lo: recover lo from one point
    shift = raw.train.y[0, 0] - d.train.y[0, 0] * scale
    np.testing.assert_allclose(d.val.y[:, 0] * scale + shift, raw.val.y[:, 0], rtol=1e-9)
    assert d.train.x.min() >= -1e-12 and d.train.x.max() <= 1 + 1e-12  # minmax fitted on the train segment
    assert d.val.y.max() > 1.0  # co2 rises past the train range
    # every input window is the 10 values just before its target
    np.testing.assert_array_equal(raw.train.x[1:, -1, 0], raw.train.y[:-1, 0])
    np.testing.assert_array_equal(raw.val.x[0, -1, 0], raw.train.y[-1, 0])
    assert d.baseline / d.info["persistence_mse"] > 1  # the mean predictor is the weaker baseline


def test_digits_as_rows_or_pixels() -> None:
    rows = load_task("digits", seed=0, steps=8)
    pixels = load_task("digits", seed=0, steps=64, normalize="minmax")
    assert rows.train.x.shape[1:] == (8, 8) and pixels.train.x.shape[1:] == (64, 1)
    assert rows.train.x.max() == 16 and pixels.train.x.max() <= 1.0
    assert len(rows.train) + len(rows.val) + len(rows.test) == 1797
    assert load_task("digits", seed=0, seq_len=64).seq_len == 64
    with pytest.raises(UserError):
        load_task("digits", seq_len=10)
    small = load_task("digits", seed=0, n_train=50)
    assert len(small.train) == 50 and len(small.val) == len(rows.val)


def test_bad_task_input_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown task"):
        load_task("nope")
    with pytest.raises(UserError):
        load_task("adding", bogus=1)
    with pytest.raises(UserError, match="dataset"):
        load_task("ucr", dataset="NotThere")
    with pytest.raises(UserError, match="normalize"):
        load_task("forecast", normalize="log")
    with pytest.raises(UserError, match="distance"):
        load_task("delayed_recall", seq_len=10, distance=10)
