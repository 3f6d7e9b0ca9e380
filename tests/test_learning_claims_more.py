"""L4, L7, L15, L16 and L17 on synthetic train records with a known effect.

Each claim judges through experiments/claims/learning/rules.py, so each test reaches, from records
shaped like those of the claim's standard grid (experiments/configs/claim_lNN_standard.toml):
confirmed, refuted (and partly where the analysis can say it), inconclusive because the positive
control did not learn ("under-trained: ..."), and inconclusive because 4 runs are fewer than the 5 a
continuous outcome needs (rule 3).
"""

from __future__ import annotations

from typing import Any

from _claims_helpers import jitter, train

from experiments.claims import analyze
from experiments.claims.base import ClaimResult
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, NOT_RUN, PARTLY, REFUTED, Part

FIVE = tuple(range(5))  # rules.MIN_CONTINUOUS_RUNS
FOUR = tuple(range(4))  # one run short of it
TWENTY = tuple(range(20))  # rules.MIN_BINARY_RUNS

Records = list[dict[str, Any]]


def _reason(res: ClaimResult) -> str:
    """The first device row's verdict reason."""
    return res.rows[0].verdict.reason


def _parts(res: ClaimResult) -> dict[str, Part]:
    """The first device row's verdict parts, by name."""
    return {p.name: p for p in res.rows[0].verdict.parts}


def assert_under_trained(res: ClaimResult) -> None:
    """The positive control failed: inconclusive, and the reason says so first."""
    assert res.verdict == INCONCLUSIVE, _reason(res)
    assert _reason(res).startswith("under-trained"), _reason(res)
    assert "positive control" in res.text


def assert_too_few_runs(res: ClaimResult) -> None:
    """Rule 3: what 4 runs show decides nothing."""
    assert res.verdict == INCONCLUSIVE, _reason(res)
    assert "4 runs < the 5 a continuous outcome needs" in _reason(res), _reason(res)


def _accuracy(value: float) -> dict[str, Any]:
    """A classification cell's extra metrics, as real records carry them: its metric and final train loss."""
    return {"metric": "accuracy", "final_train_loss": value}


# -- L4: LSTM vs GRU ------------------------------------------------------------------------------


def _l4(
    small_gain: float,
    large_gain: float = 0.0,
    *,
    adding: bool = True,
    adding_small_gain: float = 0.5,
    control_acc: float = 0.97,
    control_mse: float = 0.002,
    seeds: tuple[int, ...] = FIVE,
) -> Records:
    """As claim_l4_standard: digits (8 rows, accuracy solved at 0.9) with 100 and 1000 training images,
    where the LSTM reaches 0.82 and ``control_acc`` and the GRU ``small_gain`` / ``large_gain`` more; and
    (``adding``) the adding problem at T=50 (MSE solved at 0.01) with 500 and 5000 sequences, where the
    LSTM's MSE is 0.004 and ``control_mse`` and the GRU removes ``adding_small_gain`` of it on the small
    set, none on the large one. The control: the LSTM on each task's larger set."""
    out: Records = []
    for s in seeds:
        for n, acc, gain in ((100, 0.82, small_gain), (1000, control_acc, large_gain)):
            for arch, value in (("lstm", acc + jitter(s, 0.005)), ("gru", acc + gain + jitter(s + 1, 0.005))):
                out.append(
                    train("L4", value, 0.1, threshold=0.9, seed=s, arch=arch, task="digits", seq_len=8, hidden=64,
                          batch=32, task_params={"n_train": n, "seq_len": 8}, metrics={"metric": "accuracy"})
                )  # fmt: skip
        if not adding:
            continue
        for n, mse, cut in ((500, 0.004, adding_small_gain), (5000, control_mse, 0.0)):
            lstm, gru = mse * (1 + jitter(s, 0.05)), mse * (1 - cut) * (1 + jitter(s + 1, 0.05))
            for arch, value in (("lstm", lstm), ("gru", gru)):
                out.append(
                    train("L4", value, 0.16, threshold=0.01, seed=s, arch=arch, task="adding", seq_len=50, hidden=64,
                          batch=32, head_kind="regress", metrics={"metric": "mse"},
                          task_params={"n_train": n, "n_val": 500, "n_test": 500, "seq_len": 50})
                )  # fmt: skip
    return out


