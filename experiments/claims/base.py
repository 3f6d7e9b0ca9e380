"""What a claim module provides, and what its analysis returns.

A claim is an ID, its source, the statement quoted from CLAIMS.md, how it is
measured, and ``analyze(records) -> ClaimResult``: numbers, tables, figures and
verdicts computed from result records only. A claim with no records reports
"not run". Cost claims (S) give one verdict per device, kept apart; a claim about
GPUs judged on a CPU alone says so in its verdict row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from experiments.claims.verdict import NOT_RUN, Part, Verdict
from experiments.records.fields import Record


@dataclass
class Table:
    """A table: ``name`` is its file stem (``results/tables/<name>.md`` and ``.csv``)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float]
    lo: list[float] | None = None  # a 95% band, when there is one
    hi: list[float] | None = None
    style: str = "-o"


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    series: list[Series] = field(default_factory=list)
    logx: bool = False
    logy: bool = False
    hlines: list[tuple[float, str]] = field(default_factory=list)  # reference levels (value, label)
    image: list[list[float]] | None = None  # a heat map instead of lines (rows x columns)


@dataclass
class FigureSpec:
    """A figure: ``name`` is its file stem (``paper/figures/<name>.png`` and ``.svg``)."""

    name: str
    caption: str
    panels: list[Panel]


@dataclass
class DeviceVerdict:
    """One row of the verdict table: a claim judged on one device."""

    device: str  # "cpu (model name)", "cuda (GPU name)", or "cpu+cuda" for learning claims run on both
    verdict: Verdict
    measured: str
    note: str = ""  # e.g. "CPU only: the claim is about GPUs"


@dataclass
class ClaimResult:
    claim_id: str
    rows: list[DeviceVerdict]
    text: str = ""  # Markdown: what was measured and what it shows, numbers included
    tables: list[Table] = field(default_factory=list)
    figures: list[FigureSpec] = field(default_factory=list)
    n_records: int = 0
    records: list[Record] = field(default_factory=list)  # the records the verdict was computed from

    def grids(self, device: str | None = None) -> list[str]:
        """The grids of the records the verdict used (on ``device``, ``cpu`` or ``cuda``, when given)."""
        return sorted({str(r.get("grid")) for r in self.records if device in (None, r.get("config", {}).get("device"))})

    @property
    def verdict(self) -> str:
        return self.rows[0].verdict.verdict if self.rows else NOT_RUN


@dataclass(frozen=True)
class Claim:
    id: str
    priority: str  # P1 | P2 | P3
    source: str
    statement: str
    measure: str
    family: str  # "cost" | "learning"
    analyze: Callable[[list[Record]], ClaimResult]
    about_gpu: bool = False  # the claim speaks of GPUs or utilisation


def not_run(claim_id: str, what: str) -> ClaimResult:
    return ClaimResult(
        claim_id=claim_id,
        rows=[DeviceVerdict(device="-", verdict=Verdict(NOT_RUN, f"no records ({what})"), measured="-")],
        text=f"No records yet: {what}.",
    )


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table or the text: 3 significant digits, exponent when tiny or huge."""
    if x is None:
        return "-"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x.is_integer() and abs(x) < 1e7:
        return str(int(x))
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
        return f"{x:.{max(digits - 1, 0)}e}"
    return f"{x:.{digits}g}"


def parts_table(name: str, title: str, parts: Sequence[tuple[str, Part]]) -> Table:
    """A table of parts, one row per (device, part)."""
    return Table(
        name=name,
        title=title,
        columns=["device", "part", "measured", "verdict", "reason"],
        rows=[[dev, p.name, p.measured, p.verdict if p.decides else f"({p.verdict})", p.reason] for dev, p in parts],
    )
