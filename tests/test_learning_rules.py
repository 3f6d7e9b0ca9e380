"""The rules of a fair learning experiment (experiments/claims/learning/rules.py) and the intervals they use
(experiments/claims/stats.py), against scipy and published numbers."""

from __future__ import annotations

import math

import pytest
from _claims_helpers import train
from scipy import stats as scipy_stats

from experiments.claims.learning.common import learnt
from experiments.claims.learning.rules import (
    CONTROL_PART,
    MAX_CONTROL_FAILURES,
    MIN_BINARY_RUNS,
    MIN_CONTINUOUS_RUNS,
    Control,
    control,
    gate,
    judged,
    require_runs,
    solve_rate,
)
from experiments.claims.stats import exact_proportion, proportion_difference, t975, wilson
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE, NOT_RUN, PARTLY, REFUTED, Judgement, Part

# -- the positive control --------------------------------------------------------------------------


def test_the_control_passes_with_at_most_ten_percent_failing() -> None:
    assert MAX_CONTROL_FAILURES == 0.10
    assert Control("s", "c", 18, 20).passed  # 2 of 20 fail: 10%
    assert not Control("s", "c", 17, 20).passed  # 3 of 20: 15%
    assert Control("s", "c", 5, 5).passed and not Control("s", "c", 4, 5).passed  # of 5, none may fail
    assert Control("s", "c", 9, 10).passed and not Control("s", "c", 8, 10).passed
    empty = Control("s", "c", 0, 0)
    assert not empty.ran and not empty.passed


def test_the_control_as_a_part_and_a_sentence() -> None:
    ok = Control("LSTM, adding T=50", "validation mse <= 0.01 at the end", 18, 20, "1000 steps")
    part = ok.part()
    assert part.name == f"{CONTROL_PART} (LSTM, adding T=50)" and part.measured == "18/20 runs learnt"
    assert part.verdict == CONFIRMED and not part.decides  # shown; it decides only by failing
    assert "positive control" in ok.sentence() and "passed" in ok.sentence() and "1000 steps" in ok.sentence()
    bad = Control("LSTM, adding T=50", "validation mse <= 0.01 at the end", 17, 20)
    part = bad.part()
    assert part.verdict == INCONCLUSIVE and part.decides and part.reason.startswith("under-trained")
    assert "17/20" in part.reason and "failed" in bad.sentence() and "inconclusive (under-trained)" in bad.sentence()
    none = Control("LSTM, adding T=50", "-", 0, 0).part()
    assert none.verdict == INCONCLUSIVE and none.reason == "under-trained: control not run"
    assert "did not run" in Control("x", "-", 0, 0).sentence()
    rate = ok.rate
    assert rate.value == 0.9 and rate.method == "wilson" and rate.lo < 0.9 < rate.hi


def test_control_counts_runs_and_a_run_learnt_only_if_each_of_its_cells_did() -> None:
    def rec(final: float, seed: int, backend: str = "torch", **kw) -> dict:
        return train("L2", final, 0.16, threshold=0.01, seed=seed, backend=backend, head_kind="regress", **kw)

    recs = [rec(0.005, s) for s in range(4)] + [rec(0.005, s, backend="jax") for s in range(4)]
    recs += [rec(0.005, 9), rec(0.5, 9, seq_len=200)]  # one run, two cells: one did not learn
    ctrl = control(recs, learnt, "setting", "criterion")
    assert (ctrl.learnt, ctrl.runs) == (8, 9)  # a seed on each backend is a run of its own
    assert solve_rate(recs, learnt).value == pytest.approx(8 / 9)
    # learnt: mse <= threshold, accuracy >= threshold; a diverged run or one with no threshold never learnt
    assert learnt(rec(0.01, 0)) and not learnt(rec(0.0101, 0))
    assert learnt(train("L6", 0.95, 0.25, threshold=0.95)) and not learnt(train("L6", 0.949, 0.25, threshold=0.95))
    assert not learnt(train("L6", 0.99, 0.25, threshold=0.95, status="diverged"))
    assert not learnt(train("L6", 0.99, 0.25))


# -- gating and combining ------------------------------------------------------------------------


