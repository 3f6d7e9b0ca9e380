"""``seqbench report``: files, formats, and byte-for-byte determinism from the records alone."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest
from _claims_helpers import bench, jitter, record, train

from experiments.cli import main
from experiments.report import write_report

pytest.importorskip("matplotlib")


def _records() -> list[dict]:
    recs = []
    for be in ("torch", "jax"):
        for t, (lstm, tf) in {100: (1, 1.2), 500: (5, 1.5), 1000: (10, 2), 2000: (20, 3)}.items():
            recs.append(
                bench("S1", 0.01 * lstm, mem=1e6 * t, arch="lstm", seq_len=t, backend=be, metrics={"compile_s": 0.5})
            )
            recs.append(bench("S1", 0.01 * tf, arch="transformer", seq_len=t, backend=be))
    for s in range(3):
        recs.append(
            record(
                "L1",
                kind="grad_flow",
                arch="rnn",
                seed=s,
                metrics={"grad_norms": [1e-9, 1e-3, 1.0], "ratio_first_last": 1e-9},
            )
        )
        recs.append(
            record(
                "L1",
                kind="grad_flow",
                arch="lstm",
                seed=s,
                metrics={"grad_norms": [0.8, 0.9, 1.0], "ratio_first_last": 0.8},
            )
        )
        for t, acc in ((10, 0.9), (50, 0.8), (100, 0.5)):
            recs.append(train("L9", acc + jitter(s, 0.01), 0.25, seed=s, task="delayed_recall", seq_len=t))
    recs.append(bench("S3", math.nan, status="oom", hidden=4096))  # a failed cell is a result too
    return recs


def _write_results(root: Path, recs: list[dict]) -> Path:
    results = root / "results"
    (results / "run_a").mkdir(parents=True)
    (results / "run_a" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[: len(recs) // 2]))
    (results / "run_b").mkdir()
    (results / "run_b" / "records.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in recs[len(recs) // 2 :]) + '{"torn'
    )
    (results / "verify").mkdir()
    (results / "verify" / "cpu_float64.json").write_text(
        json.dumps(
            [
                {
                    "arch": "lstm",
                    "dtype": "float64",
                    "device": "cpu",
                    "passed": True,
                    "checks": {
                        "outputs": {"max_abs_err": 1e-15, "max_rel_err": 2e-14, "tol": 1e-10, "passed": True},
                        "input_grads": {"max_abs_err": 3e-15, "max_rel_err": 5e-14, "tol": 1e-10, "passed": True},
                    },
                },
                {
                    "arch": "gru",
                    "dtype": "float64",
                    "device": "cpu",
                    "passed": False,
                    "checks": {"outputs": {"max_abs_err": 0.1, "max_rel_err": 0.3, "tol": 1e-10, "passed": False}},
                },
            ]
        )
    )
    return results


def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file() and "verify" not in p.parts
    }


def test_report_is_deterministic_and_complete(tmp_path: Path) -> None:
    results = _write_results(tmp_path, _records())
    paper = tmp_path / "paper"
    first = write_report(results, paper)
    snap = _snapshot(results, paper)
    (paper / "figures" / "stale.png").write_bytes(b"old")  # a file from an earlier report goes away
    second = write_report(results, paper)
    assert _snapshot(results, paper) == snap
    assert first.verdicts == second.verdicts
    assert first.verdicts["S1"] == "confirmed" and first.verdicts["L2"] == "not run"

    claims = (results / "claims.md").read_text()
    assert "| ID | claim | source | measured | verdict | device | preset |" in claims
    assert "| S1 |" in claims and "| L13 |" in claims

    for name in ("S1_time_vs_T", "L1_gradient_flow", "L9_accuracy_vs_T"):
        assert (paper / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        svg = (paper / "figures" / f"{name}.svg").read_text()
        assert "<svg" in svg and "<dc:date>" not in svg
    with (results / "tables" / "S1_time_vs_T.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["device", "backend", "arch"] and len(rows) == 1 + 16
    assert (results / "tables" / "S1_time_vs_T.md").read_text().startswith("# S1:")

    text = (paper / "paper.md").read_text()
    for heading in (
        "## Abstract",
        "## 1. The suite",
        "## 2. Methods",
        "## 3. Verdicts",
        "## 6. Cross-backend agreement",
        "## 7. Performance",
        "## 8. Limitations",
    ):
        assert heading in text
    assert "![S1: S1_time_vs_T](figures/S1_time_vs_T.png)" in text
    assert "1 of 2 architecture runs pass" in text  # from the verify reports
    assert "1 oom" in text  # failed cells are reported
    assert "No GPU records" in text


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = _write_results(tmp_path, _records()[:4])
    assert main(["report", "--results", str(results)]) == 0
    assert "4 records" in capsys.readouterr().out
    assert (tmp_path / "paper" / "paper.md").exists()


def test_report_without_records(tmp_path: Path) -> None:
    summary = write_report(tmp_path / "results", tmp_path / "paper")
    assert summary.records == 0 and set(summary.verdicts.values()) == {"not run"}
    assert "not run" in (tmp_path / "results" / "claims.md").read_text()


def _l9_records(grid: str = "claim_l6_l9_quick") -> list[dict]:
    return [
        train("L9", acc + jitter(s, 0.01), 0.25, seed=s, task="delayed_recall", seq_len=t, grid=grid)
        for s in range(3)
        for t, acc in ((5, 0.95), (10, 0.9), (20, 0.6))
    ]


def test_each_claim_section_says_what_ran_from_its_records(tmp_path: Path) -> None:
    from experiments.claims import CLAIMS

    recs = _l9_records()
    results = tmp_path / "results"
    (results / "run").mkdir(parents=True)
    (results / "run" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    write_report(results, tmp_path / "paper")
    text = (tmp_path / "paper" / "paper.md").read_text()
    section = re.split(r"\n### 4\.\d+ L9 \(", text)[1].split("\n### ")[0]  # L9's section
    ran = next(line for line in section.splitlines() if line.startswith("*Ran:*"))
    assert "9 records (all ok)" in ran and "`claim_l6_l9_quick` (quick)" in ran
    assert "T ∈ {5, 10, 20}" in ran  # the values present, not the plan's {10, 50, 100, 500}
    assert "hidden 32" in ran and "lr 0.001" in ran and "B 8" in ran and "Seeds: {0, 1, 2}" in ran
    assert "Device: cpu (Test CPU)" in ran and "float32" in ran
    # the plan is labelled as the plan, never as what was measured
    assert "*Measured:*" not in text
    assert f'*Plan (the claims list\'s "how to measure"):* {CLAIMS["L9"].measure}' in section
    assert "*Ran:* nothing yet (0 records)." in text  # a claim without records says so


def test_verdict_rows_name_their_preset(tmp_path: Path) -> None:
    from experiments.report.inventory import presets_label

    assert presets_label(["claim_l6_l9_quick"], {"claim_l6_l9_quick": ["quick"]}) == "provisional (quick)"
    assert presets_label(["a", "b"], {"a": ["quick"], "b": ["full"]}) == "full, quick"
    assert presets_label(["x"], {}) == "grid x (no preset)"
    assert presets_label(["l3"], {"l3": ["quick", "standard"]}) == "quick, standard"  # not provisional
    assert presets_label(["c"], {"c": ["quick_cost"]}) == "provisional (quick_cost)"  # the small cost grids
    assert presets_label(["c", "q"], {"c": ["quick_cost"], "q": ["quick"]}) == "provisional (quick, quick_cost)"
    assert presets_label(["c", "s"], {"c": ["quick_cost"], "s": ["standard"]}) == "quick_cost, standard"
    results = tmp_path / "results"
    (results / "run").mkdir(parents=True)
    (results / "run" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _l9_records()))
    write_report(results, tmp_path / "paper")
    row = next(line for line in (results / "claims.md").read_text().splitlines() if line.startswith("| L9 |"))
    assert row.endswith("| cpu (Test CPU) | provisional (quick) |")
    not_run = next(line for line in (results / "claims.md").read_text().splitlines() if line.startswith("| L4 |"))
    assert not_run.endswith("| - |")
    paper = (tmp_path / "paper" / "paper.md").read_text()
    assert "Verdict rows by the presets of the grids behind them: provisional (quick): 1 (L9)." in paper
    assert "Verdict rows of L9 rest on the quick presets alone" in paper  # the limitations say which


def test_the_abstract_names_the_presets_its_verdicts_rest_on(tmp_path: Path) -> None:
    """Rows from a standard grid are not called provisional, nor are its records said to be quick's."""
    results = tmp_path / "results"
    (results / "run").mkdir(parents=True)
    recs = _l9_records("claim_l6_l9_standard")
    (results / "run" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    write_report(results, tmp_path / "paper")
    paper = (tmp_path / "paper" / "paper.md").read_text()
    assert "Verdict rows by the presets of the grids behind them: standard: 1 (L9)." in paper
    assert "provisional" not in paper.split("## 1. The suite")[0]
    assert "rest on the quick presets alone" not in paper


def test_grid_counts_equal_the_records_in_each_file(tmp_path: Path) -> None:
    """A cell stored by two grids is one report record, and counts in each grid's file."""
    shared = train("L9", 0.9, 0.25, task="delayed_recall", seq_len=5, grid="grid_a")
    a = [shared, *_l9_records("grid_a")[1:]]
    b = [{**shared, "grid": "grid_b", "claim_ids": ["L6"]}, train("L6", 0.5, 0.25, grid="grid_b", seq_len=7)]
    results = tmp_path / "results"
    for name, recs in (("grid_a", a), ("grid_b", b)):
        (results / name).mkdir(parents=True)
        (results / name / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    summary = write_report(results, tmp_path / "paper")
    assert summary.records == len(a) + len(b) - 1
    text = (tmp_path / "paper" / "paper.md").read_text()
    assert f"| grid_a | - | {len(a)} |" in text and "| grid_b | - | 2 |" in text  # the grids table
    assert f"| grid_a | ok | {len(a)} |" in text and "| grid_b | ok | 2 |" in text  # the appendix
    assert f"The grids' files hold {len(a) + len(b)} records: a cell stored by two grids is one record" in text


def test_committed_grid_counts_equal_their_files() -> None:
    from experiments.records.store import parse_lines
    from experiments.report.inventory import stored

    results = Path(__file__).resolve().parent.parent / "results"
    files = sorted(results.glob("*/records.jsonl"))
    if not files:
        pytest.skip("no committed records")
    store = stored(results)
    for path in files:
        recs = [r for r in parse_lines(path.read_bytes())[0] if "config" in r]
        grid = str(recs[0]["grid"])
        assert store.records(grid) == len({r["key"] for r in recs}), grid


def test_preset_cost_is_summed_from_the_records_wall_time() -> None:
    from experiments.grid import raw_lists
    from experiments.report.inventory import preset_cost_table, stored_from

    standard = sorted(g for g, ps in raw_lists("presets").items() if "standard" in ps)
    recs = [train("L9", 0.9, 0.25, grid=standard[0], seed=s) | {"wall_s": 10.0 * (s + 1)} for s in range(3)]
    planned = {g: 4 for g in raw_lists("presets")} | {standard[1]: None}
    table = preset_cost_table(stored_from(recs), planned)
    row = next(r for r in table.rows if r[0] == "standard")
    assert row[1:8] == [len(standard), "?", 3, 3, "60", "0.02", "Test CPU"]  # one grid unresolved: "?" planned
    quick = next(r for r in table.rows if r[0] == "quick")
    assert quick[3:6] == [0, 0, "0"]
