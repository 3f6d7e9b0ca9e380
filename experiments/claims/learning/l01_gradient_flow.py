"""L1: gradient flow to the first input at initialisation, RNN against LSTM."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from experiments.claims.base import ClaimResult, FigureSpec, Panel, Series, Table, fmt, not_run
from experiments.claims.common import by, device_rows
from experiments.claims.learning.common import finish, per_seed, seeds_note, train_records
from experiments.claims.readings import L1_VANISHED
from experiments.claims.registry import claim
from experiments.claims.stats import Estimate, mean_ci
from experiments.claims.verdict import (
    CONFIRMED,
    INCONCLUSIVE,
    PARTLY,
    REFUTED,
    Part,
    describe,
    judge_direction,
    judge_single,
)
from experiments.records import fields as R
from experiments.records.fields import Record


def _log_ratio(rec: Record) -> float:
    value = R.fmetric(rec, "log10_ratio_first_last")
    if math.isfinite(value):
        return value
    ratio = R.fmetric(rec, "ratio_first_last")
    return math.log10(ratio) if ratio > 0 else -math.inf


MISTAKE = "time_major_mistake"


def _forget_bias(rec: Record) -> float | None:
    """The forget-gate bias the record set: a value, or the retention length's logit(0.5^(1/N))."""
    bias, retention = R.spec_field(rec, "forget_bias"), R.spec_field(rec, "forget_retention")
    if retention is not None:
        return math.log(0.5 ** (1 / retention) / (1 - 0.5 ** (1 / retention)))
    return None if bias is None else float(bias)


def _variant(rec: Record) -> str:
    """The architecture, its forget-gate bias when set (``lstm``, ``lstm b_f=1``, ``lstm N=50``) and the
    source's layout mistake: the claim is about the default initialisation; the rest is reported beside it."""
    name = R.arch(rec)
    bias, retention = R.spec_field(rec, "forget_bias"), R.spec_field(rec, "forget_retention")
    if retention is not None:
        name += f" N={retention}"
    elif bias is not None:
        name += f" b_f={bias:g}"
    if R.setting(rec, "layout") == MISTAKE:
        name += " (batch_first mistake)"
    return name


