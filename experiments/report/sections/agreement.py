"""Section 6: how closely the two backends agree, from the ``seqbench verify`` reports."""

from __future__ import annotations

from experiments.report.tables import table_markdown
from experiments.report.verify import VerifyReport, passed_count, verify_tables

DETAIL_ROWS = 60


def agreement(verify: list[VerifyReport]) -> list[str]:
    out = ["## 6. Cross-backend agreement", ""]
    if not verify:
        return [*out, "No `seqbench verify` report in `results/verify/` yet.", ""]
    summary, detail = verify_tables(verify)
    out.append(
        f"`seqbench verify` reports in `results/verify/`: {passed_count(verify)} of {len(verify)} architecture runs "
        "pass every check (outputs, final states, input and parameter gradients, one optimizer step)."
    )
    return [*out, "", table_markdown(summary), "", table_markdown(detail, DETAIL_ROWS)]
