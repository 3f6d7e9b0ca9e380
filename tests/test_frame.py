"""``experiments.records.load``: the records as a DataFrame, one row each, config and metrics as columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _claims_helpers import bench, train

from experiments.records import load
from experiments.records.fields import load_records

pd = pytest.importorskip("pandas")
REPO = Path(__file__).resolve().parent.parent


def _write(folder: Path, recs: list[dict]) -> None:
    folder.mkdir(parents=True)
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_one_row_per_record_with_config_and_metrics_as_columns(tmp_path: Path) -> None:
    a = bench("S1", 0.02, arch="lstm", seq_len=100, backend="jax", exec_path="scan", metrics={"saved_bytes": 5})
    b = bench("S1", 0.03, arch="gru", seq_len=200, hidden=64, schema=2)
    c = train("L9", 0.8, 0.5, task="delayed_recall", task_params={"n_train": 300}, optimizer={"lr": 0.01})
    c["metrics"]["curves"] = {"val_metric": {"step": [1, 2], "value": [0.5, 0.8]}}
    _write(tmp_path / "run_a", [a, b])
    _write(tmp_path / "run_b", [c, a])  # a's key again: one row, as the loader keeps one record per key

    df = load(tmp_path)
    assert len(df) == len(load_records(tmp_path)) == 3
    row = df.set_index("key").loc[a["key"]]
    assert row["step_s_median"] == 0.02 and row["saved_bytes"] == 5
    assert row["path"] == "scan" and row["path_choice"] == "auto"  # what ran, and what was asked for
    assert row["seq_len"] == 100 and row["spec.hidden_size"] == 32 and row["optimizer.lr"] == 1e-3
    assert row["env.device_name"] == "Test CPU" and row["device_name"] == "Test CPU"
    assert df.set_index("key").loc[b["key"], "hidden"] == 64  # schema 2 reads sizes.hidden
    trained = df[df.kind == "train"].iloc[0]
    assert trained["task_params.n_train"] == 300 and trained["optimizer.lr"] == 0.01
    assert trained["curves.val_metric.value"] == [0.5, 0.8]
    assert trained["claim_ids"] == ("L9",)
    # the two-line analysis the README shows
    medians = df[df.kind == "bench"].groupby(["arch", "seq_len"]).step_s_median.median()
    assert medians.loc[("gru", 200)] == 0.03


def test_a_metric_named_like_a_config_column_keeps_both(tmp_path: Path) -> None:
    rec = bench("S1", 0.02, metrics={"batch": 99})
    _write(tmp_path / "run", [rec])
    row = load(tmp_path).iloc[0]
    assert row["batch"] == 8 and row["metrics.batch"] == 99


def test_empty_or_missing_folder_gives_an_empty_frame(tmp_path: Path) -> None:
    assert load(tmp_path / "nothing").empty


def test_the_committed_records_load_one_row_each() -> None:
    results = REPO / "results"
    if not any(results.glob("*/records.jsonl")):
        pytest.skip("no committed records")
    df = load(results)
    assert len(df) == len(load_records(results)) and df.key.is_unique
    assert {"step_s_median", "final_val_metric", "spec.hidden_size", "optimizer.lr"} <= set(df.columns)
