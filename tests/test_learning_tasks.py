"""What the fair learning experiments added to tasks and cells: the evidence and early_late tasks, forecast's
target_normalize, task_loss, the train cell's stop_at_threshold and relative_threshold, and the grad_flow
probe's reproduction of the source's batch_first mistake."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _driver_helpers import BACKEND as FAKE
from _driver_helpers import use_fake, write_grid

from experiments.backend import Batch
from experiments.errors import UserError
from experiments.grid import load_grid
from experiments.spec.common import HeadSpec
from experiments.tasks import load_task, task_loss
from experiments.tasks.prep import NORMALIZE

# -- tasks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("seq_len", "snr"), [(10, 0.15), (100, 0.15), (30, 0.3)])
def test_evidence_bayes_accuracy_matches_the_sum_rule_on_its_val_split(seq_len: int, snr: float) -> None:
    data = load_task("evidence", seed=3, seq_len=seq_len, snr=snr, n_train=10, n_val=4000, n_test=10)
    bayes = data.info["bayes_accuracy"]
    assert bayes == pytest.approx(0.5 * (1 + math.erf(snr * math.sqrt(seq_len) / math.sqrt(2))))
    val = data.val
    hits = ((val.x[..., 0].sum(axis=1) > 0).astype(int) == val.y).mean()  # sign(sum_t x_t), Bayes-optimal
    se = math.sqrt(bayes * (1 - bayes) / len(val))
    assert abs(hits - bayes) < 3 * se, (hits, bayes, se)
    assert data.threshold == pytest.approx(bayes - 0.05)
    assert data.metric == "accuracy" and data.input_size == 1 and data.head.out_size == 2
    assert abs(data.baseline - 0.5) < 0.05  # the majority class
    with pytest.raises(UserError):
        load_task("evidence", snr=0.0)


def test_evidence_accuracy_rises_with_t() -> None:
    bayes = [load_task("evidence", seq_len=t, n_train=4, n_val=4, n_test=4).info["bayes_accuracy"] for t in (10, 100)]
    assert [round(b, 2) for b in bayes] == [0.68, 0.93]  # as its docstring says


def test_early_late_labels_the_early_and_the_late_cue() -> None:
    n_sym, window, t = 3, 5, 20
    data = load_task("early_late", seed=1, seq_len=t, n_symbols=n_sym, window=window, n_train=200, n_val=50)
    assert data.input_size == n_sym + 1 and data.head.out_size == n_sym * n_sym and data.threshold == 0.95
    for split in (data.train, data.val, data.test):
        x, y = split.x, split.y
        flags = x[..., -1]
        assert (flags.sum(axis=1) == 2).all()  # both cues flagged, nothing else
        early = flags[:, :window].argmax(axis=1)
        late = t - window + flags[:, t - window :].argmax(axis=1)
        assert (flags[np.arange(len(y)), early] == 1).all() and (flags[np.arange(len(y)), late] == 1).all()
        tokens = x[..., :n_sym].argmax(axis=-1)
        assert (x[..., :n_sym].sum(axis=-1) == 1).all()  # every step carries one symbol
        rows = np.arange(len(y))
        assert (y == tokens[rows, early] * n_sym + tokens[rows, late]).all()
    assert len(np.unique(data.train.y)) == n_sym * n_sym
    with pytest.raises(UserError):
        load_task("early_late", seq_len=8, window=5)


def test_forecast_target_normalize_keeps_the_targets_across_input_scalings() -> None:
    runs = {m: load_task("forecast", series="sunspots", normalize=m, target_normalize="zscore") for m in NORMALIZE}
    ref = runs["zscore"]
    for data in runs.values():
        for split, ref_split in ((data.train, ref.train), (data.val, ref.val), (data.test, ref.test)):
            np.testing.assert_array_equal(split.y, ref_split.y)
        assert data.baseline == ref.baseline and data.info["target_normalize"] == "zscore"
        assert data.info["persistence_mse"] == pytest.approx(ref.info["persistence_mse"], rel=1e-9)
    assert not np.allclose(runs["none"].val.x, runs["minmax"].val.x)  # the inputs do differ
    # by default the target is scaled like the inputs
    alike = load_task("forecast", series="sunspots", normalize="minmax")
    assert alike.info["target_normalize"] == "minmax" and not np.allclose(alike.val.y, ref.val.y)


# -- task_loss --------------------------------------------------------------------------------------------


def test_task_loss_is_torchs_cross_entropy_and_mse() -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    rng = np.random.default_rng(0)
    b, t, c = 6, 7, 5
    x = np.zeros((b, t, 1))
    lengths = np.array([7, 1, 3, 7, 5, 2])

    logits = rng.normal(size=(b, c)) * 3
    y = rng.integers(0, c, size=b)
    total, n = task_loss(HeadSpec("classify", c), logits, Batch(x, lengths, y))
    assert n == b
    assert total == pytest.approx(f.cross_entropy(torch.tensor(logits), torch.tensor(y), reduction="sum").item())

    logits = rng.normal(size=(b, t, c)) * 3
    y = rng.integers(0, c, size=(b, t))
    total, n = task_loss(HeadSpec("per_step_classify", c), logits, Batch(x, lengths, y))
    mask = np.arange(t)[None, :] < lengths[:, None]
    target = torch.tensor(np.where(mask, y, -100))  # padded steps ignored
    want = f.cross_entropy(torch.tensor(logits).reshape(-1, c), target.reshape(-1), reduction="sum").item()
    assert n == lengths.sum() and total == pytest.approx(want)
    assert total / n == pytest.approx(
        f.cross_entropy(torch.tensor(logits).reshape(-1, c), target.reshape(-1)).item()  # the mean, in nats
    )

    out = 3
    pred, y = rng.normal(size=(b, out)), rng.normal(size=(b, out))
    total, n = task_loss(HeadSpec("regress", out), pred, Batch(x, lengths, y))
    assert n == b and total / n == pytest.approx(f.mse_loss(torch.tensor(pred), torch.tensor(y)).item())

    pred, y = rng.normal(size=(b, t, out)), rng.normal(size=(b, t, out))
    total, n = task_loss(HeadSpec("per_step_regress", out), pred, Batch(x, lengths, y))
    keep = torch.tensor(mask)
    want = f.mse_loss(torch.tensor(pred)[keep], torch.tensor(y)[keep]).item()
    assert n == lengths.sum() and total / n == pytest.approx(want)


# -- the train cell -----------------------------------------------------------------------------------------

TRAIN = """
kind = "train"
[fixed]
arch = "lstm"
backend = "fake"
hidden = 8
batch = 16
lr = 0.01
seed = 1
eval_every = 5
eval_batch = 64
task = "{task}"
"task_params.n_train" = 128
"task_params.n_val" = 64
"task_params.n_test" = 32
{extra}
"""


def _train(tmp_path: Path, name: str, task: str = "adding", **settings) -> dict:
    from experiments.kinds.train import train_cell

    extra = "\n".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in settings.items())
    (cell,) = load_grid(write_grid(tmp_path, name, TRAIN.format(task=task, extra=extra))).cells()
    res = train_cell(FAKE, cell)
    assert res.status == "ok"
    return res.metrics


def test_stop_at_threshold_ends_at_the_first_evaluation_that_reaches_it(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    full = _train(tmp_path, "full", steps=60)
    steps, values = full["curves"]["val_metric"]["step"], full["curves"]["val_metric"]["value"]
    assert full["steps_run"] == 60 and len(steps) == 12
    level = values[len(values) // 2]  # an MSE the run reaches halfway
    first = next(i for i, v in enumerate(values) if v <= level)
    assert 0 < first < len(values) - 1 and values[0] > level
    stopped = _train(tmp_path, "stopped", steps=60, threshold=level, stop_at_threshold=True)
    assert stopped["steps_run"] == stopped["steps_to_threshold"] == steps[first]
    assert stopped["final_val_metric"] == pytest.approx(values[first])
    assert stopped["curves"]["val_metric"]["step"] == steps[: first + 1]
    assert stopped["threshold"] == level and stopped["final_test_loss"] is not None
    # without the switch the same threshold is only recorded
    kept = _train(tmp_path, "kept", steps=60, threshold=level)
    assert kept["steps_run"] == 60 and kept["steps_to_threshold"] == steps[first]


def test_relative_threshold_sets_the_recorded_threshold(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    mse = _train(tmp_path, "mse", steps=2, relative_threshold=0.5)
    assert mse["metric"] == "mse" and mse["threshold"] == pytest.approx(0.5 * mse["baseline_metric"])
    acc = _train(tmp_path, "acc", task="delayed_recall", steps=2, relative_threshold=0.25)
    base = acc["baseline_metric"]
    assert acc["metric"] == "accuracy" and acc["threshold"] == pytest.approx(base + 0.25 * (1 - base))
    # the test loss is the task's loss: MSE here, cross-entropy in nats there (chance: about log 4)
    assert mse["final_test_loss"] > 0 and 0.5 * math.log(4) < acc["final_test_loss"] < 3 * math.log(4)
    with pytest.raises(UserError, match="relative_threshold"):
        _train(tmp_path, "both", steps=2, relative_threshold=0.5, threshold=0.1)
    with pytest.raises(UserError, match="relative_threshold"):
        _train(tmp_path, "zero", steps=2, relative_threshold=0)


# -- grad_flow: the source's batch_first mistake ---------------------------------------------------------------


def test_grad_flow_time_major_mistake_hides_the_vanishing_gradient(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from experiments.backend import load_backend
    from experiments.kinds.probes import grad_flow

    text = """
kind = "grad_flow"
[axes]
layout = ["batch_first", "time_major_mistake"]
[fixed]
arch = "lstm"
backend = "torch"
seq_len = 50
hidden = 8
batch = 4
precision = "float64"
"""
    torch_backend = load_backend("torch")
    ratios = {}
    for cell in load_grid(write_grid(tmp_path, "gf", text)).cells():
        res = grad_flow(torch_backend, cell)
        assert res.status == "ok" and len(res.metrics["grad_norms"]) == 50
        ratios[cell.settings["layout"]] = res.metrics["ratio_first_last"]
    assert ratios["batch_first"] < 1e-3  # through 49 steps of an LSTM at init, the gradient vanishes
    assert 0.1 < ratios["time_major_mistake"] < 10  # 50 unrelated one-step sequences: of order 1
