"""kill -9 of the driver leaves a store whose every line parses; a rerun finishes without redoing
finished cells; two drivers on one store neither lose nor duplicate records. Real processes, real SIGKILL."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _driver_helpers import fake_env, read_jsonl, use_fake, write_grid

from experiments.grid import load_grid

# 36 cells of ~0.1 s each (sizes avoid the fake backend's fault sizes)
GRID = """
[axes]
hidden = [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51]
arch = ["lstm", "gru", "transformer"]
[fixed]
backend = "fake"
seq_len = 8
batch = 4
min_timed_steps = 20
min_time_s = 0.08
num_heads = 1
positional = "none"
"""


def start_driver(grid: Path, results: Path) -> subprocess.Popen:
    env = {**os.environ, **fake_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "experiments", "run", str(grid), "--results", str(results)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


def workers_of(pid: int) -> list[int]:
    """Worker processes started by the driver ``pid`` (their last argument is the driver's pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"experiments.run.worker" in argv and argv[-2:-1] == [str(pid).encode()]:
            found.append(int(entry.name))
    return found


def test_kill_9_at_any_moment_then_resume(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    grid = write_grid(tmp_path, "k", GRID)
    keys = [c.key for c in load_grid(grid).cells()]
    store = tmp_path / "r" / "k" / "records.jsonl"

    def after_records(n: int):
        return lambda: wait_for(lambda: lines(store) >= n)

    def more_records(n: int):
        def wait() -> None:
            start = lines(store)
            wait_for(lambda: lines(store) >= start + n)

        return wait

    # kill while records are being written; early (workers starting); mid-run again
    for wait in (after_records(4), lambda: time.sleep(0.4), more_records(5)):
        proc = start_driver(grid, tmp_path / "r")
        wait()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        records = read_jsonl(store) if store.exists() else []  # every line parses
        got = [r["key"] for r in records]
        assert len(got) == len(set(got)), "no cell stored twice"
        assert set(got) <= set(keys)
        wait_for(lambda pid=proc.pid: not workers_of(pid), timeout=10)  # no worker outlives its driver

    done_before = [r["key"] for r in read_jsonl(store)]
    assert 0 < len(done_before) < len(keys)
    prefix = store.read_bytes()
    proc = start_driver(grid, tmp_path / "r")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"{len(done_before)} already stored" in err
    records = read_jsonl(store)
    assert sorted(r["key"] for r in records) == sorted(keys)
    assert store.read_bytes().startswith(prefix), "finished records are never rewritten"
    assert all(r["status"] == "ok" for r in records)


def test_two_drivers_on_one_store(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    grid = write_grid(tmp_path, "two", GRID)
    keys = [c.key for c in load_grid(grid).cells()]
    first, second = start_driver(grid, tmp_path / "r"), start_driver(grid, tmp_path / "r")
    outs = [p.communicate(timeout=180) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    records = read_jsonl(tmp_path / "r" / "two" / "records.jsonl")
    got = [r["key"] for r in records]
    assert sorted(got) == sorted(keys), "each cell stored exactly once"
    ran = [int(err.split(" cells: ")[1].split(" ok")[0]) if " ok;" in err else 0 for _, err in outs]
    assert sum(ran) == len(keys), outs  # claims split the work: no cell ran twice


REAL = importlib.util.find_spec("torch_impl") is not None and importlib.util.find_spec("jax_impl") is not None


@pytest.mark.slow
@pytest.mark.skipif(not REAL, reason="backends not built")
def test_real_smoke_resumes_after_kill_9(tmp_path: Path) -> None:
    """``seqbench run smoke`` on the real backends, killed with SIGKILL after its first record, then finished."""
    keys = [c.key for c in load_grid("smoke").cells()]
    store = tmp_path / "r" / "smoke" / "records.jsonl"
    proc = start_driver(Path("smoke"), tmp_path / "r")
    wait_for(lambda: lines(store) >= 1, timeout=300)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    first = [r["key"] for r in read_jsonl(store)]
    proc = start_driver(Path("smoke"), tmp_path / "r")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert f"{len(first)} already stored" in err
    records = read_jsonl(store)
    assert sorted(r["key"] for r in records) == sorted(keys)
    assert [r["key"] for r in records[: len(first)]] == first
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
