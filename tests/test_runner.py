"""The driver end to end on the test-only ``fake`` backend: records, resume, failures as results.

One test (``test_real_backends_through_the_driver``) runs a tiny bench cell on
each real backend when torch and jax are installed.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
from _driver_helpers import RECORD_KEYS as CONTRACT
from _driver_helpers import check_record, read_jsonl, use_fake, write_grid

from experiments.cli import main
from experiments.errors import UserError
from experiments.grid import load_grid
from experiments.records.build import RECORD_KEYS, SCHEMA
from experiments.run.runner import run_grids

GRID = """
kind = "bench"
claim_ids = ["S0"]
[axes]
arch = ["lstm", "transformer"]
hidden = [16, 32]
kind = ["bench", "train"]
[fixed]
backend = "fake"
seq_len = 12
batch = 4
min_timed_steps = 20
min_time_s = 0.02
steps = 25
eval_every = 10
lr = 0.05
[[override]]
when = { kind = "train" }
set = { task = "adding", task_params = { n_train = 64, n_val = 32, n_test = 32 } }
"""


@pytest.fixture
def fake(monkeypatch):
    use_fake(monkeypatch)


def run(path: Path, results: Path, **kw):
    stream = io.StringIO()
    summary = run_grids([path], results_dir=results, stream=stream, **kw)
    return summary, stream.getvalue()


def test_the_runner_module_names_the_contract() -> None:
    assert tuple(RECORD_KEYS) == CONTRACT


def test_a_grid_runs_to_records_that_carry_the_contract(tmp_path: Path, fake) -> None:
    path = write_grid(tmp_path, "g", GRID)
    summary, out = run(path, tmp_path / "results")
    records = read_jsonl(tmp_path / "results" / "g" / "records.jsonl")
    cells = load_grid(path).cells()
    assert [r["key"] for r in records] == [c.key for c in cells]
    assert summary.counts == {"ok": 8} and summary.skipped == 0 and summary.total == 8
    for r in records:
        check_record(r)
        assert r["status"] == "ok" and r["path"] == "numpy" and r["claim_ids"] == ["S0"] and r["grid"] == "g"
        assert r["env"]["device_name"] == "fake numpy device" and r["env"]["executor"] == "local"
    # the grid's own size coordinate travels with the record: no reader inverts fields_for_size
    want = {(a, h) for a in ("lstm", "transformer") for h in (16, 32)}
    assert {(r["arch"], r["sizes"]["hidden"]) for r in records} == want
    assert all(r["schema"] == SCHEMA for r in records)
    by_size = {(r["arch"], r["sizes"]["hidden"]): r["config"]["spec"] for r in records}
    assert by_size[("lstm", 32)]["hidden_size"] == 32 and by_size[("transformer", 32)]["d_model"] == 32
    bench = [r for r in records if r["kind"] == "bench"]
    for r in bench:
        m = r["metrics"]
        assert m["step_s_median"] > 0 and m["timed_steps"] >= 20 and m["mem_kind"] == "cpu_rss_fresh"
        assert r["env"]["fresh_worker"] is True  # CPU bench cells: a fresh worker each (grid default)
        assert m["flops_per_step"] > 0 and m["flops_per_s"] == pytest.approx(m["flops_per_step"] / m["step_s_median"])
        assert m["peak_fraction"] is not None and m["device_peak_flops_per_s"] > 0
        assert r["task"] is None
    train = [r for r in records if r["kind"] == "train"]
    for r in train:
        m = r["metrics"]
        assert r["task"] == "adding" and m["diverged"] is False and m["metric"] == "mse"
        assert m["curves"]["val_metric"]["step"] == [10, 20, 25]
        assert m["final_val_metric"] == m["curves"]["val_metric"]["value"][-1]
        assert m["best_val_metric"] == min(m["curves"]["val_metric"]["value"])
        assert m["baseline_metric"] > 0 and m["steps_run"] == 25
    assert "8 cells: 8 ok; 0 already stored" in out
    assert len({r["env"]["worker_pid"] for r in bench}) == len(bench)
    train_pids = [r["env"]["worker_pid"] for r in train]
    assert len(set(train_pids)) == 1 and not set(train_pids) & {r["env"]["worker_pid"] for r in bench}


def test_a_second_run_skips_every_stored_cell(tmp_path: Path, fake) -> None:
    path = write_grid(tmp_path, "g", GRID)
    run(path, tmp_path / "r")
    before = (tmp_path / "r" / "g" / "records.jsonl").read_bytes()
    summary, out = run(path, tmp_path / "r")
    assert summary.ran == 0 and summary.skipped == 8
    assert (tmp_path / "r" / "g" / "records.jsonl").read_bytes() == before
    assert "8 already stored" in out


FAULTS = """
kind = "bench"
[axes]
hidden = [13, 17, 19, 23, 31, 32]
[fixed]
arch = "lstm"
backend = "fake"
seq_len = 8
batch = 4
min_time_s = 0.02
"""


def test_failures_are_results_and_the_grid_goes_on(tmp_path: Path, fake) -> None:
    path = write_grid(tmp_path, "f", FAULTS)
    summary, _ = run(path, tmp_path / "r")
    records = read_jsonl(tmp_path / "r" / "f" / "records.jsonl")
    status = {r["config"]["spec"]["hidden_size"]: r for r in records}
    for r in records:
        check_record(r)
    assert status[13]["status"] == "oom" and "MemoryError" in status[13]["error"]
    assert status[17]["status"] == "error" and "SIGKILL" in status[17]["error"]  # the worker crashed
    assert status[19]["status"] == "nan"
    assert status[23]["status"] == "error" and "boom" in status[23]["error"]
    assert status[32]["status"] == "ok"  # after the crash, a fresh worker ran the rest
    assert summary.errors == 2 and len(summary.failures) == 2


def test_train_detects_nan_and_divergence(tmp_path: Path, fake) -> None:
    text = FAULTS.replace('kind = "bench"', 'kind = "train"').replace("[13, 17, 19, 23, 31, 32]", "[19, 31]")
    text = text.replace("min_time_s = 0.02\n", "")
    text += 'task = "adding"\ntask_params = { n_train = 64, n_val = 16, n_test = 16 }\nsteps = 20\n'
    run(write_grid(tmp_path, "t", text), tmp_path / "r")
    records = {r["config"]["spec"]["hidden_size"]: r for r in read_jsonl(tmp_path / "r" / "t" / "records.jsonl")}
    nan, blow = records[19], records[31]
    assert nan["status"] == "nan" and nan["metrics"]["diverged"] is True and nan["metrics"]["steps_run"] == 3
    assert blow["status"] == "diverged" and blow["metrics"]["diverged"] is True
    assert blow["metrics"]["baseline_metric"] > 0
    assert nan["metrics"]["curves"]["train_loss"]["value"][-1] is None  # NaN stored as null


def test_a_hung_cell_times_out_and_is_recorded(tmp_path: Path, fake) -> None:
    text = FAULTS.replace("[13, 17, 19, 23, 31, 32]", "[29, 32]") + "timeout_s = 3.0\n"
    run(write_grid(tmp_path, "h", text), tmp_path / "r")
    records = {r["config"]["spec"]["hidden_size"]: r for r in read_jsonl(tmp_path / "r" / "h" / "records.jsonl")}
    assert records[29]["status"] == "error" and "timed out" in records[29]["error"]
    assert records[32]["status"] == "ok"


def test_retry_errors_reruns_only_errors(tmp_path: Path, fake) -> None:
    path = write_grid(tmp_path, "f", FAULTS.replace("[13, 17, 19, 23, 31, 32]", "[23, 32]"))
    run(path, tmp_path / "r")
    summary, _ = run(path, tmp_path / "r", retry_errors=True)
    assert summary.ran == 1 and summary.skipped == 1
    statuses = [r["status"] for r in read_jsonl(tmp_path / "r" / "f" / "records.jsonl")]
    assert statuses == ["error", "ok", "error"]


def test_a_backend_that_cannot_load_is_refused_before_any_cell(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEQBENCH_TEST_BACKENDS", "ghost=tests.no_such_module")
    path = write_grid(tmp_path, "g", FAULTS.replace('"fake"', '"ghost"'))
    with pytest.raises(UserError, match="ghost"):
        run(path, tmp_path / "r")
    assert not (tmp_path / "r" / "g" / "records.jsonl").exists()
    assert main(["run", str(path), "--results", str(tmp_path / "r")]) == 2


def test_the_run_command_resumes_and_reports_errors_in_its_status(tmp_path: Path, fake, capsys) -> None:
    ok = write_grid(tmp_path, "ok", FAULTS.replace("[13, 17, 19, 23, 31, 32]", "[32]"))
    assert main(["run", str(ok), "--results", str(tmp_path / "r")]) == 0
    assert "1 cells: 1 ok; 0 already stored" in capsys.readouterr().err
    assert main(["run", str(ok), "--results", str(tmp_path / "r")]) == 0
    assert "1 already stored" in capsys.readouterr().err
    bad = write_grid(tmp_path, "bad", FAULTS.replace("[13, 17, 19, 23, 31, 32]", "[23]"))
    assert main(["run", str(bad), "--results", str(tmp_path / "r")]) == 1


def test_the_bench_command_prints_a_record(fake, capsys) -> None:
    code = main(
        ["bench", "--arch", "gru", "--backend", "fake", "--seq-len", "8", "--hidden", "16", "--batch", "2", "--json"]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    check_record(record)
    assert record["kind"] == "bench" and record["arch"] == "gru" and record["config"]["seq_len"] == 8
    assert main(["bench", "--arch", "gru", "--backend", "fake", "--path", "on"]) == 1  # "on" cannot apply: error
    assert "PathUnavailable" in capsys.readouterr().out


@pytest.mark.skipif(
    not (importlib.util.find_spec("torch_impl") and importlib.util.find_spec("jax_impl")), reason="backends not built"
)
def test_real_backends_through_the_driver(tmp_path: Path) -> None:
    """One tiny bench cell per real backend, each in its own worker process."""
    text = """
