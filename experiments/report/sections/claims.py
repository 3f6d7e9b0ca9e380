"""The verdict table, each claim's section, and the semantic claims that the tests check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from experiments.claims import CLAIMS
from experiments.claims.base import ClaimResult
from experiments.records.fields import Record
from experiments.report.inventory import Stored, claim_records, grid_presets
from experiments.report.ran import ran_paragraph
from experiments.report.tables import table_markdown
from experiments.report.verdicts import note_suffix, verdict_markdown

PAPER_TABLE_ROWS = 40
REPO = Path(__file__).resolve().parents[3]

SEMANTICS = [
    (
        "T1",
        "000, 002 (Q9)",
        "A bidirectional LSTM's output is (T, B, 2H) (batch-first: (B, T, 2H)); its final states are "
        "(2·layers, B, H), ordered forward-l0, backward-l0, forward-l1, …",
    ),
    (
        "T2",
        "002",
        "A unidirectional model's output at step t depends on inputs up to t only; a bidirectional one's "
        "depends on the whole sequence.",
    ),
    (
        "T3",
        "003 (ex. 3), 001",
        "A masked or packed variable-length batch gives each sequence the same result as running it alone, unpadded.",
    ),
]
# The test that checks each semantic claim (cited when it exists in the repository's tests).
SEMANTICS_TESTS = {
    "T1": "tests/test_invariants.py::test_bidirectional_state_order",
    "T2": "tests/test_invariants.py::test_causality_and_future_dependence",
    "T3": "tests/test_invariants.py::test_padded_batch_equals_each_sequence_alone",
}


def verdicts(results: dict[str, ClaimResult], store: Stored) -> list[str]:
    out = ["## 3. Verdicts", ""]
    out.append(
        "One row per claim and device; CPU and GPU verdicts are separate rows. The last column names the "
        "preset of the grids a verdict comes from; one decided from `quick` or `quick_cost` grids alone is provisional."
    )
    out += ["", verdict_markdown(results, store)]
    return out


def _claim_section(
    number: str, cid: str, res: ClaimResult, figures: list[str], records: Sequence[Record], store: Stored
) -> list[str]:
    claim = CLAIMS[cid]
    used = res.records or claim_records(records, cid)  # what the verdict was computed from
    grids = res.grids() or store.grids_for(cid)
    out = [
        f"### {number} {cid} ({claim.priority}, source {claim.source})",
        "",
        f"> {claim.statement}",
        "",
        f'*Plan (the claims list\'s "how to measure"):* {claim.measure}',
        "",
        ran_paragraph(used, grids, grid_presets(grids)),
        "",
    ]
    for row in res.rows:
        out.append(f"**Verdict on {row.device}: {row.verdict.verdict}**{note_suffix(row.note)}. {row.verdict.reason}.")
        out.append("")
    if res.text:
        out += [res.text, ""]
    for name in figures:
        out += [f"![{cid}: {name}](figures/{name}.png)", ""]
    for table in res.tables:
        if table.rows:
            out += [f"*{table.title}* (`results/tables/{table.name}.csv`)", "", table_markdown(table, PAPER_TABLE_ROWS)]
    return out


def claim_sections(
    results: dict[str, ClaimResult], figure_names: dict[str, list[str]], records: Sequence[Record], store: Stored
) -> list[str]:
    out = ["## 4. The claims, one by one", ""]
    out.append(
        "Each section quotes the claim, gives the plan from the claims list, and then says what ran, read from "
        "the records behind the verdict (*Ran:*): where the two differ, the records are what the verdict rests on."
    )
    out.append("")
    for i, (cid, res) in enumerate(results.items(), start=1):
        out += _claim_section(f"4.{i}", cid, res, figure_names.get(cid, []), records, store)
    return out


def _test_exists(ref: str) -> bool:
    path, _, name = ref.partition("::")
    try:
        return f"def {name}(" in (REPO / path).read_text()
    except OSError:
        return False


def semantics() -> list[str]:
    out = ["## 5. Semantics (checked by tests)", ""]
    out.append(
        "These are properties of the implementations, checked by the test suite and by `seqbench verify` "
        "on every architecture rather than by runs:"
    )
    out.append("")
    for tid, source, statement in SEMANTICS:
        ref = SEMANTICS_TESTS.get(tid, "")
        checked = ""
        if _test_exists(ref):
            checked = f" Checked by `{ref}`, for every architecture it applies to, in both backends."
        out.append(f"- **{tid}** ({source}): {statement}{checked}")
    out.append("")
    return out