def _ctrl(learnt_runs: int, name: str = "task A") -> Control:
    return Control(name, "criterion", learnt_runs, 20)


def test_gate_keeps_parts_behind_a_passed_control_and_shows_the_others() -> None:
    parts = [Part("A: effect", "0.1", CONFIRMED, "inside"), Part("A: other", "0.2", REFUTED, "outside", core=True)]
    assert gate(parts, _ctrl(20)) == parts
    gated = gate(parts, _ctrl(10))
    assert [(p.name, p.measured, p.verdict, p.core) for p in gated] == [
        (p.name, p.measured, p.verdict, p.core) for p in parts
    ]
    assert all(not p.decides and p.reason.startswith("not judged, under-trained (task A)") for p in gated)


def test_judged_with_every_some_and_no_control_passing() -> None:
    a_ctrl, b_ctrl = _ctrl(20, "task A"), _ctrl(20, "task B")
    a_parts = [Part("A: effect", "0.1", CONFIRMED, "inside")]
    b_parts = [Part("B: effect", "-0.1", REFUTED, "opposite")]

    def parts(a: Control, b: Control) -> list[Part]:
        return [a.part(), *gate(a_parts, a), b.part(), *gate(b_parts, b)]

    every = judged(parts(a_ctrl, b_ctrl))
    assert every.verdict == PARTLY  # plain combine: A holds, B is refuted
    some = judged(parts(a_ctrl, _ctrl(10, "task B")))
    assert some.verdict == CONFIRMED  # from task A alone
    assert "(not judged: under-trained: task B learnt in 10/20 runs" in some.reason
    assert len(some.parts) == 4  # every part stays in the table
    none = judged(parts(_ctrl(10, "task A"), _ctrl(0, "task B")))
    assert none.verdict == INCONCLUSIVE and none.reason.startswith("under-trained: task A learnt in 10/20 runs")
    assert "task B" in none.reason
    # a control that failed with nothing else measured: its own part is the only one, and it is undecided
    alone = judged([_ctrl(10).part()])
    assert alone.verdict == INCONCLUSIVE
    assert judged([]).verdict == NOT_RUN


def test_judged_when_the_passing_tasks_decide_nothing() -> None:
    """Task A's control passed but its parts are shown only (delayed recall in L9); task B, the one that
    decides, failed its control: nothing decides, and the verdict is under-trained, not "not run"."""
    a, b = _ctrl(20, "task A"), _ctrl(0, "task B")
    parts = [a.part(), Part("A: curve", "-", CONFIRMED, "falls", decides=False), b.part()]
    parts += gate([Part("B: curve", "-", CONFIRMED, "falls")], b)
    res = judged(parts)
    assert res.verdict == INCONCLUSIVE and res.reason.startswith("under-trained: task B")


# -- run minimums --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("binary", "need"), [(True, MIN_BINARY_RUNS), (False, MIN_CONTINUOUS_RUNS)])
def test_require_runs(binary: bool, need: int) -> None:
    assert (MIN_BINARY_RUNS, MIN_CONTINUOUS_RUNS) == (20, 5)
    kind = "solve-or-not" if binary else "continuous"
    for verdict in (CONFIRMED, PARTLY, REFUTED):  # every decided verdict needs the runs
        j = Judgement(verdict, "why")
        assert require_runs(j, need, binary) == j
        short = require_runs(j, need - 1, binary)
        assert short.verdict == INCONCLUSIVE
        assert short.reason == f"why; but {need - 1} runs < the {need} a {kind} outcome needs"
    for verdict in (INCONCLUSIVE, NOT_RUN):  # an undecided judgement stays as it is
        assert require_runs(Judgement(verdict, "why"), 1, binary).verdict == verdict


# -- intervals -----------------------------------------------------------------------------------------