def _l4_long(lstm_edge: float, *, seeds: tuple[int, ...] = FIVE) -> Records:
    """Delayed recall (4 classes, solved at 0.9) at T=100 and T=1000, one training-set size (1000):
    the LSTM at 0.97 and 0.93, the GRU level at T=100 and ``lstm_edge`` below the LSTM at T=1000."""
    out: Records = []
    for s in seeds:
        for t, acc, edge in ((100, 0.97, 0.0), (1000, 0.93, lstm_edge)):
            for arch, value in (("lstm", acc + jitter(s, 0.005)), ("gru", acc - edge + jitter(s + 1, 0.005))):
                out.append(
                    train("L4", value, 0.25, threshold=0.9, seed=s, arch=arch, task="delayed_recall", seq_len=t,
                          hidden=64, task_params={"n_train": 1000, "n_classes": 4}, metrics={"metric": "accuracy"})
                )  # fmt: skip
    return out


def test_l4_comparable_with_gru_ahead_on_each_tasks_small_data() -> None:
    res = analyze("L4", _l4(0.015))
    assert res.verdict == CONFIRMED, _reason(res)
    parts = _parts(res)
    assert parts["positive control (LSTM, the larger training set of each task)"].measured == "5/5 runs learnt"
    small = {name for name in parts if "small data" in name}
    # each task's own small set (the adding problem's is 500, not the digits' 100), and no other
    assert small == {
        "digits T=8 small data (n=100): GRU slightly better",
        "adding T=50 small data (n=500): GRU slightly better",
    }
    assert all(parts[name].verdict == CONFIRMED for name in small)
    assert {f"{t} n={n}: comparable" for t, n in (("digits T=8", 100), ("digits T=8", 1000), ("adding T=50", 500),
                                                   ("adding T=50", 5000))} <= set(parts)  # fmt: skip
    assert not any("LSTM edge" in name for name in parts)  # no T beyond 500 here


def test_l4_refuted_partly() -> None:
    # the GRU 0.1 behind everywhere on digits: not comparable, and not better on small data
    refuted = analyze("L4", _l4(-0.10, -0.10, adding=False))
    assert refuted.verdict == REFUTED, _reason(refuted)
    # comparable everywhere, but the GRU slightly behind on the digits' small set
    partly = analyze("L4", _l4(-0.015))
    assert partly.verdict == PARTLY, _reason(partly)
    assert _parts(partly)["digits T=8 small data (n=100): GRU slightly better"].verdict == REFUTED
    # the GRU worse on the adding problem's small set decides too (it is that task's small data)
    adding = analyze("L4", _l4(0.015, adding_small_gain=-1.0))
    assert adding.verdict == PARTLY, _reason(adding)
    assert _parts(adding)["adding T=50 small data (n=500): GRU slightly better"].verdict == REFUTED


def test_l4_lstm_edge_judged_beyond_500_steps_only() -> None:
    res = analyze("L4", _l4_long(0.015))
    assert res.verdict == CONFIRMED, _reason(res)
    edges = {name for name in _parts(res) if "LSTM edge" in name}
    assert edges == {"delayed_recall T=1000 n=1000: LSTM edge beyond 500"}
    assert not any("small data" in name for name in _parts(res))  # one training-set size: no small data
    gru_ahead = analyze("L4", _l4_long(-0.015))  # still comparable, but the GRU ahead at T=1000
    assert gru_ahead.verdict == PARTLY, _reason(gru_ahead)
    assert _parts(gru_ahead)["delayed_recall T=1000 n=1000: LSTM edge beyond 500"].verdict == REFUTED


def test_l4_control_and_runs() -> None:
    assert_under_trained(analyze("L4", _l4(0.015, control_acc=0.85)))  # digits, 1000 images: under 0.9
    assert_under_trained(analyze("L4", _l4(0.015, control_mse=0.02)))  # adding, 5000 sequences: above 0.01
    assert_too_few_runs(analyze("L4", _l4(0.015, seeds=FOUR)))


# -- L7: the forecasting window ---------------------------------------------------------------------


def _l7(errs: dict[int, float], *, series: str = "co2", seeds: tuple[int, ...] = FIVE) -> Records:
    """As claim_l7_standard: the LSTM's one-step-ahead MSE on a z-scored ``series`` at each input
    window ``errs[window]``, against the train-mean predictor's 1.0, solved at half of it
    (relative_threshold 0.5). The control: window 24."""
    return [
        train("L7", e * (1 + jitter(s + i, 0.02)), 1.0, threshold=0.5, seed=s, task="forecast", seq_len=w, hidden=64,
              batch=32, head_kind="regress", metrics={"metric": "mse"},
              task_params={"series": series, "normalize": "zscore", "seq_len": w})
        for i, (w, e) in enumerate(errs.items())
        for s in seeds
    ]  # fmt: skip


