"""Two results folders side by side: claim by claim and device by device, verdict in each, the
deciding numbers, and flags where a verdict flips or a number leaves the other's interval.

A claim's result carries its verdict per device (``DeviceVerdict``) and, inside it, the parts the
verdict was combined from (``Part``). A part names what it measured as text (``describe`` in
``experiments.claims.verdict``: ``value [lo, hi]`` for an estimate with a 95% interval); the
numbers are read back from that text, since parts keep no ``Estimate`` objects. Rows are matched
by claim and device kind (``cpu``, ``cuda``), not by device name: two machines' CPUs differ in
name and are still the same row. Parts are matched by name within a row.

A number "leaves the other's interval" when one side's value lies outside the other side's
interval (intervals compared in the order the part's text gives them). It is a report, not a test:
nothing here decides which side is right.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from experiments.claims.base import ClaimResult, DeviceVerdict
from experiments.claims.verdict import NOT_RUN, Part
from experiments.report.verdicts import device_kind

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|nan|-?inf"
INTERVAL = re.compile(rf"(?<![\w.])({_NUMBER}) \[({_NUMBER}), ({_NUMBER})\]")


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval, as a part's text gives it."""

    value: float
    lo: float
    hi: float

    def holds(self, x: float) -> bool:
        return self.lo <= x <= self.hi


def intervals(text: str) -> list[Interval]:
    """Every ``value [lo, hi]`` in ``text``, in order."""
    return [Interval(float(v), float(lo), float(hi)) for v, lo, hi in INTERVAL.findall(text)]


def leaves(a: Sequence[Interval], b: Sequence[Interval]) -> list[str]:
    """Where one side's value lies outside the other's interval: one line each (empty when none, or when
    the two texts give different numbers of intervals and cannot be paired)."""
    if len(a) != len(b):
        return []
    out = []
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x.value == y.value or not (math.isfinite(x.value) and math.isfinite(y.value)):
            continue
        if not y.holds(x.value) or not x.holds(y.value):
            out.append(f"#{i + 1}: {x.value:g} [{x.lo:g}, {x.hi:g}] vs {y.value:g} [{y.lo:g}, {y.hi:g}]")
    return out


@dataclass
class Side:
    """One folder's view of a row or a part: its verdict and what it measured."""

    verdict: str
    measured: str = "-"
    device: str = "-"  # the row's device label (its device's name); "-" for a part


@dataclass
class PartComparison:
    name: str
    a: Side
    b: Side
    leaves: list[str] = field(default_factory=list)

    @property
    def flips(self) -> bool:
        return self.a.verdict != self.b.verdict


@dataclass
class RowComparison:
    claim_id: str
    device: str  # the device kind: cpu, cuda, cpu+cuda, or "-" where neither side ran the claim
    a: Side
    b: Side
    parts: list[PartComparison] = field(default_factory=list)

    @property
    def both(self) -> bool:
        """Both sides have a verdict: the rows the summary counts."""
        return NOT_RUN not in (self.a.verdict, self.b.verdict)

    @property
    def flips(self) -> bool:
        return self.both and self.a.verdict != self.b.verdict

    @property
    def compared(self) -> bool:
        """At least one side has a verdict (a claim run on neither side is listed, not shown)."""
        return self.a.verdict != NOT_RUN or self.b.verdict != NOT_RUN

    @property
    def leaving(self) -> list[str]:
        return [f"{p.name}: {line}" for p in self.parts for line in p.leaves]