def _wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 5), (5, 5), (1, 20), (17, 20), (18, 20), (50, 100), (81, 263)])
def test_wilson_matches_scipy_and_the_closed_form(k: int, n: int) -> None:
    est = wilson(k, n)
    ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (est.lo, est.hi) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))
    lo, hi = _wilson_closed_form(k, n)
    assert est.lo == pytest.approx(lo, abs=1e-9) and est.hi == pytest.approx(hi, abs=1e-9)
    assert est.value == k / n and est.n == n and est.method == "wilson"


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score without correction)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_textbook_values(k: int, n: int, lo: float, hi: float) -> None:
    est = wilson(k, n)
    assert (round(est.lo, 4), round(est.hi, 4)) == (lo, hi)


def test_no_runs_gives_no_proportion() -> None:
    for est in (wilson(0, 0), exact_proportion(0, 0), proportion_difference(1, 2, 0, 0)):
        assert math.isnan(est.value) and est.n == 0 and not est.has_ci


def test_exact_proportion_is_clopper_pearson_and_contains_wilson() -> None:
    # Clopper-Pearson from the beta quantiles
    k, n = 3, 20
    est = exact_proportion(k, n)
    assert est.lo == pytest.approx(scipy_stats.beta.ppf(0.025, k, n - k + 1), abs=1e-9)
    assert est.hi == pytest.approx(scipy_stats.beta.ppf(0.975, k + 1, n - k), abs=1e-9)
    assert exact_proportion(0, 20).hi == pytest.approx(1 - 0.025 ** (1 / 20), abs=1e-9)
    # contains Wilson's interval for every k when n <= 45 (checked: every k up to 45; here, n <= 15), and
    # for proportions of 10%-90% (checked up to n = 300; here, a few)
    cases = [(k, n) for n in range(1, 16) for k in range(n + 1)]
    cases += [(k, n) for n in (46, 100, 300) for k in (math.ceil(0.1 * n), n // 3, n // 2, math.floor(0.9 * n))]
    for k, n in cases:
        w, c = wilson(k, n), exact_proportion(k, n)
        assert c.lo <= w.lo + 1e-12 and w.hi <= c.hi + 1e-12, (k, n)


def test_exact_can_be_narrower_than_wilson_at_zero_of_many() -> None:
    """stats.exact_proportion's docstring says "never narrower than Wilson's": at 0/n from n = 46 it is
    (Wilson's upper bound z^2/(n+z^2) exceeds Clopper-Pearson's 1 - 0.025^(1/n)), and near 1/n it stops
    containing Wilson's interval (from n = 97)."""
    assert exact_proportion(0, 45).width >= wilson(0, 45).width
    assert exact_proportion(0, 46).width < wilson(0, 46).width
    assert exact_proportion(1, 100).hi < wilson(1, 100).hi


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "lo", "hi"),
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10 (hybrid score, no correction)
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
    ],
)
def test_proportion_difference_is_newcombes_hybrid_score(k1, n1, k2, n2, lo, hi) -> None:
    est = proportion_difference(k1, n1, k2, n2)
    assert est.value == pytest.approx(k1 / n1 - k2 / n2)
    assert (round(est.lo, 4), round(est.hi, 4)) == (lo, hi)
    assert est.method == "newcombe" and est.n == min(n1, n2)
    flipped = proportion_difference(k2, n2, k1, n1)  # antisymmetric
    assert (flipped.lo, flipped.hi) == (pytest.approx(-est.hi), pytest.approx(-est.lo))
    assert -1.0 <= est.lo <= est.value <= est.hi <= 1.0


@pytest.mark.parametrize("df", [1, 2, 4, 9, 19, 29, 100, 10_000])
def test_t975_is_scipys(df: int) -> None:
    assert t975(df) == pytest.approx(float(scipy_stats.t.ppf(0.975, df)), rel=1e-12)


def test_t975_textbook_values() -> None:
    assert [round(t975(d), 3) for d in (1, 2, 4, 9, 19)] == [12.706, 4.303, 2.776, 2.262, 2.093]
    assert t975(10**7) == pytest.approx(1.95996, abs=1e-4)
    assert math.isnan(t975(0))


def test_a_decreasing_map_keeps_the_lower_bound_lower() -> None:
    from experiments.claims.stats import Estimate

    neg = Estimate(0.5, 0.2, 0.9, n=5).map(lambda v: -v)
    assert (neg.value, neg.lo, neg.hi) == (-0.5, -0.9, -0.2)
