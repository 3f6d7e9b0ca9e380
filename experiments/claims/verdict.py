"""Verdicts by the rules of CLAIMS.md, computed from estimates, never typed.

- confirmed: the effect has the claimed direction and lies inside the claimed range
  (a single claimed number: within +-25% of it).
- partly: the direction holds but the size is outside the range, or it holds only in a
  regime the claim did not name (the reason says which).
- refuted: the opposite direction, or no effect where one was claimed, with an interval
  that excludes the claim.
- inconclusive: the interval is too wide to decide (the reason says what would decide it).
- not run: no records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from experiments.claims.stats import Estimate

CONFIRMED, PARTLY, REFUTED, INCONCLUSIVE, NOT_RUN = "confirmed", "partly", "refuted", "inconclusive", "not run"
VERDICTS: tuple[str, ...] = (CONFIRMED, PARTLY, REFUTED, INCONCLUSIVE, NOT_RUN)
SINGLE_NUMBER_TOLERANCE = 0.25
MAX_LISTED = 4  # parts named in a verdict's reason; the parts table lists them all


@dataclass(frozen=True)
class Judgement:
    verdict: str
    reason: str


@dataclass(frozen=True)
class Part:
    """One checked statement inside a claim: its name, what was measured, and its judgement."""

    name: str
    measured: str
    verdict: str
    reason: str = ""
    core: bool = False  # a refuted core part refutes the whole claim (the claim's main point)
    decides: bool = True  # False: shown for its evidence, judged through another part (a disjunction's halves)


@dataclass
class Verdict:
    verdict: str
    reason: str
    parts: list[Part] = field(default_factory=list)


def around(value: float, tolerance: float = SINGLE_NUMBER_TOLERANCE) -> tuple[float, float]:
    """The claimed range of a single number: value +- 25%."""
    a, b = value * (1 - tolerance), value * (1 + tolerance)
    return (min(a, b), max(a, b))


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x.is_integer() and abs(x) < 1e7:
        return str(int(x))
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.3g}"


def describe(est: Estimate) -> str:
    if est.has_ci:
        return f"{_fmt(est.value)} [{_fmt(est.lo)}, {_fmt(est.hi)}]"
    return _fmt(est.value)


def judge_range(est: Estimate, claimed: tuple[float, float], null: float) -> Judgement:
    """An effect claimed to lie in ``claimed`` = (lo, hi), on one side of ``null`` (no effect)."""
    lo_c, hi_c = claimed
    if not math.isfinite(est.value):
        return Judgement(NOT_RUN, "no finite measurement")
    sign = 1.0 if (lo_c + hi_c) / 2 > null else -1.0
    lo, hi = est.bounds()
    side_lo, side_hi = sorted((sign * (lo - null), sign * (hi - null)))
    in_range = lo_c <= est.value <= hi_c
    overlaps = hi >= lo_c and lo <= hi_c
    if side_hi < 0:
        return Judgement(REFUTED, f"opposite direction: {describe(est)} vs claimed [{_fmt(lo_c)}, {_fmt(hi_c)}]")
    if side_lo <= 0:  # the interval holds "no effect"
        if not overlaps:
            return Judgement(
                REFUTED, f"no effect: {describe(est)} includes {_fmt(null)} and excludes [{_fmt(lo_c)}, {_fmt(hi_c)}]"
            )
        return Judgement(
            INCONCLUSIVE,
            f"{describe(est)} includes both no effect ({_fmt(null)}) and the claim; more seeds or repeats decide",
        )
    if in_range:
        return Judgement(CONFIRMED, f"{describe(est)} inside claimed [{_fmt(lo_c)}, {_fmt(hi_c)}]")
    if not overlaps:
        return Judgement(PARTLY, f"direction holds, size {describe(est)} outside claimed [{_fmt(lo_c)}, {_fmt(hi_c)}]")
    return Judgement(
        INCONCLUSIVE,
        f"direction holds; {describe(est)} straddles the claimed [{_fmt(lo_c)}, {_fmt(hi_c)}]; "
        "a narrower interval decides",
    )


def judge_direction(est: Estimate, null: float, sign: float = 1.0, what: str = "effect") -> Judgement:
    """A claim that names a direction only (``sign`` > 0: the estimate exceeds ``null``)."""
    if not math.isfinite(est.value):
        return Judgement(NOT_RUN, "no finite measurement")
    lo, hi = est.bounds()
    side_lo, side_hi = sorted((sign * (lo - null), sign * (hi - null)))
    if side_lo > 0:
        return Judgement(CONFIRMED, f"{what} {describe(est)} on the claimed side of {_fmt(null)}")
    if side_hi < 0:
        return Judgement(REFUTED, f"opposite direction: {what} {describe(est)} vs {_fmt(null)}")
    return Judgement(INCONCLUSIVE, f"{what} {describe(est)} includes {_fmt(null)}; more seeds decide")


def judge_single(est: Estimate, claimed: float, null: float) -> Judgement:
    return judge_range(est, around(claimed), null)


def combine(parts: Sequence[Part], what: str = "") -> Verdict:
    """A claim's verdict from its parts.

    not run when every part is; refuted when every run part is, or when a core part (the
    claim's main point) is; confirmed when every run part is confirmed; inconclusive when an
    undecided part remains and nothing is refuted; partly otherwise (some parts hold, others
    are off in size or refuted), naming which.
    """
    run = [p for p in parts if p.verdict != NOT_RUN and p.decides]
    if not run:
        return Verdict(NOT_RUN, "no records", list(parts))

    def names(verdicts: set[str], why: bool = False) -> str:
        chosen = [p for p in run if p.verdict in verdicts]
        shown = [f"{p.name} ({p.reason})" if why and p.reason else p.name for p in chosen[:MAX_LISTED]]
        more = len(chosen) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")

    kinds = {p.verdict for p in run}
    core_refuted = [p for p in run if p.core and p.verdict == REFUTED]
    if kinds == {CONFIRMED}:
        verdict, reason = CONFIRMED, f"every part confirmed: {names({CONFIRMED})}"
    elif kinds == {REFUTED} or core_refuted:
        verdict, reason = REFUTED, f"refuted: {names({REFUTED}, why=True)}"
        if kinds - {REFUTED}:
            reason += f"; other parts: {names(kinds - {REFUTED})}"
    elif INCONCLUSIVE in kinds:
        verdict, reason = INCONCLUSIVE, f"undecided: {names({INCONCLUSIVE}, why=True)}"
    elif REFUTED in kinds:
        verdict, reason = PARTLY, f"holds for {names({CONFIRMED, PARTLY})}; not for {names({REFUTED}, why=True)}"
    else:
        verdict, reason = PARTLY, f"partly: {names({PARTLY}, why=True)}"
        if CONFIRMED in kinds:
            reason += f"; confirmed: {names({CONFIRMED})}"
    missing = [p.name for p in parts if p.verdict == NOT_RUN and p.decides]
    if missing:
        reason += f" (not run: {', '.join(missing)})"
    return Verdict(verdict, reason, list(parts))
