"""The claims of CLAIMS.md as code: one ``Claim`` per ID, each with its analysis from records.

``claim_ids()`` lists them (P1 first, then P2, then P3); ``get_claim(id)`` returns one;
``analyze_all(records)`` runs every analysis. Verdicts follow ``experiments.claims.verdict``.
"""

from __future__ import annotations

from collections.abc import Sequence

from experiments.claims import cost, learning
from experiments.claims.base import Claim, ClaimResult
from experiments.claims.records import Record
from experiments.errors import UserError

_PRIORITY = {"P1": 0, "P2": 1, "P3": 2}


def _order(claim: Claim) -> tuple[int, int, int]:
    return (_PRIORITY[claim.priority], 0 if claim.family == "cost" else 1, int(claim.id[1:]))


CLAIMS: dict[str, Claim] = {c.id: c for c in sorted([*cost.CLAIMS, *learning.CLAIMS], key=_order)}


def claim_ids() -> list[str]:
    return list(CLAIMS)


def get_claim(claim_id: str) -> Claim:
    if claim_id not in CLAIMS:
        raise UserError("claim", f"unknown claim {claim_id!r}", f"use one of {', '.join(CLAIMS)}")
    return CLAIMS[claim_id]


def analyze(claim_id: str, records: Sequence[Record]) -> ClaimResult:
    return get_claim(claim_id).analyze(list(records))


def analyze_all(records: Sequence[Record]) -> dict[str, ClaimResult]:
    return {cid: analyze(cid, records) for cid in CLAIMS}


__all__ = ["CLAIMS", "Claim", "ClaimResult", "analyze", "analyze_all", "claim_ids", "get_claim"]