# co2's train segment stays autocorrelated above 0.2 for 437 lags: the autocorrelation picks window 96
CO2_BEST_96 = {6: 0.30, 12: 0.28, 24: 0.26, 48: 0.24, 96: 0.20}


def test_l7_best_window_in_range_and_picked() -> None:
    res = analyze("L7", _l7(CO2_BEST_96))
    assert res.verdict == CONFIRMED, _reason(res)
    parts = _parts(res)
    assert parts["forecast:co2: best window in 20-100"].measured == "96"
    assert parts["forecast:co2: autocorrelation picks it"].measured.endswith("-> window 96")
    assert parts["forecast:co2: autocorrelation picks it"].verdict == CONFIRMED


def test_l7_refuted_partly() -> None:
    # the shortest window best by far: outside 20-100, and the picked 96 clearly worse
    refuted = analyze("L7", _l7({6: 0.10, 12: 0.15, 24: 0.20, 48: 0.30, 96: 0.40}))
    assert refuted.verdict == REFUTED, _reason(refuted)
    assert {p.verdict for name, p in _parts(refuted).items() if name.startswith("forecast")} == {REFUTED}
    # best 48 (in range); the picked 96 within its interval: the pick is near, not right
    near = analyze("L7", _l7({6: 0.40, 12: 0.35, 24: 0.30, 48: 0.200, 96: 0.202}))
    assert near.verdict == PARTLY, _reason(near)
    assert _parts(near)["forecast:co2: best window in 20-100"].verdict == CONFIRMED
    assert _parts(near)["forecast:co2: autocorrelation picks it"].verdict == PARTLY
    # sunspots (windows 6..48; autocorrelation below 0.2 after 3 lags: window 6), best at 12, as measured
    sunspots = analyze("L7", _l7({6: 0.205, 12: 0.20, 24: 0.22, 48: 0.25}, series="sunspots"))
    assert sunspots.verdict == PARTLY, _reason(sunspots)
    parts = _parts(sunspots)
    assert parts["forecast:sunspots: best window in 20-100"].verdict == REFUTED
    assert parts["forecast:sunspots: autocorrelation picks it"].measured.endswith("-> window 6")


def test_l7_control_and_runs() -> None:
    assert_under_trained(analyze("L7", _l7({**CO2_BEST_96, 24: 0.6})))  # window 24 above half the baseline
    assert_too_few_runs(analyze("L7", _l7(CO2_BEST_96, seeds=FOUR)))


# -- L15: hidden size -------------------------------------------------------------------------------


def _l15(
    val_err: dict[int, float], train_loss: dict[int, float], *, level: float = 0.55, seeds: tuple[int, ...] = FIVE
) -> Records:
    """As claim_l15_standard: digits with 200 training images (8 rows, accuracy; the baseline 0.1,
    solved half way to 1: 0.55, or at ``level``), the LSTM at each H with validation error
    ``val_err[H]`` and final train loss ``train_loss[H]``. The control: H=64."""
    return [
        train("L15", 1 - val_err[h] + jitter(s * (i + 2), 0.005), 0.1, threshold=level, seed=s, task="digits",
              seq_len=8, hidden=h, batch=32, task_params={"n_train": 200, "normalize": "minmax", "seq_len": 8},
              metrics=_accuracy(train_loss[h] * (1 + jitter(s * (i + 2), 0.05))))
        for i, h in enumerate(sorted(val_err))
        for s in seeds
    ]  # fmt: skip


U_SHAPED = {4: 0.30, 16: 0.12, 64: 0.08, 256: 0.14}  # the best H in the middle
FITS_MORE_WITH_H = {4: 0.8, 16: 0.2, 64: 0.05, 256: 0.001}


def test_l15_underfits_small_overfits_large() -> None:
    res = analyze("L15", _l15(U_SHAPED, FITS_MORE_WITH_H))
    assert res.verdict == CONFIRMED, _reason(res)
    parts = _parts(res)
    assert parts["digits: smallest H underfits"].verdict == CONFIRMED
    assert parts["digits: largest H overfits"].verdict == CONFIRMED
    assert parts["positive control (LSTM H=64)"].measured == "5/5 runs learnt"