@dataclass
class Comparison:
    a: str
    b: str
    rows: list[RowComparison]

    @property
    def compared(self) -> list[RowComparison]:
        return [r for r in self.rows if r.compared]

    @property
    def agree(self) -> int:
        return sum(r.both and not r.flips for r in self.rows)

    def summary(self) -> str:
        """``14 of 16 verdicts agree; S6 (cpu) flips: inconclusive -> partly; ...``: the verdicts both sides
        have; then those only one side has (a reproduction still running), and the numbers that left."""
        rows = self.compared
        both = [r for r in rows if r.both]
        text = f"{self.agree} of {len(both)} verdicts agree"
        flips = [f"{r.claim_id} ({r.device}) flips: {r.a.verdict} -> {r.b.verdict}" for r in rows if r.flips]
        if flips:
            text += "; " + "; ".join(flips)
        for side, name in (("b", "B"), ("a", "A")):
            missing = [f"{r.claim_id} ({r.device})" for r in rows if getattr(r, side).verdict == NOT_RUN]
            if missing:
                text += f"; not run in {name}: {', '.join(missing)}"
        outside = [f"{r.claim_id} ({r.device}) {len(r.leaving)}" for r in rows if r.leaving]
        if outside:
            text += "; numbers outside the other's interval: " + ", ".join(outside)
        else:
            text += "; no number leaves the other's interval"
        return text

    def to_json(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            row = asdict(r)
            row.update(flips=r.flips, both=r.both, compared=r.compared, leaves=r.leaving)
            for part, obj in zip(row["parts"], r.parts, strict=True):
                part["flips"] = obj.flips
            rows.append(row)
        return {
            "a": self.a,
            "b": self.b,
            "summary": self.summary(),
            "compared": sum(r.both for r in self.rows),
            "agree": self.agree,
            "rows": rows,
        }


def _rows_by_kind(res: ClaimResult | None) -> dict[str, DeviceVerdict]:
    if res is None:
        return {}
    return {device_kind(row.device): row for row in res.rows if row.verdict.verdict != NOT_RUN}


def _parts(a: DeviceVerdict | None, b: DeviceVerdict | None) -> list[PartComparison]:
    pa: dict[str, Part] = {p.name: p for p in (a.verdict.parts if a else [])}
    pb: dict[str, Part] = {p.name: p for p in (b.verdict.parts if b else [])}
    out = []
    for name in [*pa, *(n for n in pb if n not in pa)]:
        x, y = pa.get(name), pb.get(name)
        sa = Side(x.verdict, x.measured) if x else Side(NOT_RUN)
        sb = Side(y.verdict, y.measured) if y else Side(NOT_RUN)
        lines = leaves(intervals(x.measured), intervals(y.measured)) if x and y else []
        out.append(PartComparison(name, sa, sb, lines))
    return out


def _side(row: DeviceVerdict | None) -> Side:
    if row is None:
        return Side(NOT_RUN)
    return Side(row.verdict.verdict, row.measured, row.device)


def compare_results(a: dict[str, ClaimResult], b: dict[str, ClaimResult], names: tuple[str, str]) -> Comparison:
    """Row by row, the two analyses (``analyze_all`` of each folder's records), claims in ``a``'s order."""
    rows = []
    for cid in [*a, *(c for c in b if c not in a)]:
        ra, rb = _rows_by_kind(a.get(cid)), _rows_by_kind(b.get(cid))
        kinds = [*ra, *(k for k in rb if k not in ra)]
        if not kinds:
            rows.append(RowComparison(cid, "-", Side(NOT_RUN), Side(NOT_RUN)))
        for kind in kinds:
            x, y = ra.get(kind), rb.get(kind)
            rows.append(RowComparison(cid, kind, _side(x), _side(y), _parts(x, y)))
    return Comparison(names[0], names[1], rows)


def compare_dirs(a_dir: str | Path, b_dir: str | Path) -> Comparison:
    """``compare_results`` of the records in two results folders (the same folder is analysed once)."""
    from experiments.claims import analyze_all
    from experiments.records.fields import load_records

    a = analyze_all(load_records(a_dir))
    b = a if Path(a_dir).resolve() == Path(b_dir).resolve() else analyze_all(load_records(b_dir))
    return compare_results(a, b, (str(a_dir), str(b_dir)))


def text_lines(cmp: Comparison, parts: bool = True) -> list[str]:
    """The comparison for a person: one line per row (flagged), its parts' numbers below, the summary last."""
    out = [f"A = {cmp.a}", f"B = {cmp.b}", ""]
    for r in cmp.compared:
        flag = "FLIPS" if r.flips else ("agree" if r.both else f"not run in {'B' if r.a.verdict != NOT_RUN else 'A'}")
        if r.leaving:
            flag += f", {len(r.leaving)} number(s) outside the other's interval"
        out.append(f"{r.claim_id} {r.device}: A {r.a.verdict} | B {r.b.verdict}   [{flag}]")
        if r.a.device != r.b.device:
            out.append(f"    devices: A {r.a.device} | B {r.b.device}")
        if not parts:
            continue
        for p in r.parts:
            marks = (["verdict flips"] if p.flips else []) + (["leaves interval"] if p.leaves else [])
            mark = f"   <- {', '.join(marks)}" if marks else ""
            out.append(f"    {p.name}{mark}")
            out.append(f"        A {p.a.verdict}: {p.a.measured}")
            out.append(f"        B {p.b.verdict}: {p.b.measured}")
    not_run = [r.claim_id for r in cmp.rows if not r.compared]
    if not_run:
        out += ["", f"not run in either: {', '.join(not_run)}"]
    out += ["", cmp.summary()]
    return out
