"""``seqbench compare A B``: verdicts side by side, flips and numbers outside the other's interval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _claims_helpers import bench

from experiments.cli import main
from experiments.report.compare import Interval, compare_dirs, intervals, leaves

REPO = Path(__file__).resolve().parent.parent


def _s1_records() -> list[dict]:
    """S1 as claimed (LSTM x20, Transformer x2.5 from T=100 to 2000), both backends: confirmed."""
    recs = []
    for be in ("torch", "jax"):
        for t, (lstm, tf) in {100: (1, 1.2), 500: (5, 1.5), 1000: (10, 2), 2000: (20, 3)}.items():
            recs.append(bench("S1", 0.01 * lstm, arch="lstm", seq_len=t, backend=be, grid="claim_cost_T_quick"))
            recs.append(bench("S1", 0.01 * tf, arch="transformer", seq_len=t, backend=be, grid="claim_cost_T_quick"))
    return recs


def _write(results: Path, recs: list[dict]) -> Path:
    (results / "claim_cost_T_quick").mkdir(parents=True)
    (results / "claim_cost_T_quick" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return results


def test_intervals_are_read_back_from_a_parts_text() -> None:
    text = "jax scan: 1.25 [1.14, 1.37]; T=10: 1 [-0.701, 2.7]; tiny 3.41e-30 [6.90e-38, 1.68e-22]; x18.3"
    assert intervals(text) == [
        Interval(1.25, 1.14, 1.37),
        Interval(1.0, -0.701, 2.7),
        Interval(3.41e-30, 6.90e-38, 1.68e-22),
    ]
    same = intervals("1.25 [1.14, 1.37]")
    assert leaves(same, same) == []
    assert leaves(same, intervals("1.3 [1.2, 1.4]")) == []  # each value inside the other's interval
    assert len(leaves(same, intervals("0.461 [0.331, 0.64]"))) == 1
    assert leaves(same, intervals("1 [0, 2]; 3 [2, 4]")) == []  # unpaired: not compared


def test_a_folder_against_itself_agrees_everywhere(tmp_path: Path) -> None:
    results = _write(tmp_path / "results", _s1_records())
    cmp = compare_dirs(results, results)
    rows = cmp.compared
    assert [r.claim_id for r in rows] == ["S1"] and rows[0].a.verdict == "confirmed"
    assert not any(r.flips or r.leaving for r in rows)
    assert cmp.summary() == "1 of 1 verdicts agree; no number leaves the other's interval"
    (tmp_path / "empty").mkdir()  # a reproduction that has not run S1 yet: listed, not counted as a flip
    partial = compare_dirs(results, tmp_path / "empty")
    assert partial.summary().startswith("0 of 0 verdicts agree; not run in B: S1 (cpu)")
    assert not partial.compared[0].flips


def test_one_flipped_metric_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a", _s1_records())
    b = tmp_path / "b"
    shutil.copytree(a, b)
    path = b / "claim_cost_T_quick" / "records.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    slow = next(r for r in recs if r["arch"] == "transformer" and r["config"]["seq_len"] == 2000)
    slow["metrics"]["step_s_median"] *= 40  # one record: the Transformer at T=2000 now grows like the LSTM
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))

    cmp = compare_dirs(a, b)
    (row,) = cmp.compared
    assert row.flips and row.a.verdict == "confirmed" and row.b.verdict != "confirmed"
    assert any(p.flips for p in row.parts)
    assert any(line.startswith("torch: transformer T=2000: ") for line in row.leaving)  # the ratio left its interval
    assert cmp.summary().startswith(f"0 of 1 verdicts agree; S1 (cpu) flips: confirmed -> {row.b.verdict}")
    assert cmp.summary().endswith(f"numbers outside the other's interval: S1 (cpu) {len(row.leaving)}")

    assert main(["compare", str(a), str(b)]) == 0  # it reports; it does not fail
    out = capsys.readouterr().out
    assert "S1 cpu: A confirmed | B " in out and "[FLIPS, " in out and "<- verdict flips, leaves interval" in out
    assert out.rstrip().endswith(cmp.summary())

    assert main(["compare", str(a), str(b), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["compared"] == 1 and data["agree"] == 0 and data["summary"] == cmp.summary()
    (s1,) = [r for r in data["rows"] if r["compared"]]
    assert s1["claim_id"] == "S1" and s1["flips"] and s1["a"]["verdict"] == "confirmed"
    assert {"name", "a", "b", "leaves", "flips"} <= set(s1["parts"][0])


def test_a_missing_folder_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path), str(tmp_path / "nope")]) == 2
    assert "B:" in capsys.readouterr().err


def test_the_committed_results_agree_with_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    results = REPO / "results"
    if not any(results.glob("*/records.jsonl")):
        pytest.skip("no committed records")
    assert main(["compare", str(results), str(results), "--brief"]) == 0
    last = capsys.readouterr().out.rstrip().splitlines()[-1]
    n = len(compare_dirs(results, results).compared)
    assert n > 0 and last == f"{n} of {n} verdicts agree; no number leaves the other's interval"


def test_reproduce_writes_its_own_folder_and_points_at_compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``seqbench reproduce`` (cells faked here: the quick preset takes most of an hour) writes records,
    claims table and paper under results/local only; the committed folder is not touched."""
    import experiments.grid
    import experiments.run.runner
    from experiments.run.runner import Summary

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # set: reproduce then leaves this process's environment alone
    committed = _write(Path("results"), _s1_records())
    before = {p: p.read_bytes() for p in committed.rglob("*") if p.is_file()}
    asked: dict = {}

    def fake_run_grids(grids: list, *, results_dir: str, **kw: object) -> Summary:
        asked.update(grids=grids, results_dir=results_dir)
        _write(Path(results_dir), _s1_records())
        return Summary(total=len(_s1_records()))

    monkeypatch.setattr(experiments.grid, "grids_in_preset", lambda preset: ["claim_cost_T_quick"])
    monkeypatch.setattr(experiments.run.runner, "run_grids", fake_run_grids)
    assert main(["reproduce", "--preset", "quick"]) == 0
    assert asked["results_dir"] == "results/local"
    local = Path("results/local")
    assert (local / "claims.md").exists() and (local / "paper" / "paper.md").exists()
    assert not Path("paper").exists()  # the paper stays inside the local folder
    assert {p: p.read_bytes() for p in committed.rglob("*") if p.is_file() and local not in p.parents} == before
    assert "seqbench compare results results/local" in capsys.readouterr().out

    # without --preset: both quick presets, learning grids first, each grid once
    monkeypatch.setattr(experiments.grid, "grids_in_preset", lambda preset: [f"{preset}_a", "shared"])
    monkeypatch.setattr(
        experiments.run.runner, "run_grids", lambda grids, **kw: asked.update(grids=grids) or Summary(total=0)
    )
    assert main(["reproduce"]) == 0
    assert asked["grids"] == ["quick_a", "shared", "quick_cost_a"]
    capsys.readouterr()

    assert main(["compare", "results", "results/local", "--brief"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("1 of 1 verdicts agree; no number leaves the other's interval")