def test_l15_partly() -> None:
    # the largest H best, as measured: underfitting holds, overfitting does not
    res = analyze("L15", _l15({4: 0.30, 16: 0.15, 64: 0.10, 256: 0.08}, FITS_MORE_WITH_H))
    assert res.verdict == PARTLY, _reason(res)
    assert _parts(res)["digits: largest H overfits"].verdict == REFUTED
    # the smallest H best: it does not underfit, whatever the largest does (it overfits here)
    res = analyze("L15", _l15({4: 0.08, 16: 0.10, 64: 0.12, 256: 0.20}, FITS_MORE_WITH_H))
    assert res.verdict == PARTLY, _reason(res)
    assert _parts(res)["digits: smallest H underfits"].verdict == REFUTED
    assert _parts(res)["digits: largest H overfits"].verdict == CONFIRMED
    # the largest H worse, its train loss about the best H's (0.052 against 0.05): worse, whether overfit undecided
    res = analyze("L15", _l15(U_SHAPED, {**FITS_MORE_WITH_H, 256: 0.052}))
    assert res.verdict == PARTLY, _reason(res)
    assert _parts(res)["digits: largest H overfits"].verdict == PARTLY


def test_l15_refuted() -> None:
    """The smallest H best, and the largest worse because it fits the training data worse too: neither
    underfitting nor overfitting."""
    res = analyze("L15", _l15({4: 0.08, 16: 0.10, 64: 0.12, 256: 0.20}, {4: 0.01, 16: 0.02, 64: 0.03, 256: 0.3}))
    assert res.verdict == REFUTED, _reason(res)
    assert "not overfit" in _parts(res)["digits: largest H overfits"].reason


def test_l15_control_and_runs() -> None:
    assert_under_trained(analyze("L15", _l15(U_SHAPED, FITS_MORE_WITH_H, level=0.95)))  # H=64 at 0.92
    assert_too_few_runs(analyze("L15", _l15(U_SHAPED, FITS_MORE_WITH_H, seeds=FOUR)))


# -- L16: depth -------------------------------------------------------------------------------------


def _l16(
    errs: dict[int, float],
    *,
    task: str = "digits",
    seeds: tuple[int, ...] = FIVE,
    stuck: dict[int, int] | None = None,
    stuck_acc: float = 0.5,
) -> Records:
    """As claim_l16_standard: a stacked LSTM (H=64) of each depth on digits (8 rows, accuracy solved at
    0.9; or JapaneseVowels, 29 steps, ``task="ucr"``) with validation error ``errs[layers]``; at depth d,
    the first ``stuck[d]`` seeds do not learn (accuracy ``stuck_acc``). The control: one layer."""
    t, params = (8, {"normalize": "minmax", "seq_len": 8}) if task == "digits" else (29, {"dataset": "JapaneseVowels"})
    stuck = stuck or {}
    return [
        train("L16", (stuck_acc if s < stuck.get(d, 0) else 1 - e) + jitter(s + (d > 4), 0.003), 0.1, threshold=0.9,
              seed=s, task=task, seq_len=t, hidden=64, batch=32, spec={"num_layers": d}, task_params=params,
              metrics=_accuracy(0.01))
        for d, e in errs.items()
        for s in seeds
    ]  # fmt: skip


FLAT_BEYOND_4 = {1: 0.05, 2: 0.04, 3: 0.035, 4: 0.03, 5: 0.03, 6: 0.03}
GAINS_BEYOND_4 = {1: 0.09, 2: 0.08, 3: 0.07, 4: 0.06, 5: 0.03, 6: 0.01}


