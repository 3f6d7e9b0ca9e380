"""The claims of CLAIMS.md as code: one ``Claim`` per ID, each with its analysis from records.

Each claim is a module of its own (``cost/sNN_<slug>.py``, ``learning/lNN_<slug>.py``) that
registers its ``analyze`` with ``@claim(...)`` (``experiments.claims.registry``); importing this
package imports them all. ``claim_ids()`` lists them (P1 first, then P2, then P3; cost before
learning; by number); ``get_claim(id)`` returns one; ``analyze_all(records)`` runs every analysis.
Verdicts follow ``experiments.claims.verdict``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Sequence

from experiments.claims import cost, learning
from experiments.claims.base import Claim, ClaimResult
from experiments.claims.registry import PRIORITIES, registered
from experiments.errors import UserError
from experiments.records.fields import Record

CLAIM_MODULE = re.compile(r"[sl]\d\d_\w+")  # a claim's module; the others in a family folder are its helpers


def _discover() -> list[Claim]:
    for family in (cost, learning):
        for info in pkgutil.iter_modules(family.__path__):
            if CLAIM_MODULE.fullmatch(info.name):
                importlib.import_module(f"{family.__name__}.{info.name}")
    return registered()


def _order(claim: Claim) -> tuple[int, int, int]:
    return (PRIORITIES.index(claim.priority), 0 if claim.family == "cost" else 1, int(claim.id[1:]))


CLAIMS: dict[str, Claim] = {c.id: c for c in sorted(_discover(), key=_order)}


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
