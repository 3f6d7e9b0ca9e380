"""Claims: statistics, verdict rules, and each P1 analysis on synthetic records with a known effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _claims_helpers import bench, jitter, record, train
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.claims import CLAIMS, analyze, claim_ids
from experiments.claims.stats import Estimate, bootstrap_ci, divide, loglog_fit, mean_ci, t975, wilson
from experiments.claims.verdict import (
    CONFIRMED,
    INCONCLUSIVE,
    NOT_RUN,
    PARTLY,
    REFUTED,
    Part,
    around,
    combine,
    judge_direction,
    judge_range,
    judge_single,
)

P1 = ["S1", "S2", "S3", "S5", "S6", "S7", "S10", "L1", "L2", "L5", "L6", "L9", "L10", "L12", "L13"]
SEEDS = (0, 1, 2, 3)


# -- registry ------------------------------------------------------------------------------------


def test_registry_covers_claims_md_in_priority_order() -> None:
    ids = claim_ids()
    assert sorted(ids) == sorted([f"S{i}" for i in range(1, 12)] + [f"L{i}" for i in range(1, 18)])
    assert ids[: len(P1)] == P1
    prios = [CLAIMS[c].priority for c in ids]
    assert prios == sorted(prios)
    for claim in CLAIMS.values():
        assert claim.statement and claim.source and claim.measure


@pytest.mark.parametrize("cid", sorted(CLAIMS))
def test_no_records_is_not_run(cid: str) -> None:
    res = analyze(cid, [])
    assert res.verdict == NOT_RUN
    # records of other claims do not count
    assert analyze(cid, [bench("ZZ", 1.0)]).verdict == NOT_RUN


# -- registry, readings and record fields ------------------------------------------------------------


def test_a_claim_registers_once_with_a_known_priority_and_family() -> None:
    from experiments.claims.registry import claim

    meta = {"source": "-", "statement": "-", "measure": "-"}
    with pytest.raises(ValueError, match="priority"):
        claim(id="X1", priority="P4", family="cost", **meta)
    with pytest.raises(ValueError, match="family"):
        claim(id="X1", priority="P1", family="speed", **meta)
    with pytest.raises(ValueError, match="twice"):
        claim(id="S1", priority="P1", family="cost", **meta)(lambda records: CLAIMS["S1"].analyze(records))
    assert CLAIMS["S8"].about_gpu and not CLAIMS["S1"].about_gpu


def test_readings_name_each_vague_word_once_and_state_the_paper_line() -> None:
    from experiments.claims.readings import L12_DRASTICALLY, READINGS, S8_LARGE, stated

    assert stated() == (
        "S8 'large' = at least 2x; L12 'drastically' = at least 2x lower error; L1 'vanished' = a ratio under 0.1; "
        "L4 'comparable' = an error gap under 0.03"
    )
    assert len({(r.claim_id, r.word) for r in READINGS}) == len(READINGS)
    assert S8_LARGE.value == L12_DRASTICALLY.value == 2.0


def test_schema2_records_are_read_for_their_sizes_and_device_name() -> None:
    from experiments.records import fields as R

    rec = record("S3", arch="transformer", hidden=64, backend="jax", schema=2)
    rec["env"]["device_name"] = "Intel Xeon"
    rec["config"]["spec"]["d_model"] = 999  # the grid's coordinate decides, not a spec field
    assert R.size(rec) == 64 and R.device_name(rec) == "Intel Xeon"
    assert R.size({**rec, "sizes": {}}) is None  # a grid that set no hidden size


def test_schema1_records_infer_the_size_and_keep_the_device_name_recorded() -> None:
    from experiments.records import fields as R

    old = record("S3", arch="transformer", hidden=64, backend="jax")
    assert R.size(old) == 64
    old["env"]["device_name"] = "cpu"  # what jax's describe() recorded on a CPU
    assert R.device_name(old) == "cpu" and R.device_label([old], "cpu") == "cpu"
    del old["env"]["device_name"]
    assert R.device_name(old) == "Test CPU"


# -- stats -----------------------------------------------------------------------------------------


def test_t_quantiles_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30):
        assert t975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-3)


def test_mean_ci_and_bootstrap() -> None:
    est = mean_ci([1.0, 2.0, 3.0])
    assert est.value == 2.0 and est.lo == pytest.approx(2 - 4.302653 * 1 / math.sqrt(3), rel=1e-6)
    assert not mean_ci([5.0]).has_ci and math.isnan(mean_ci([]).value)
    a, b = bootstrap_ci([1.0, 2.0, 4.0, 8.0]), bootstrap_ci([1.0, 2.0, 4.0, 8.0])
    assert (a.lo, a.hi) == (b.lo, b.hi) and a.lo < a.value < a.hi


@settings(max_examples=40, deadline=None)
@given(k=st.floats(-3, 3), c=st.floats(0.01, 100))
def test_loglog_fit_recovers_exponents(k: float, c: float) -> None:
    xs = [10.0, 20.0, 40.0, 80.0]
    fit = loglog_fit(xs, [c * x**k for x in xs])
    assert fit.slope == pytest.approx(k, abs=1e-9)


def test_wilson_and_divide() -> None:
    w = wilson(10, 10)
    assert w.value == 1.0 and w.hi == 1.0 and 0.65 < w.lo < 0.75
    assert math.isnan(wilson(0, 0).value)
    r = divide(Estimate(4.0, 3.0, 5.0), Estimate(2.0))
    assert r.value == 2.0 and r.lo < 2.0 < r.hi


# -- verdict rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("est", "verdict"),
    [
        (Estimate(1.12, 1.11, 1.13), CONFIRMED),  # inside [1.10, 1.15]
        (Estimate(1.5, 1.4, 1.6), PARTLY),  # right direction, too big
        (Estimate(0.8, 0.7, 0.9), REFUTED),  # opposite direction
        (Estimate(1.0, 0.99, 1.01), REFUTED),  # no effect, interval excludes the claim
        (Estimate(1.05, 0.9, 1.2), INCONCLUSIVE),  # holds both no effect and the claim
        (Estimate(1.2, 1.05, 1.3), INCONCLUSIVE),  # direction holds, straddles the range
        (Estimate(1.12), CONFIRMED),  # a point without an interval
        (Estimate(math.nan), NOT_RUN),
    ],
)
def test_judge_range(est: Estimate, verdict: str) -> None:
    assert judge_range(est, (1.10, 1.15), null=1.0).verdict == verdict


def test_judge_range_below_null_and_single_numbers() -> None:
    assert judge_range(Estimate(0.5, 0.45, 0.55), (0.4, 0.6), null=1.0).verdict == CONFIRMED
    assert judge_range(Estimate(1.5, 1.4, 1.6), (0.4, 0.6), null=1.0).verdict == REFUTED
    assert around(0.85) == pytest.approx((0.6375, 1.0625))
    assert judge_single(Estimate(1.2), 1.0, null=0.0).verdict == CONFIRMED
    assert judge_single(Estimate(1.3), 1.0, null=0.0).verdict == PARTLY


def test_judge_direction() -> None:
    assert judge_direction(Estimate(0.1, 0.05, 0.15), 0.0).verdict == CONFIRMED
    assert judge_direction(Estimate(-0.1, -0.15, -0.05), 0.0).verdict == REFUTED
    assert judge_direction(Estimate(0.01, -0.05, 0.07), 0.0).verdict == INCONCLUSIVE
    assert judge_direction(Estimate(-0.1, -0.15, -0.05), 0.0, sign=-1).verdict == CONFIRMED


def test_combine() -> None:
    c, p, r, i = (Part(v, "", v) for v in (CONFIRMED, PARTLY, REFUTED, INCONCLUSIVE))
    assert combine([c, c]).verdict == CONFIRMED
    assert combine([c, p]).verdict == PARTLY
    assert combine([c, r]).verdict == PARTLY
    assert combine([r, r]).verdict == REFUTED
    assert combine([c, i]).verdict == INCONCLUSIVE
    assert combine([c, Part("core", "", REFUTED, core=True)]).verdict == REFUTED
    assert combine([Part("x", "", NOT_RUN)]).verdict == NOT_RUN
    assert "not run: y" in combine([c, Part("y", "", NOT_RUN)]).reason


# -- cost claims --------------------------------------------------------------------------------------

S1_T = (100, 500, 1000, 2000)


def _s1(lstm: dict[int, float], tf: dict[int, float], **kw) -> list[dict]:
    recs = []
    for be in ("torch", "jax"):
        recs += [bench("S1", lstm[t], arch="lstm", seq_len=t, backend=be, **kw) for t in S1_T]
        recs += [bench("S1", tf[t], arch="transformer", seq_len=t, backend=be, **kw) for t in S1_T]
    return recs


def test_s1_confirmed_when_the_table_holds() -> None:
    res = analyze("S1", _s1({100: 1, 500: 5, 1000: 10, 2000: 20}, {100: 1.2, 500: 1.5, 1000: 2, 2000: 3}))
    assert res.verdict == CONFIRMED
    assert res.rows[0].device.startswith("cpu")
    assert {f.name for f in res.figures} == {"S1_time_vs_T"}


def test_s1_refuted_when_the_transformer_grows_faster() -> None:
    res = analyze("S1", _s1({100: 1, 500: 1.5, 1000: 2, 2000: 3}, {100: 0.5, 500: 5, 1000: 20, 2000: 80}))
    assert res.verdict == REFUTED


def test_s1_partly_when_linear_but_not_the_sizes() -> None:
    res = analyze("S1", _s1({100: 1, 500: 3, 1000: 5, 2000: 8}, {100: 1.2, 500: 1.5, 1000: 2, 2000: 3}))
    assert res.verdict == PARTLY


def test_cost_verdicts_are_per_device() -> None:
    recs = _s1({100: 1, 500: 5, 1000: 10, 2000: 20}, {100: 1.2, 500: 1.5, 1000: 2, 2000: 3})
    recs += _s1({100: 1, 500: 1.5, 1000: 2, 2000: 3}, {100: 0.5, 500: 5, 1000: 20, 2000: 80}, device="cuda")
    res = analyze("S1", recs)
    assert [(r.device.split()[0], r.verdict.verdict) for r in res.rows] == [("cpu", CONFIRMED), ("cuda", REFUTED)]


def test_s2_linear_and_flat_memory() -> None:
    lin = [bench("S2", 1.0, mem=1e6 * t, seq_len=t) for t in S1_T]
    assert analyze("S2", lin).verdict == CONFIRMED
    flat = [bench("S2", 1.0, mem=5e8, seq_len=t) for t in S1_T]
    assert analyze("S2", flat).verdict == REFUTED


@pytest.mark.parametrize(
    ("power", "verdict"), [(lambda h: h**2, CONFIRMED), (lambda h: h, PARTLY), (lambda h: 1.0 + (h / 512) ** 2, PARTLY)]
)
def test_s3_exponent_regimes(power, verdict: str) -> None:
    recs = [bench("S3", power(h), hidden=h, seq_len=50) for h in (64, 128, 256, 512, 1024, 2048)]
    res = analyze("S3", recs)
    assert res.verdict == verdict
    if power(64) == 1.0 + (64 / 512) ** 2:  # flat at small H, quadratic at large H: a regime
        assert "only for H 1024..2048" in res.rows[0].verdict.reason


def test_s5_gpu_claim_on_cpu_says_so() -> None:
    recs = [
        bench("S5", 1.0, arch=a, seq_len=t, metrics={"peak_fraction": f})
        for t in (100, 1000)
        for a, f in (("lstm", 0.01), ("transformer", 0.2))
    ]
    res = analyze("S5", recs)
    # a claim about GPUs: its headline is the GPU row (not run here), the CPU row is context
    assert res.rows[0].device == "cuda" and res.rows[0].verdict.verdict == NOT_RUN and res.verdict == NOT_RUN
    assert res.rows[1].verdict.verdict == CONFIRMED and "CPU only" in res.rows[1].note


def test_s6_params_exact_and_time_ratio() -> None:
    recs = []
    for h in (32, 64, 128):
        recs += [bench("S6", 1.12, arch="lstm", hidden=h), bench("S6", 1.0, arch="gru", hidden=h)]
    res = analyze("S6", recs)
    assert res.verdict == CONFIRMED
    slow_gru = [bench("S6", 1.0, arch="lstm", hidden=h) for h in (32, 64)] + [
        bench("S6", 1.3, arch="gru", hidden=h) for h in (32, 64)
    ]
    assert analyze("S6", slow_gru).verdict == PARTLY  # params hold, time refuted


def test_s7_bilstm() -> None:
    recs = []
    for h in (32, 64):
        recs += [bench("S7", 1.0, mem=1e8, arch="lstm", hidden=h), bench("S7", 1.9, mem=2e8, arch="bilstm", hidden=h)]
    assert analyze("S7", recs).verdict == CONFIRMED


def test_s10_plain_quadratic_fused_linear() -> None:
    ts = (256, 512, 1024, 2048)
    plain = [
        bench("S10", 1.0, mem=1e3 * t * t, arch="transformer", seq_len=t, path="off", exec_path="reference") for t in ts
    ]
    fused = [
        bench("S10", 1.0, mem=1e5 * t, arch="transformer", seq_len=t, path="on", exec_path="fused_attention")
        for t in ts
    ]
    assert analyze("S10", plain).verdict == CONFIRMED
    assert analyze("S10", plain + fused).verdict == PARTLY
    assert (
        analyze("S10", [bench("S10", 1.0, mem=1e5 * t, arch="transformer", seq_len=t) for t in ts]).verdict == REFUTED
    )


# -- learning claims ----------------------------------------------------------------------------------


def _grad(arch: str, ratio: float, seed: int, t: int = 100, backend: str = "torch") -> dict:
    norms = [ratio ** (1 - i / (t - 1)) for i in range(t)]
    return record(
        "L1",
        kind="grad_flow",
        arch=arch,
        seq_len=t,
        seed=seed,
        backend=backend,
        precision="float64",
        metrics={"grad_norms": norms, "ratio_first_last": ratio, "log10_ratio_first_last": math.log10(ratio)},
    )


def test_l1_claim_true_and_false() -> None:
    good = [_grad("rnn", 1e-6 * (1 + jitter(s, 0.05)), s) for s in SEEDS] + [
        _grad("lstm", 0.85 + jitter(s, 0.02), s) for s in SEEDS
    ]
    assert analyze("L1", good).verdict == CONFIRMED
    vanish = [_grad("rnn", 1e-20 * (1 + jitter(s, 0.5)), s) for s in SEEDS] + [
        _grad("lstm", 1e-15 * (1 + jitter(s, 0.5)), s) for s in SEEDS
    ]
    res = analyze("L1", vanish)
    assert res.verdict == REFUTED  # the LSTM part is the claim's point
    parts = {p.name: p.verdict for p in combine_parts(res)}
    assert parts["torch: RNN vanishes (T=100)"] == PARTLY
    assert {f.name for f in res.figures} == {"L1_gradient_flow"}


def combine_parts(res):
    return res.rows[0].verdict.parts


# The learning claims judge through experiments/claims/learning/rules.py: a positive control per task
# (more than 10% of its runs not learning makes the verdict "inconclusive (under-trained: ...)"; a task
# whose control failed is shown, not judged), and a minimum of runs (5 for a continuous outcome, 20 for
# a solve-or-not one) below which nothing is confirmed or refuted. Each claim's test reaches every
# verdict its rules allow from records: confirmed, refuted (and partly where the claim has a size),
# inconclusive from an under-trained control, and inconclusive from too few runs.

FIVE = tuple(range(5))  # rules.MIN_CONTINUOUS_RUNS
TWENTY = tuple(range(20))  # rules.MIN_BINARY_RUNS


def _reason(res) -> str:
    return res.rows[0].verdict.reason


def _parts(res) -> dict[str, Part]:
    return {p.name: p for p in combine_parts(res)}


def assert_under_trained(res) -> None:
    """The positive control failed: inconclusive, and the reason says so first."""
    assert res.verdict == INCONCLUSIVE, _reason(res)
    assert _reason(res).startswith("under-trained"), _reason(res)
    assert "positive control" in res.text


def assert_too_few_runs(res, need: int) -> None:
    assert res.verdict == INCONCLUSIVE, _reason(res)
    assert f"runs < the {need} a " in _reason(res), _reason(res)


def _l2(reduction: float, *, seeds=FIVE, task: str = "adding", control_error: float = 0.008) -> list[dict]:
    """LSTM, MSE solved at <= 0.01: bias 0's error ``control_error`` at T=50 (the control), twice that at
    T=100; bias 1 and 2 remove ``reduction`` of it, paired by seed."""
    out = []
    for t, e0 in ((50, control_error), (100, 2 * control_error)):
        for s in seeds:
            for b, err in ((0.0, e0), (1.0, e0 * (1 - reduction)), (2.0, e0 * (1 - reduction))):
                noise = 1 + jitter(s + (b > 0), 0.01)
                out.append(
                    train("L2", err * noise, 0.16, threshold=0.01, seed=s, task=task, seq_len=t,
                          spec={"forget_bias": b}, head_kind="regress")
                )  # fmt: skip
    return out


def test_l2_arms_that_both_learnt_nothing_decide_nothing() -> None:
    """At a T where every bias stays at the trivial predictor (as at T=400 within the adding budget), the
    errors agree because nothing learnt: neither "no effect" (refuted) nor an effect may be read."""
    floor = [
        train("L2", 0.16 * (1 + jitter(s + (b > 0), 0.001)), 0.16, threshold=0.01, seed=s, task="adding",
              seq_len=400, spec={"forget_bias": b}, head_kind="regress")
        for s in FIVE
        for b in (0.0, 1.0)
    ]  # fmt: skip
    res = analyze("L2", _l2(0.10) + floor)
    part = _parts(res)["adding T=400: bias 1 vs 0"]
    assert part.verdict == INCONCLUSIVE and "no arm learnt" in part.reason, part.reason
    assert res.verdict == INCONCLUSIVE  # without the floor rule this part would refute "no effect"


def test_l2_forget_bias() -> None:
    res = analyze("L2", _l2(0.10))
    assert res.verdict == CONFIRMED, _reason(res)  # 10% lower error, inside 5-15%
    parts = _parts(res)
    assert parts["positive control (LSTM bias 0, adding T=50)"].measured == "5/5 runs learnt"
    assert not parts["adding T=50: bias 2 vs 0"].decides  # shown beside the deciding bias 1
    assert analyze("L2", _l2(0.50)).verdict == PARTLY  # 50% lower: outside 5-15%
    assert analyze("L2", _l2(-0.20)).verdict == REFUTED  # bias 1 hurts
    # bias 0 does not learn at T=50 (0.02 > 0.01): whatever bias 1 does, the budget is what was measured
    under = analyze("L2", _l2(0.10, control_error=0.02))
    assert_under_trained(under)
    assert _parts(under)["adding T=100: bias 1 vs 0"].verdict == CONFIRMED  # still shown
    assert_too_few_runs(analyze("L2", _l2(0.10, seeds=SEEDS)), 5)


def test_l2_a_task_whose_control_fails_is_shown_not_judged() -> None:
    recs = _l2(0.10) + _l2(-0.20, task="copy_memory", control_error=0.02)
    res = analyze("L2", recs)
    assert res.verdict == CONFIRMED, _reason(res)  # from the adding problem alone
    assert "not judged: under-trained: LSTM bias 0, copy_memory T=50" in _reason(res)
    gated = _parts(res)["copy_memory T=100: bias 1 vs 0"]
    assert gated.verdict == REFUTED and not gated.decides and gated.reason.startswith("not judged, under-trained")


def _l5(gain: float, *, seeds=FIVE, control_acc: float = 0.97, leak_mse: float | None = 0.02, leak_seeds=None):
    """early_late (solved at 0.95): the LSTM alone at T=20 (the control), both models at T=50 and 100,
    the BiLSTM ``gain`` above; an AR(1) forecast (phi 0.9: causal noise floor 0.19) where the BiLSTM's
    MSE is ``leak_mse``."""
    out = []
    for s in seeds:
        out.append(
            train("L5", control_acc + jitter(s, 0.005), 1 / 9, threshold=0.95, seed=s, arch="lstm",
                  task="early_late", seq_len=20)
        )  # fmt: skip
        for t, acc in ((50, 0.85), (100, 0.80)):
            for arch, value in (("lstm", acc + jitter(s, 0.01)), ("bilstm", acc + gain + jitter(s + 1, 0.01))):
                out.append(train("L5", value, 1 / 9, threshold=0.95, seed=s, arch=arch, task="early_late", seq_len=t))
    for s in seeds if leak_seeds is None else leak_seeds:
        if leak_mse is None:
            break
        for arch, mse in (("lstm", 0.19), ("bilstm", leak_mse)):
            out.append(
                train("L5", mse + jitter(s, 0.005), 1.0, seed=s, arch=arch, task="ar_forecast",
                      head_kind="per_step_regress")
            )  # fmt: skip
    return out


def test_l5_bidirectional_and_leak() -> None:
    res = analyze("L5", _l5(0.06))
    assert res.verdict == CONFIRMED, _reason(res)
    assert _parts(res)["ar_forecast: BiLSTM beats the causal noise floor (leak)"].verdict == CONFIRMED
    assert analyze("L5", _l5(0.15)).verdict == PARTLY  # BiLSTM better, by more than 0.06 +- 25%
    assert analyze("L5", _l5(-0.10, leak_mse=None)).verdict == REFUTED
    assert analyze("L5", _l5(-0.10, leak_mse=0.25)).verdict == REFUTED  # no leak either: above the floor
    assert_under_trained(analyze("L5", _l5(0.06, control_acc=0.60)))
    assert_too_few_runs(analyze("L5", _l5(0.06, seeds=SEEDS, leak_mse=None)), 5)


def test_l5_the_leak_needs_five_runs_too() -> None:
    res = analyze("L5", _l5(0.06, leak_seeds=(0, 1)))  # the leak measured on 2 runs
    leak = _parts(res)["ar_forecast: BiLSTM beats the causal noise floor (leak)"]
    assert leak.verdict == INCONCLUSIVE and "2 runs < the 5" in leak.reason
    assert res.verdict == INCONCLUSIVE


def _l6(short_gain: float, long_gain: float, *, seeds=FIVE, control_acc: float = 0.97, task="delayed_recall"):
    """Delayed recall (solved at 0.95): the LSTM alone at T=10 (the control), then LSTM and attention-LSTM
    at T=20, 50 (short: the attention's gain is ``short_gain``) and 100, 200 (long: ``long_gain``)."""
    out = [
        train("L6", control_acc + jitter(s, 0.005), 0.25, threshold=0.95, seed=s, arch="lstm", task=task, seq_len=10)
        for s in seeds
    ]
    for t, acc, gain in ((20, 0.8, short_gain), (50, 0.7, short_gain), (100, 0.6, long_gain), (200, 0.5, long_gain)):
        for s in seeds:
            for arch, value in (
                ("lstm", acc + jitter(s, 0.005)),
                ("attention_lstm", acc + gain + jitter(s + 1, 0.005)),
            ):
                out.append(train("L6", value, 0.25, threshold=0.95, seed=s, arch=arch, task=task, seq_len=t))
    return out


def test_l6_attention_gain_only_on_long() -> None:
    res = analyze("L6", _l6(0.0, 0.06))
    assert res.verdict == CONFIRMED, _reason(res)
    assert set(_parts(res)) >= {"delayed_recall T=20: no gain on short", "delayed_recall T=200: gain"}
    assert analyze("L6", _l6(0.0, 0.20)).verdict == PARTLY  # a gain on long ones, above 3-10%
    assert analyze("L6", _l6(0.20, -0.05)).verdict == REFUTED  # gains on short ones, loses on long ones
    assert_under_trained(analyze("L6", _l6(0.0, 0.06, control_acc=0.60)))
    assert_too_few_runs(analyze("L6", _l6(0.0, 0.06, seeds=SEEDS)), 5)


def test_l6_a_task_whose_control_fails_is_shown_not_judged() -> None:
    res = analyze("L6", _l6(0.0, 0.06) + _l6(0.20, -0.05, task="copy_memory", control_acc=0.5))
    assert res.verdict == CONFIRMED, _reason(res)


def _l8(long_gain: float, *, short_lstm: float = 0.99, seeds=FIVE) -> list[dict]:
    """Delayed recall (solved at 0.95) at T=50 (the control: both arms solve it) and T=500, where the
    LSTM sits at 0.3 and the Transformer at 0.3 + ``long_gain``."""
    out = []
    for t, lstm, transformer in ((50, short_lstm, 0.99), (500, 0.3, 0.3 + long_gain)):
        for s in seeds:
            for arch, value in (("lstm", lstm), ("transformer", transformer)):
                acc = value + jitter(s, 0.005)
                out.append(train("L8", acc, 0.25, threshold=0.95, seed=s, arch=arch, task="delayed_recall", seq_len=t))
    return out


def test_l8_judges_t500_against_a_control_at_the_shortest_t() -> None:
    res = analyze("L8", _l8(0.6))
    assert res.verdict == CONFIRMED, _reason(res)
    shown = _parts(res)["delayed_recall T=50"]
    assert not shown.decides  # T=50 is the control's length: shown, not judged (the claim: T >= 500)
    assert analyze("L8", _l8(-0.05)).verdict == REFUTED  # the LSTM ahead at T=500
    assert_under_trained(analyze("L8", _l8(0.6, short_lstm=0.5)))  # the LSTM fails even at T=50
    assert_too_few_runs(analyze("L8", _l8(0.6, seeds=SEEDS)), 5)


def _l9(accs, *, seeds=FIVE, task: str = "evidence", arch: str = "lstm", snr: float = 0.15) -> list[dict]:
    """Accuracy ``accs`` at T = 10, 50, 100, 500; evidence is solved within 0.05 of its Bayes accuracy
    Phi(snr sqrt T) (0.68, 0.86, 0.93, 0.9996), delayed recall at 0.95."""
    out = []
    for i, (t, a) in enumerate(zip((10, 50, 100, 500), accs, strict=True)):
        bayes = 0.5 * (1 + math.erf(snr * math.sqrt(t) / math.sqrt(2)))
        level, base = (bayes - 0.05, 0.5) if task == "evidence" else (0.95, 0.25)
        out += [
            train("L9", a + jitter(s + i, 0.005), base, threshold=level, seed=s, arch=arch, task=task, seq_len=t)
            for s in seeds
        ]
    return out


@pytest.mark.parametrize(
    ("accs", "verdict"),
    [
        ((0.66, 0.84, 0.90, 0.90), CONFIRMED),  # rises, then plateaus
        ((0.66, 0.84, 0.80, 0.70), CONFIRMED),  # falls
        ((0.66, 0.84, 0.90, 0.97), REFUTED),  # keeps rising with T, as the Bayes accuracy does
    ],
)
def test_l9_accuracy_vs_length(accs, verdict: str) -> None:
    res = analyze("L9", _l9(accs))
    assert res.verdict == verdict, _reason(res)
    assert _parts(res)["positive control (LSTM, evidence T=10)"].measured == "5/5 runs learnt"


def test_l9_control_runs_and_delayed_recall_decides_nothing() -> None:
    assert_under_trained(analyze("L9", _l9((0.55, 0.84, 0.90, 0.97))))  # 0.55 < 0.68 - 0.05 at T=10
    assert_too_few_runs(analyze("L9", _l9((0.66, 0.84, 0.90, 0.97), seeds=SEEDS)), 5)
    # delayed recall (ceiling 1.0 at every T) falls here, but only evidence decides: still refuted
    recs = _l9((0.66, 0.84, 0.90, 0.97)) + _l9((0.99, 0.97, 0.7, 0.3), task="delayed_recall")
    res = analyze("L9", recs)
    assert res.verdict == REFUTED, _reason(res)
    shown = _parts(res)["delayed_recall (lstm)"]
    assert shown.verdict == CONFIRMED and not shown.decides and "shown only" in shown.reason


def test_l9_an_under_trained_evidence_task_decides_nothing() -> None:
    """Evidence's control fails, delayed recall's passes: the falling evidence curve must not confirm
    (it is gated out), and with nothing else deciding, the verdict is under-trained, not "not run"."""
    recs = _l9((0.55, 0.84, 0.80, 0.70)) + _l9((0.99, 0.97, 0.7, 0.3), task="delayed_recall")
    res = analyze("L9", recs)
    assert_under_trained(res)
    assert not _parts(res)["evidence (lstm)"].decides


def test_l10_padding() -> None:
    def recs(level: float = 0.9, seeds=FIVE) -> list[dict]:
        return [
            train("L10", acc + jitter(s, 0.01), 0.5, threshold=level, seed=s, task="varlen_sum",
                  task_params={"padding": pad})
            for s in seeds
            for pad, acc in (("post", 0.6), ("pre", 0.9), ("masked", 0.92))
        ]  # fmt: skip

    good = recs()
    assert analyze("L10", good).verdict == CONFIRMED
    assert_too_few_runs(analyze("L10", recs(seeds=SEEDS)), 5)
    assert_under_trained(analyze("L10", recs(level=0.95)))  # the control (masked) does not learn
    for r in good:
        if r["config"]["task_params"]["padding"] == "post":
            r["metrics"]["final_val_metric"] = 0.95
    assert analyze("L10", good).verdict == REFUTED


def _l12(errs: dict[str, float], *, seeds=FIVE, series: str = "sunspots") -> list[dict]:
    """Forecast MSE per input normalisation (targets z-scored in every arm; the trivial predictor's MSE 1,
    solved at half of it: relative_threshold 0.5)."""
    return [
        train("L12", errs[m] * (1 + jitter(s + i, 0.02)), 1.0, threshold=0.5, seed=s, task="forecast",
              head_kind="regress", task_params={"series": series, "normalize": m, "target_normalize": "zscore"})
        for i, m in enumerate(errs)
        for s in seeds
    ]  # fmt: skip


def test_l12_normalisation() -> None:
    good = {"none": 0.9, "mean": 0.8, "minmax": 0.2, "zscore": 0.2}
    res = analyze("L12", _l12(good))
    assert res.verdict == CONFIRMED, _reason(res)
    assert not _parts(res)["forecast:sunspots (lstm): zscore / minmax error"].decides  # shown: scaling or min-max
    assert analyze("L12", _l12({"none": 0.3, "mean": 0.3, "minmax": 0.25, "zscore": 0.2})).verdict == PARTLY
    assert analyze("L12", _l12({"none": 0.2, "mean": 0.2, "minmax": 0.6, "zscore": 0.2})).verdict == REFUTED
    assert_under_trained(analyze("L12", _l12({**good, "zscore": 0.7})))  # the z-scored control: 0.7 > 0.5
    assert_under_trained(analyze("L12", _l12({"none": 0.9, "mean": 0.8, "minmax": 0.2})))  # no control arm
    assert_too_few_runs(analyze("L12", _l12(good, seeds=SEEDS)), 5)
    mixed = analyze("L12", _l12(good) + _l12({"none": 0.2, "mean": 0.2, "minmax": 0.6, "zscore": 0.7}, series="co2"))
    assert mixed.verdict == CONFIRMED and "not judged" in _reason(mixed)


def _l13_run(lr: float, s: int, *, final: float = 0.95, bumpy: bool = False, status: str = "ok") -> dict:
    """A digits run (solved at 0.9) with a logged training-loss curve: a decaying one with small
    seed-dependent wiggles, or (``bumpy``) one that keeps jumping back up in its second half."""
    steps = list(range(10, 210, 10))
    smooth = [2.0 * 0.8**k + 0.1 + 0.003 * ((k * (s + 1)) % 3) for k in range(len(steps))]
    values = [v + (0.8 if bumpy and k >= 10 and k % 2 else 0.0) for k, v in enumerate(smooth)]
    curves = {"train_loss": {"step": steps, "value": values}}
    return train("L13", final, 0.1, threshold=0.9, seed=s, task="digits", optimizer={"lr": lr}, status=status,
                 metrics={"curves": curves, "diverged": status != "ok"})  # fmt: skip


def _l13(seeds=TWENTY, *, default_final: float = 0.95, high: str = "bumpy") -> list[dict]:
    out = [_l13_run(1e-3, s, final=default_final) for s in seeds]
    for s in seeds:
        if high == "bumpy":  # half oscillate, half diverge
            out.append(_l13_run(0.1, s, final=0.6, bumpy=True) if s % 2 else _l13_run(0.1, s, status="diverged"))
        elif high == "bumpy_but_converges":
            out.append(_l13_run(0.1, s, final=0.95, bumpy=True))
        else:  # calm: as smooth as lr=1e-3
            out.append(_l13_run(0.1, s))
    return out


def test_l13_learning_rates() -> None:
    res = analyze("L13", _l13())
    assert res.verdict == CONFIRMED, _reason(res)
    parts = _parts(res)
    assert parts["digits: lr=0.1 oscillates or diverges"].measured.startswith("1 [")
    assert parts["positive control (LSTM lr 0.001, digits)"].measured == "20/20 runs learnt"
    # converges in the end, but its training loss keeps jumping back up
    assert analyze("L13", _l13(high="bumpy_but_converges")).verdict == CONFIRMED
    calm = analyze("L13", _l13(high="calm"))
    assert calm.verdict == REFUTED, _reason(calm)
    assert_under_trained(analyze("L13", _l13(default_final=0.5)))  # lr=1e-3 learns nothing: the budget decides
    assert_too_few_runs(analyze("L13", _l13(seeds=range(10))), 20)


def test_l13_control_runs_at_the_sizing_chosen_lr() -> None:
    """With sizing records that choose lr 1e-2 for digits, the control is the lr=1e-2 arm: when it does not
    learn, the claim is under-trained even though lr=1e-3 converges."""
    sizing = [
        train("SIZING", 0.95, 0.1, threshold=0.9, seed=s, task="digits", optimizer={"lr": lr},
              metrics={"steps_to_threshold": solved}, settings={"steps": 3000, "eval_every": 100})
        for lr, solved in ((1e-3, 300), (1e-2, 100))
        for s in range(5)
    ]  # fmt: skip
    recs = _l13() + [_l13_run(1e-2, s, final=0.5) for s in TWENTY]
    res = analyze("L13", recs + sizing)
    assert_under_trained(res)
    assert _parts(res)["positive control (LSTM lr 0.01, digits)"].measured == "0/20 runs learnt"
    assert analyze("L13", recs).verdict == CONFIRMED  # without sizing records: the control is lr=1e-3


def test_diverged_runs_score_the_baseline() -> None:
    from experiments.claims.learning.common import score

    rec = train("L13", float("nan"), 0.1, status="nan")
    assert score(rec) == 0.1
    assert np.isfinite(score(train("L13", 0.7, 0.1)))


# -- probes (through a stand-in backend whose answers are known) ----------------------------------------


class _KnownBackend:
    """dL/dx_t = decay^(T-1-t) for every sample and feature; forget activations all equal ``forget``."""

    name = "known"

    def __init__(self, decay: float = 0.5, forget: float = 0.9) -> None:
        self.decay, self.forget = decay, forget

    def build(self, spec, params, **kw):
        return spec

    def execution_path(self, model) -> str:
        return "reference"

    def loss_and_grads(self, model, batch):
        from experiments.backend import Gradients

        b, t, i = batch.x.shape
        g = np.broadcast_to((self.decay ** np.arange(t - 1, -1, -1))[None, :, None], (b, t, i)).copy()
        return Gradients(loss=1.0, params={}, inputs=g)

    def forward(self, model, batch, return_extras=False, **kw):
        from experiments.backend import ForwardResult

        b, t, _ = batch.x.shape
        h = model.hidden_size
        gates = np.full((1, b, t, 4 * h), 0.5)
        gates[..., h : 2 * h] = self.forget
        return ForwardResult(
            outputs=np.zeros((b, t, h)), pooled=np.zeros((b, h)), logits=np.zeros((b, 2)), extras={"gates": gates}
        )


def _probe_cell(kind: str, arch: str = "lstm", seq_len: int = 10, **spec):
    from experiments.cell import Cell
    from experiments.spec import make_spec, spec_to_dict

    config = {
        "kind": kind,
        "arch": arch,
        "backend": "known",
        "device": "cpu",
        "precision": "float64",
        "path": "auto",
        "seed": 0,
        "data_seed": 0,
        "batch": 3,
        "seq_len": seq_len,
        "task": None,
        "task_params": {},
        "spec": spec_to_dict(make_spec(arch, input_size=2, hidden_size=4, **spec)),
        "optimizer": {},
        "settings": {},
    }
    return Cell.make("probe", ("L1",), config)


def test_grad_flow_probe_measures_first_over_last() -> None:
    from experiments.kinds.probes import grad_flow

    res = grad_flow(_KnownBackend(decay=0.5), _probe_cell("grad_flow", "rnn", seq_len=11))
    assert res.status == "ok" and res.path == "reference"
    assert res.metrics["ratio_first_last"] == pytest.approx(0.5**10)
    assert res.metrics["log10_ratio_first_last"] == pytest.approx(10 * math.log10(0.5))
    assert len(res.metrics["grad_norms"]) == 11


def test_forget_gate_probe_measures_retention() -> None:
    from experiments.errors import UserError
    from experiments.kinds.probes import forget_gate

    res = forget_gate(_KnownBackend(forget=0.9), _probe_cell("forget_gate", seq_len=12, forget_retention=10))
    assert res.metrics["forget_mean"] == pytest.approx(0.9)
    assert res.metrics["retention_after_n"] == pytest.approx(0.9**10)
    assert res.metrics["forget_target"] == pytest.approx(0.5 ** (1 / 10))
    with pytest.raises(UserError):
        forget_gate(_KnownBackend(), _probe_cell("forget_gate", seq_len=5, forget_retention=10))


def test_l9_nothing_learnt_decides_nothing() -> None:
    recs = [
        train("L9", 0.5 + jitter(s, 0.01), 0.5, seed=s, task="delayed_recall", seq_len=t)
        for t in (10, 50, 100)
        for s in SEEDS
    ]
    assert analyze("L9", recs).verdict == INCONCLUSIVE
    attention = [
        train("L9", 1.0, 0.5, seed=s, arch="attention_lstm", task="delayed_recall", seq_len=t)
        for t in (10, 50, 100)
        for s in SEEDS
    ]
    assert analyze("L9", recs + attention).verdict == INCONCLUSIVE  # the claim is about recurrent models


def test_l11_truncation_sound_only_for_recent_signal() -> None:
    def recs(full_acc: float = 0.95, seeds=FIVE) -> list[dict]:
        out = []
        for s in seeds:
            for dist, cut_acc in ((10, 0.95), (900, 0.25)):
                for cut, acc in ((200, cut_acc), (1000, full_acc)):
                    out.append(
                        train("L11", acc + jitter(s, 0.005), 0.25, threshold=0.9, seed=s, task="delayed_recall",
                              seq_len=cut, task_params={"distance": dist, "truncate": cut, "seq_len": 1000})
                    )  # fmt: skip
        return out

    res = analyze("L11", recs())
    verdicts = {p.name: p.verdict for p in res.rows[0].verdict.parts}
    assert verdicts == {
        "positive control (LSTM, full sequences, the signal 10 steps back)": CONFIRMED,
        "delayed_recall: signal 10 steps back, keep the last 200": CONFIRMED,
        "delayed_recall: signal 900 steps back, keep the last 200": REFUTED,
    }
    assert res.verdict == PARTLY
    assert_under_trained(analyze("L11", recs(full_acc=0.5)))  # whole sequences, recent signal: not learnt
    assert_too_few_runs(analyze("L11", recs(seeds=SEEDS)), 5)


def _l14(clip_gain: float, *, seeds=FIVE, control_acc: float = 0.93, diverged_off: int = 0) -> list[dict]:
    """Sequential digits (accuracy, solved at 0.9, baseline 0.1), SGD: RNN and LSTM at the sized lr 0.1
    (the clipped LSTM there is the control, at ``control_acc``) and at the high lr 0.3, where the clipped
    runs end ``clip_gain`` above the unclipped ones; the first ``diverged_off`` unclipped runs diverge."""

    def cell(acc: float, arch: str, seed: int, lr: float, clip: float, status: str = "ok") -> dict:
        opt = {"name": "sgd", "lr": lr, "clip_norm": clip}
        return train("L14", acc, 0.1, threshold=0.9, seed=seed, arch=arch, task="digits", seq_len=64,
                     status=status, optimizer=opt)  # fmt: skip

    out = []
    for s in seeds:
        for arch in ("rnn", "lstm"):
            for lr, clip, acc in ((0.1, 1.0, control_acc), (0.1, 1e9, control_acc), (0.3, 1.0, 0.5 + clip_gain)):
                out.append(cell(acc + jitter(s, 0.005), arch, s, lr, clip))
            status = "diverged" if s < diverged_off else "ok"
            out.append(cell(0.5 + jitter(s + 1, 0.005), arch, s, 0.3, 1e9, status))
    return out  # fmt: skip


def test_l14_clipping_judged_at_the_high_lr() -> None:
    res = analyze("L14", _l14(0.3, diverged_off=2))
    assert res.verdict == CONFIRMED, _reason(res)
    parts = _parts(res)
    assert parts["digits rnn lr=0.3: clip 1: final metric"].decides
    assert not parts["digits rnn lr=0.1: clip 1: final metric"].decides  # the sized lr: shown
    assert not parts["digits rnn lr=0.3: clip 1: divergence"].decides  # 2/5 diverged: shown beside
    assert analyze("L14", _l14(-0.3)).verdict == REFUTED  # clipping hurts at the high lr
    assert analyze("L14", _l14(0.0)).verdict == INCONCLUSIVE  # no difference either way
    assert_under_trained(analyze("L14", _l14(0.3, control_acc=0.6)))
    assert_too_few_runs(analyze("L14", _l14(0.3, seeds=SEEDS)), 5)


def test_cpu_resident_memory_decides_nothing() -> None:
    recs = [bench("S2", 1.0, mem=1e6 * t, seq_len=t, metrics={"mem_kind": "cpu_rss_delta"}) for t in S1_T]
    res = analyze("S2", recs)
    assert res.verdict == INCONCLUSIVE
    assert all("resident memory" in p.reason for p in res.rows[0].verdict.parts)
    gpu = [bench("S2", 1.0, mem=1e6 * t, seq_len=t, device="cuda", metrics={"mem_kind": "device_peak"}) for t in S1_T]
    assert analyze("S2", gpu).verdict == CONFIRMED


class _AttentionBackend(_KnownBackend):
    """Trains nothing; attends to position 0 with weight 0.7, evenly elsewhere."""

    def make_train_state(self, model, optimizer, seed=0):
        return {"steps": 0}

    def prepare_batch(self, state, batch):
        return batch

    def train_step(self, state, batch):
        state["steps"] += 1
        return 0.25

    def loss_value(self, loss):
        return float(loss)

    def state_params(self, state):
        return {}

    def forward(self, model, batch, return_extras=False, **kw):
        from experiments.backend import ForwardResult

        b, t, _ = batch.x.shape
        weights = np.full((b, t), 0.3 / (t - 1))
        weights[:, 0] = 0.7
        logits = np.zeros((b, 2))
        logits[np.arange(b), batch.y] = 1.0  # always right
        return ForwardResult(
            outputs=np.zeros((b, t, 4)), pooled=np.zeros((b, 4)), logits=logits, extras={"attention": weights}
        )


def test_attention_map_probe_reads_the_cue_weight() -> None:
    from experiments.cell import Cell
    from experiments.grid import _task_meta
    from experiments.kinds.probes import attention_map
    from experiments.spec import make_spec, spec_to_dict

    params = {"seq_len": 12, "n_classes": 2, "n_train": 64, "n_val": 16, "n_test": 16}
    meta = _task_meta("delayed_recall", 0, tuple(sorted(params.items())))
    spec = make_spec("attention_lstm", input_size=meta["input_size"], hidden_size=4, head_out=2)
    config = {
        "kind": "attention_map",
        "arch": "attention_lstm",
        "backend": "known",
        "device": "cpu",
        "precision": "float32",
        "path": "auto",
        "seed": 0,
        "data_seed": 0,
        "batch": 8,
        "seq_len": 12,
        "task": "delayed_recall",
        "task_params": params,
        "spec": spec_to_dict(spec),
        "optimizer": {"name": "adam", "lr": 0.01},
        "settings": {"steps": 3, "eval_examples": 10},
    }
    res = attention_map(_AttentionBackend(), Cell.make("probe", ("L6",), config))
    assert res.status == "ok" and res.metrics["val_metric"] == 1.0
    assert res.metrics["cue_position"] == 0 and res.metrics["attention_on_cue"] == pytest.approx(0.7)
    assert len(res.metrics["attention_mean"]) == 12