[axes]
backend = ["torch", "jax"]
[fixed]
arch = "gru"
seq_len = 8
hidden = 16
batch = 4
min_time_s = 0.05
"""
    summary, _ = run(write_grid(tmp_path, "real", text), tmp_path / "r")
    records = read_jsonl(tmp_path / "r" / "real" / "records.jsonl")
    assert summary.counts == {"ok": 2}, [r.get("error") for r in records]
    for r in records:
        check_record(r)
        assert r["env"]["backend"] == r["backend"] and r["path"]
        assert r["metrics"]["peak_mem_bytes"] is not None and r["metrics"]["peak_fraction"] > 0
        m = r["metrics"]
        assert m["saved_bytes"] > 0 and m["saved_param_bytes"] >= 0  # the exact memory measure, both backends
        assert m["cpu_over_wall"] > 0 and isinstance(m["disturbed"], bool)
    assert records[0]["env"]["host"] == records[1]["env"]["host"]
    assert records[0]["env"]["device_name"] == records[1]["env"]["device_name"]  # one describe() schema


def test_the_environment_manifest_looks_for_git_at_the_repository_root() -> None:
    from experiments.records import envinfo

    # git_dirty checks `experiments`, `torch_impl`, `jax_impl` relative to REPO: it must be the root
    assert all((envinfo.REPO / name).is_dir() for name in ("experiments", "torch_impl", "jax_impl"))
