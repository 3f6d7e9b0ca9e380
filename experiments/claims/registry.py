"""The claim registry: each claim's module registers its ``analyze`` with ``@claim(...)``.

The metadata (source, statement quoted from CLAIMS.md, how it is measured) stands
beside the code that judges it; ``experiments.claims`` imports every claim module and
orders what they registered.
"""

from __future__ import annotations

from collections.abc import Callable

from experiments.claims.base import Claim, ClaimResult
from experiments.records.fields import Record

Analyze = Callable[[list[Record]], ClaimResult]
FAMILIES = ("cost", "learning")
PRIORITIES = ("P1", "P2", "P3")

_REGISTERED: dict[str, Claim] = {}


def claim(
    *,
    id: str,
    priority: str,
    source: str,
    statement: str,
    measure: str,
    family: str,
    about_gpu: bool = False,
) -> Callable[[Analyze], Analyze]:
    """Register ``analyze(records) -> ClaimResult`` as claim ``id`` (the ID CLAIMS.md gives it)."""
    if priority not in PRIORITIES:
        raise ValueError(f"claim {id}: priority must be one of {PRIORITIES}, not {priority!r}")
    if family not in FAMILIES:
        raise ValueError(f"claim {id}: family must be one of {FAMILIES}, not {family!r}")

    def wrap(fn: Analyze) -> Analyze:
        if id in _REGISTERED and _REGISTERED[id].analyze is not fn:
            raise ValueError(f"claim {id!r} registered twice")
        _REGISTERED[id] = Claim(id, priority, source, statement, measure, family, fn, about_gpu=about_gpu)
        return fn

    return wrap


def registered() -> list[Claim]:
    """Every claim registered so far, in registration order."""
    return list(_REGISTERED.values())
