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
    assert est.value == 2.0 and est.lo == pytest.approx(2 - 4.303 * 1 / math.sqrt(3), rel=1e-4)
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


def _pairs(claim: str, a: dict, b: dict, gain: float, base: float = 0.5, noise: float = 0.01, **kw) -> list[dict]:
    out = []
    for s in SEEDS:
        out.append(train(claim, base + jitter(s, noise), 0.25, seed=s, **a, **kw))
        out.append(train(claim, base + gain + jitter(s + 1, noise), 0.25, seed=s, **b, **kw))
    return out


def test_l2_forget_bias() -> None:
    def recs(err1: float) -> list[dict]:
        out = []
        for s in SEEDS:
            for b, err in ((0.0, 0.10), (1.0, err1), (2.0, err1)):
                out.append(
                    train(
                        "L2",
                        err * (1 + jitter(s, 0.01)),
                        0.16,
                        seed=s,
                        arch="lstm",
                        task="adding",
                        spec={"forget_bias": b},
                        head_kind="regress",
                    )
                )
        return out

    assert analyze("L2", recs(0.09)).verdict == CONFIRMED  # 10% lower error
    assert analyze("L2", recs(0.05)).verdict == PARTLY  # 50% lower: outside 5-15%
    assert analyze("L2", recs(0.12)).verdict == REFUTED  # bias 1 hurts


def test_l5_bidirectional_and_leak() -> None:
    cls = _pairs("L5", {"arch": "lstm"}, {"arch": "bilstm"}, 0.06, task="window_majority")
    leak = []
    for s in SEEDS:
        leak.append(
            train(
                "L5",
                0.19 + jitter(s, 0.005),
                1.0,
                seed=s,
                arch="lstm",
                task="ar_forecast",
                head_kind="per_step_regress",
            )
        )
        leak.append(
            train(
                "L5",
                0.02 + jitter(s, 0.005),
                1.0,
                seed=s,
                arch="bilstm",
                task="ar_forecast",
                head_kind="per_step_regress",
            )
        )
    assert analyze("L5", cls + leak).verdict == CONFIRMED
    assert (
        analyze("L5", _pairs("L5", {"arch": "lstm"}, {"arch": "bilstm"}, -0.1, task="window_majority")).verdict
        == REFUTED
    )


def test_l6_attention_gain_only_on_long() -> None:
    recs = []
    for t, gain in ((20, 0.0), (50, 0.0), (100, 0.05), (200, 0.07)):
        recs += _pairs("L6", {"arch": "lstm"}, {"arch": "attention_lstm"}, gain, task="delayed_recall", seq_len=t)
    assert analyze("L6", recs).verdict == CONFIRMED
    short_gain = _pairs("L6", {"arch": "lstm"}, {"arch": "attention_lstm"}, 0.2, task="delayed_recall", seq_len=20)
    assert analyze("L6", short_gain).verdict == REFUTED


@pytest.mark.parametrize(("accs", "verdict"), [((0.9, 0.9, 0.6, 0.3), CONFIRMED), ((0.3, 0.5, 0.7, 0.9), REFUTED)])
def test_l9_accuracy_vs_length(accs, verdict: str) -> None:
    recs = [
        train("L9", a + jitter(s, 0.01), 0.25, seed=s, task="delayed_recall", seq_len=t)
        for t, a in zip((10, 50, 100, 500), accs, strict=True)
        for s in SEEDS
    ]
    assert analyze("L9", recs).verdict == verdict


def test_l10_padding() -> None:
    recs = []
    for s in SEEDS:
        for pad, acc in (("post", 0.6), ("pre", 0.9), ("masked", 0.92)):
            recs.append(
                train("L10", acc + jitter(s, 0.01), 0.5, seed=s, task="varlen_sum", task_params={"padding": pad})
            )
    assert analyze("L10", recs).verdict == CONFIRMED
    for r in recs:
        if r["config"]["task_params"]["padding"] == "post":
            r["metrics"]["final_val_metric"] = 0.95
    assert analyze("L10", recs).verdict == REFUTED


