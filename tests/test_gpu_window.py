"""The GPU window's one command, run on CPU with every size capped: the path a lent GPU will take
(verify, the gpu_window preset, records under $OUT) is checked here first, and its estimate fits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _driver_helpers import read_jsonl

from experiments.grid import grids_in_preset, load_cells
from experiments.run.estimate import estimate

ROOT = Path(__file__).resolve().parent.parent
WINDOW_S = 480  # of the ~10 minutes of commands a lent GPU gives, what the preset may plan to use


def test_the_window_is_estimated_within_its_budget() -> None:
    cells = [c for _, cs in load_cells(grids_in_preset("gpu_window")) for c in cs]
    assert cells and all(c.device == "cuda" for c in cells)
    assert {"S1", "S5", "S10"} <= {cid for c in cells for cid in c.claim_ids}
    assert estimate(cells).seconds <= WINDOW_S


def test_shrinking_caps_every_size_and_changes_every_key() -> None:
    real = [c for _, cs in load_cells(grids_in_preset("gpu_window"), "cpu") for c in cs]
    small = [c for _, cs in load_cells(grids_in_preset("gpu_window"), "cpu", shrink=True) for c in cs]
    assert 0 < len(small) < len(real)  # capped sizes collapse points into one cell
    assert all(c.config["shrunk"] and c.batch <= 2 and c.seq_len <= 8 for c in small)
    assert all(c.sizes["hidden"] <= 8 and not c.resources["fresh_worker"] for c in small)
    assert not {c.key for c in small} & {c.key for c in real}


def test_the_window_command_runs_end_to_end_on_cpu_shrunk(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "DEVICE": "cpu", "SHRINK": "1", "PY": sys.executable}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_window.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "device seconds" in proc.stdout  # the dry run's estimate comes first
    (report,) = json.loads((tmp_path / "verify" / "cpu_float32.json").read_text())
    assert report["arch"] == "rnn" and report["passed"] is True
    grids = sorted(p.parent.name for p in tmp_path.glob("*/records.jsonl"))
    assert grids == sorted(grids_in_preset("gpu_window"))
    records = [r for g in grids for r in read_jsonl(tmp_path / g / "records.jsonl")]
    assert records and all(r["status"] == "ok" and r["config"]["shrunk"] for r in records)
    assert all(r["metrics"]["saved_bytes"] > 0 for r in records)
