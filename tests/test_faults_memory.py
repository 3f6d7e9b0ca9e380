"""Issue 15, the memory guard: a cell that cannot fit is recorded ``oom`` (estimated) without starting,
and a worker runs under a memory limit, so that an underestimate ends as ``oom`` too."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _driver_helpers import fake_env, read_jsonl, use_fake, write_grid

from experiments.cli import build_parser, main
from experiments.commands import bench
from experiments.run import memory, runner
from experiments.run.runner import run_grids

ISSUE_CASE = [
    "bench",
    "--arch",
    "lstm",
    "--backend",
    "torch",
    "--hidden",
    "16384",
    "--seq-len",
    "2000",
    "--batch",
    "64",
]
BIG_ON_FAKE = '[fixed]\narch = "lstm"\nbackend = "fake"\nhidden = 16384\nseq_len = 2000\nbatch = 64\n'
ALLOC = 'kind = "alloc_for_test"\n[axes]\nalloc_mb = [{mb}]\n[fixed]\narch = "lstm"\nbackend = "fake"\n'
REAL = importlib.util.find_spec("torch_impl") is not None


def test_the_estimate_counts_activations_parameters_and_the_optimizer() -> None:
    cell = bench.one_cell(build_parser().parse_args(ISSUE_CASE))
    spec = cell.build_spec()
    activations = spec.stored_activations(64, 2000)
    assert memory.cell_bytes(cell) == 4 * (activations + spec.param_count() * 4)  # adam: param, grad, 2 moments
    assert memory.estimated_oom(cell, limit=memory.cell_bytes(cell)) is None  # fits exactly
    assert memory.estimated_oom(cell, limit=memory.cell_bytes(cell) - 1)["status"] == "oom"


def test_the_issue_case_ends_as_oom_at_once_without_a_worker(monkeypatch, capsys) -> None:
    from experiments.run import executors

    def refuse(*args, **kwargs):
        raise AssertionError("a worker was started for a cell that cannot fit")

    monkeypatch.setattr(executors.LocalExecutor, "start", refuse)
    began = time.perf_counter()
    assert main([*ISSUE_CASE, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "oom" and record["error"].startswith("estimated")
    assert record["metrics"]["estimated_bytes"] > record["metrics"]["memory_limit_bytes"]
    assert time.perf_counter() - began < 60


def test_the_issue_case_never_passes_half_the_memory() -> None:
    """In a process of its own: the command and all it started stay far below half the machine."""
    code = (
        "import resource, sys; from experiments.cli import main; rc = main(sys.argv[1:]); "
        "usage = resource.getrusage; "
        "print(usage(resource.RUSAGE_SELF).ru_maxrss, usage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
    )
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *ISSUE_CASE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "status: oom  estimated" in done.stdout
    own_kb, children_kb = map(int, done.stdout.split()[-2:])
    half = memory.meminfo()["MemTotal"] // 2
    assert max(own_kb, children_kb) * 1024 < half
    assert time.perf_counter() - began < 60


def test_run_records_an_estimated_oom_and_starts_no_worker(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)

    def refuse(*args, **kwargs):
        raise AssertionError("an executor was made for a cell that cannot fit")

    monkeypatch.setattr(runner, "make_executor", refuse)
    grid = write_grid(tmp_path, "big", BIG_ON_FAKE)
    summary = run_grids([grid], results_dir=tmp_path / "r", stream=io.StringIO())
    assert summary.counts == {"oom": 1}
    (record,) = read_jsonl(tmp_path / "r" / "big" / "records.jsonl")
    assert record["status"] == "oom" and "estimated" in record["error"]
    again = run_grids([grid], results_dir=tmp_path / "r", stream=io.StringIO())
    assert again.skipped == 1 and again.stored_errors == 0  # an oom is a result, not an error


def test_an_underestimate_ends_as_oom_under_the_workers_limit(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    monkeypatch.setenv(memory.LIMIT_ENV, "400")  # MiB: the fake worker (numpy) starts in about 60
    results = tmp_path / "r"
    began = time.perf_counter()
    run_grids([write_grid(tmp_path, "a", ALLOC.format(mb="600, 20"))], results_dir=results, stream=io.StringIO())
    statuses = {r["config"]["settings"]["alloc_mb"]: r for r in read_jsonl(results / "a" / "records.jsonl")}
    assert statuses[600]["status"] == "oom", statuses[600].get("error")
    assert statuses[20]["status"] == "ok"  # the limit leaves room to work
    assert time.perf_counter() - began < 60


@pytest.mark.slow  # a torch worker and a failing step: about 20 s on 2 busy cores
@pytest.mark.skipif(not REAL, reason="torch backend not built")
def test_torch_under_the_limit_reports_oom_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    """An underestimate on the real torch backend (estimate switched off): its allocator fails and says so."""
    monkeypatch.setattr(runner, "estimated_oom", lambda cell: None)
    monkeypatch.setenv(memory.LIMIT_ENV, "1024")
    text = '[fixed]\narch = "lstm"\nbackend = "torch"\nhidden = 1024\nseq_len = 1000\nbatch = 64\n'
    run_grids([write_grid(tmp_path, "t", text)], results_dir=tmp_path / "r", stream=io.StringIO())
    (record,) = read_jsonl(tmp_path / "r" / "t" / "records.jsonl")
    assert record["status"] == "oom", record.get("error")
    assert "allocate" in record["error"]


def test_the_worker_applies_the_limit_it_is_given(monkeypatch) -> None:
    env = {**fake_env(), memory.WORKER_LIMIT_ENV: str(300 * memory.MiB)}
    code = "from experiments.run.memory import apply_limit; import resource; apply_limit(); "
    code += "print(resource.getrlimit(resource.RLIMIT_DATA)[0])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert int(done.stdout) == 300 * memory.MiB
    assert memory.limit_env({"cuda", "cpu"}) == {}  # CUDA maps writable memory of its own: no limit there


def test_a_bad_limit_setting_is_a_user_error(monkeypatch) -> None:
    from experiments.errors import UserError

    monkeypatch.setenv(memory.LIMIT_ENV, "lots")
    with pytest.raises(UserError, match=memory.LIMIT_ENV):
        memory.worker_limit_bytes()
    monkeypatch.setenv(memory.LIMIT_ENV, "0")
    assert memory.worker_limit_bytes() is None