def test_l16_diminishing_returns_beyond_4() -> None:
    # 20 runs a side: no gain beyond 4 layers, and 8 of 20 six-layer runs stuck (4 layers: none)
    res = analyze("L16", _l16(FLAT_BEYOND_4, seeds=TWENTY, stuck={6: 8}))
    assert res.verdict == CONFIRMED, _reason(res)
    part = _parts(res)["digits: beyond 4 layers"]
    assert "4->6 layers" in part.reason  # 4 against the deepest, not the next
    assert _parts(res)["digits: harder to train beyond 4 layers"].measured == "8/20 vs 0/20"
    # a clear gain beyond 4 layers, and the deep runs no harder to train (4 layers stuck more often)
    refuted = analyze("L16", _l16(GAINS_BEYOND_4, seeds=TWENTY, stuck={4: 8}))
    assert refuted.verdict == REFUTED, _reason(refuted)
    # harder to train (6 of 20 six-layer runs end just short of 0.9), yet a clear gain beyond 4 layers
    partly = analyze("L16", _l16({1: 0.05, 4: 0.08, 6: 0.0}, seeds=TWENTY, stuck={6: 6}, stuck_acc=0.88))
    assert partly.verdict == PARTLY, _reason(partly)
    assert _parts(partly)["digits: harder to train beyond 4 layers"].verdict == CONFIRMED
    # 5 runs: "harder to train" is a solve-or-not outcome and cannot be decided
    five = analyze("L16", _l16(FLAT_BEYOND_4, stuck={6: 4}, stuck_acc=0.88))  # 4/5 vs 0/5 would decide
    assert five.verdict == INCONCLUSIVE and "5 runs < the 20" in _reason(five), _reason(five)
    # the full grid's two tasks disagreeing
    both = analyze(
        "L16", _l16(FLAT_BEYOND_4, seeds=TWENTY, stuck={6: 8}) + _l16(GAINS_BEYOND_4, task="ucr", seeds=TWENTY)
    )
    assert _parts(both)["ucr:JapaneseVowels: beyond 4 layers"].verdict == REFUTED
    assert both.verdict == INCONCLUSIVE, _reason(both)  # ucr's "harder to train" undecided (0/20 vs 0/20)
    # a sweep that stops at 4 layers measures nothing beyond them
    assert analyze("L16", _l16({d: FLAT_BEYOND_4[d] for d in (1, 2, 3, 4)})).verdict == NOT_RUN


def test_l16_control_and_runs() -> None:
    assert_under_trained(analyze("L16", _l16({**FLAT_BEYOND_4, 1: 0.2})))  # one layer at 0.8 < 0.9
    assert_too_few_runs(analyze("L16", _l16(FLAT_BEYOND_4, seeds=FOUR)))


# -- L17: dropout -----------------------------------------------------------------------------------


def _l17(gains: dict[float, float], *, level: float = 0.55, seeds: tuple[int, ...] = FIVE) -> Records:
    """As claim_l17_standard: two stacked LSTM layers (H=128) on digits with 200 training images
    (accuracy; solved half way from the baseline 0.1: 0.55, or at ``level``), validation accuracy 0.88
    without dropout and ``gains[p]`` more with dropout ``p``. The control: no dropout."""
    return [
        train("L17", 0.88 + gains.get(p, 0.0) + jitter(s + (p > 0), 0.005), 0.1, threshold=level, seed=s,
              task="digits", seq_len=8, hidden=128, batch=32, spec={"num_layers": 2, "dropout": p},
              task_params={"n_train": 200, "normalize": "minmax", "seq_len": 8}, metrics=_accuracy(0.01 + p))
        for p in (0.0, *gains)
        for s in seeds
    ]  # fmt: skip


def test_l17_dropout_lowers_validation_error() -> None:
    res = analyze("L17", _l17({0.2: 0.02, 0.5: 0.02, 0.7: -0.2}))
    # the first half holds (0.7 is outside 0.2-0.5: shown, not judged); the recurrent half is not run
    assert res.verdict == INCONCLUSIVE and "is not run" in _reason(res), _reason(res)
    assert _parts(res)["recurrent (same-mask) dropout works best on long sequences"].verdict == INCONCLUSIVE
    assert {name for name in _parts(res) if "lowers" in name} == {
        "digits: dropout 0.2 lowers the validation error",
        "digits: dropout 0.5 lowers the validation error",
    }
    partly = analyze("L17", _l17({0.2: 0.02, 0.5: -0.03}))
    assert partly.verdict == PARTLY, _reason(partly)
    assert _parts(partly)["digits: dropout 0.5 lowers the validation error"].verdict == REFUTED
    assert analyze("L17", _l17({0.2: -0.02, 0.5: -0.03})).verdict == REFUTED


def test_l17_control_and_runs() -> None:
    assert_under_trained(analyze("L17", _l17({0.2: 0.02, 0.5: 0.02}, level=0.9)))  # no dropout at 0.88
    assert_too_few_runs(analyze("L17", _l17({0.2: 0.02, 0.5: 0.02}, seeds=FOUR)))