def test_l12_normalisation() -> None:
    def recs(errs: dict[str, float]) -> list[dict]:
        return [
            train(
                "L12",
                errs[m] * (1 + jitter(s, 0.02)),
                1.0,
                seed=s,
                task="forecast",
                head_kind="regress",
                task_params={"series": "sunspots", "normalize": m},
            )
            for m in errs
            for s in SEEDS
        ]

    assert analyze("L12", recs({"none": 0.9, "mean": 0.8, "minmax": 0.2, "zscore": 0.2})).verdict == CONFIRMED
    assert analyze("L12", recs({"none": 0.3, "mean": 0.3, "minmax": 0.25, "zscore": 0.2})).verdict == PARTLY
    assert analyze("L12", recs({"none": 0.2, "mean": 0.2, "minmax": 0.6, "zscore": 0.2})).verdict == REFUTED


def test_l13_learning_rates() -> None:
    recs = []
    for s in range(8):
        recs.append(train("L13", 0.95, 0.5, seed=s, task="digits", optimizer={"lr": 1e-3}))
        recs.append(
            train("L13", 0.5, 0.5, seed=s, task="digits", optimizer={"lr": 0.1}, status="diverged" if s % 2 else "ok")
        )
    assert analyze("L13", recs).verdict == CONFIRMED
    calm = [
        train("L13", 0.95, 0.5, seed=s, task="digits", optimizer={"lr": lr}) for s in range(8) for lr in (1e-3, 0.1)
    ]
    assert analyze("L13", calm).verdict == REFUTED

    def bumpy(lr: float, s: int, values: list[float]) -> dict:
        curves = {"val_metric": {"step": list(range(len(values))), "value": values}}
        return train("L13", values[-1], 0.5, seed=s, task="digits", optimizer={"lr": lr}, metrics={"curves": curves})

    oscillating = [bumpy(1e-3, s, [0.6, 0.8, 0.9, 0.95]) for s in range(8)]
    oscillating += [bumpy(0.1, s, [0.9, 0.6, 0.95, 0.7 + 0.01 * s, 0.9]) for s in range(8)]
    res = analyze("L13", oscillating)
    assert res.verdict == CONFIRMED  # converges in the end, but its validation error keeps jumping back up
    assert {p.name: p.verdict for p in res.rows[0].verdict.parts}["lr=0.1 diverges or fails to converge"] == REFUTED


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
    recs = []
    for s in SEEDS:
        for dist, cut_acc in ((10, 0.95), (900, 0.25)):
            for cut, acc in ((200, cut_acc), (1000, 0.95)):
                recs.append(
                    train(
                        "L11",
                        acc + jitter(s, 0.005),
                        0.25,
                        seed=s,
                        task="delayed_recall",
                        seq_len=cut,
                        task_params={"distance": dist, "truncate": cut, "seq_len": 1000},
                    )
                )
    res = analyze("L11", recs)
    verdicts = {p.name: p.verdict for p in res.rows[0].verdict.parts}
    assert verdicts == {
        "delayed_recall: signal 10 steps back, keep the last 200": CONFIRMED,
        "delayed_recall: signal 900 steps back, keep the last 200": REFUTED,
    }
    assert res.verdict == PARTLY


def test_l14_clipping_prevents_divergence() -> None:
    recs = []
    for s in range(10):
        recs.append(train("L14", 0.1, 0.16, seed=s, arch="rnn", optimizer={"lr": 0.1, "clip_norm": 1.0}))
        recs.append(
            train("L14", math.nan, 0.16, seed=s, arch="rnn", status="diverged", optimizer={"lr": 0.1, "clip_norm": 1e9})
        )
    assert analyze("L14", recs).verdict == CONFIRMED


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