@claim(
    id="L1",
    priority="P1",
    source="002 (Q6)",
    statement=(
        "Over 100 steps the gradient reaching the first input vanishes in a vanilla RNN (ratio first/last ≈ 1e-6) "
        "but is preserved in an LSTM (≈ 0.85)."
    ),
    measure=(
        "‖∂L/∂x_t‖ for every t at initialisation, RNN / LSTM / GRU, T in {50, 100, 200}, many seeds, both backends."
    ),
    family="learning",
)
def analyze(records: Sequence[Record]) -> ClaimResult:
    recs, okr = train_records(records, "L1", kinds=("grad_flow",))
    okr = [r for r in okr if R.ok(r)]
    if not okr:
        return not_run("L1", "grad_flow probe cells (RNN/LSTM/GRU, T in {50, 100, 200})")
    table_rows: list[list] = []
    panels: list[Panel] = []
    agreement: list[str] = []

    def judge(dev_recs: list[Record], dev: str) -> tuple[list[Part], str]:
        parts, summary = [], []
        curve_panel = Panel(f"{dev}: |dL/dx_t| / |dL/dx_T| at init (T=100)", "t", "relative norm", logy=True)
        ratio_panel = Panel(f"{dev}: first/last ratio vs T", "T", "ratio", logy=True)
        ests: dict[tuple, Estimate] = {}
        for (be, arch_name, t), grecs in by(dev_recs, R.backend, _variant, R.seq_len).items():
            logs = [v for v in per_seed(grecs, _log_ratio).values()]
            finite = [v for v in logs if math.isfinite(v)]
            est = mean_ci(finite).map(lambda v: 10.0**v) if finite else Estimate(0.0, n=len(logs))
            ests[(be, arch_name, t)] = est
            table_rows.append([dev, be, arch_name, t, len(logs), describe(est), len(logs) - len(finite)])
            if t == 100 or (t == min(x[2] for x in ests) and 100 not in {R.seq_len(r) for r in dev_recs}):
                norms = [R.metric(r, "grad_norms") or [] for r in grecs]
                norms = [n for n in norms if n and n[-1] > 0]
                if norms:
                    rel = np.exp(np.mean([np.log(np.maximum(np.asarray(n) / n[-1], 1e-300)) for n in norms], axis=0))
                    curve_panel.series.append(
                        Series(f"{arch_name} ({be})", list(range(1, len(rel) + 1)), rel.tolist(), style="-")
                    )
        for (be, arch_name), _ in by(dev_recs, R.backend, _variant).items():
            ts = sorted(t for (b, a, t) in ests if b == be and a == arch_name)
            ratio_panel.series.append(Series(f"{arch_name} ({be})", ts, [ests[(be, arch_name, t)].value for t in ts]))
        ratio_panel.hlines = [(1e-6, "claimed RNN 1e-6"), (0.85, "claimed LSTM 0.85")]
        panels.extend([curve_panel, ratio_panel])
        backends = sorted({b for (b, _, _) in ests})
        ts = sorted({t for (_, _, t) in ests})
        head_t = 100 if 100 in ts else (ts[len(ts) // 2] if ts else None)
        for be in backends:
            rnn, lstm = ests.get((be, "rnn", head_t)), ests.get((be, "lstm", head_t))
            if rnn is not None:
                lo, hi = rnn.bounds()
                if hi < L1_VANISHED.value:
                    j = judge_single(rnn, 1e-6, null=1.0)
                    verdict = CONFIRMED if j.verdict == CONFIRMED else PARTLY
                    reason = j.reason if verdict == CONFIRMED else f"vanishes, but {describe(rnn)} is not 1e-6 +- 25%"
                elif lo > L1_VANISHED.value:
                    verdict, reason = REFUTED, f"does not vanish: {describe(rnn)} > {L1_VANISHED.value}"
                else:
                    verdict, reason = INCONCLUSIVE, f"{describe(rnn)} straddles {L1_VANISHED.value}"
                parts.append(Part(f"{be}: RNN vanishes (T={head_t})", describe(rnn), verdict, reason))
                summary.append(f"{be} RNN {describe(rnn)}")
            if lstm is not None:
                lo, hi = lstm.bounds()
                if hi < L1_VANISHED.value:
                    verdict, reason = (
                        REFUTED,
                        f"the LSTM's gradient vanishes too: {describe(lstm)} < {L1_VANISHED.value}",
                    )
                elif lo > L1_VANISHED.value:
                    j = judge_single(lstm, 0.85, null=0.0)
                    verdict = CONFIRMED if j.verdict == CONFIRMED else PARTLY
                    reason = j.reason if verdict == CONFIRMED else f"preserved, but {describe(lstm)} is not 0.85 +- 25%"
                else:
                    verdict, reason = INCONCLUSIVE, f"{describe(lstm)} straddles {L1_VANISHED.value}"
                parts.append(Part(f"{be}: LSTM preserves (T={head_t})", describe(lstm), verdict, reason, core=True))
                summary.append(f"{be} LSTM {describe(lstm)}")
            if rnn is not None and lstm is not None and rnn.value > 0:
                contrast = Estimate(lstm.value / rnn.value)
                j = judge_direction(contrast, null=1.0, what="LSTM/RNN ratio")
                parts.append(Part(f"{be}: LSTM keeps more than RNN", fmt(contrast.value), j.verdict, j.reason))
        # The backends must agree: compare the same seed's log ratio.
        for (arch_name, t), grecs in by(dev_recs, _variant, R.seq_len).items():
            per_be = {
                be: {seed: v for (_, seed), v in per_seed(recs_be, _log_ratio).items()}
                for be, recs_be in by(grecs, R.backend).items()
            }
            if len(per_be) == 2:
                (b1, s1), (b2, s2) = per_be.items()
                diffs = [abs(s1[s] - s2[s]) for s in set(s1) & set(s2) if math.isfinite(s1[s]) and math.isfinite(s2[s])]
                if diffs:
                    agreement.append(f"{dev} {arch_name} T={t}: max |log10 ratio {b1} - {b2}| = {fmt(max(diffs))}")
        return parts, "; ".join(summary)

    rows, parts = device_rows(okr, judge)
    sweep_table, sweep_text = _bias_sweep(okr)
    mistake_text = _mistake(okr)
    table = Table(
        "L1_gradient_ratio",
        "L1: |dL/dx_1| / |dL/dx_T| at initialisation (geometric mean over seeds, 95% interval)",
        ["device", "backend", "arch", "T", "seeds", "first/last", "seeds with ratio 0"],
        table_rows,
    )
    figs = [
        FigureSpec(
            "L1_gradient_flow",
            "L1: input-gradient norm per step at initialisation, relative to the last "
            "step (left), and the first/last ratio vs T (right).",
            panels,
        )
    ]
    text = (
        "Measured what the claim says: the norm of the loss gradient with respect to each input x_t, for a "
        "loss on the final state (the sequence head), at initialisation, and the ratio of the first step's to "
        "the last step's. (The source's snippet takes, for the LSTM, a loss on the cell state and reports "
        "last/first; neither is the quantity claimed.) A ratio below "
        f"{L1_VANISHED.value} counts as vanished. {seeds_note(okr)}. No positive control applies: nothing is "
        "trained, every number is a property of the initialisation."
        + (f" {sweep_text}" if sweep_text else "")
        + (f" {mistake_text}" if mistake_text else "")
        + ("\n\nBackend agreement: " + "; ".join(agreement) + "." if agreement else "")
    )
    tables = [table] + ([sweep_table] if sweep_table else [])
    return finish("L1", rows, parts, tables, figs, text, recs)


def _bias_sweep(recs: Sequence[Record]) -> tuple[Table | None, str]:
    """The LSTM's first/last ratio against its forget-gate bias (PyTorch's default init counts as
    bias 0 in expectation), per T: how much of "preserved" is the initialisation."""
    lstm = [r for r in recs if R.arch(r) == "lstm" and R.setting(r, "layout", "batch_first") != MISTAKE]
    biased = [r for r in lstm if _forget_bias(r) is not None]
    if not biased:
        return None, ""
    rows, said = [], []
    for (dev, be, t), grecs in by(lstm, R.device, R.backend, R.seq_len).items():
        for b, brecs in sorted(
            by(grecs, lambda r: _forget_bias(r)).items(), key=lambda kv: (kv[0] is not None, kv[0] or 0)
        ):
            logs = [v for v in per_seed(brecs, _log_ratio).values() if math.isfinite(v)]
            est = mean_ci(logs).map(lambda v: 10.0**v) if logs else Estimate(0.0)
            label = "default init" if b is None else fmt(b)
            rows.append([dev, be, t, label, len(brecs), describe(est)])
            if t == 100 and be == "torch":
                said.append(f"{label}: {fmt(est.value)}")
    table = Table(
        "L1_forget_bias_sweep",
        "L1: the LSTM's first/last input-gradient ratio at initialisation by forget-gate bias (geometric mean, 95%)",
        ["device", "backend", "T", "forget bias", "seeds", "first/last"],
        rows,
    )
    text = (
        "How the LSTM's ratio depends on its forget-gate bias (T=100, torch): " + "; ".join(said) + "." if said else ""
    )
    return table, text


def _mistake(recs: Sequence[Record]) -> str:
    """The source's number, reproduced: its snippet fed (1, T, I) to an LSTM built without batch_first."""
    bad = [r for r in recs if R.setting(r, "layout") == MISTAKE]
    if not bad:
        return ""
    parts = []
    for (a, t), grecs in by(bad, R.arch, R.seq_len).items():
        logs = [v for v in per_seed(grecs, _log_ratio).values() if math.isfinite(v)]
        parts.append(f"{a.upper()} T={t}: {describe(mean_ci(logs).map(lambda v: 10.0**v))} over {len(logs)} seeds")
    return (
        "Where the source's 0.85 comes from: its snippet omits batch_first=True, so a (1, T, I) input is read as "
        "T one-step sequences and 'the gradient at step t' belongs to an unrelated sequence; the same cell with that "
        "layout gives a first/last ratio of " + "; ".join(parts) + ", of order 1 whatever the recurrence does."
    )
