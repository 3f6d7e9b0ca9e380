"""The ``fresh_worker`` resource: a cell in a worker process of its own, so that a CPU memory reading
(peak RSS) is the cell's alone; the grid default, the records' labels, and what the claims make of them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _claims_helpers import bench
from _driver_helpers import MiB, read_jsonl, use_fake, write_grid

from experiments.claims import analyze
from experiments.claims.cost import common as cost
from experiments.claims.verdict import CONFIRMED, INCONCLUSIVE
from experiments.cli import main
from experiments.errors import UserError
from experiments.grid import load_grid
from experiments.run.runner import run_grids

BENCH = """
kind = "bench"
[axes]
hidden = [40, 41, 42]
[fixed]
arch = "lstm"
backend = "fake"
seq_len = 8
batch = 4
min_time_s = 0.02
"""

# a big cell, then a small one: in a reused worker the small one takes the pages the big one left
ALLOC = """
kind = "alloc_for_test"
[axes]
alloc_mb = [96, 32]
[fixed]
arch = "lstm"
backend = "fake"
"""


@pytest.fixture
def fake(monkeypatch):
    use_fake(monkeypatch)


def run(path: Path, results: Path) -> list[dict]:
    summary = run_grids([path], results_dir=results, stream=io.StringIO())
    records = read_jsonl(results / path.stem / "records.jsonl")
    assert summary.counts == {"ok": len(records)}, [r.get("error") for r in records]
    return records


# -- the grid --------------------------------------------------------------------------------------


def test_fresh_worker_defaults_to_cpu_bench_cells_and_is_no_part_of_the_key(tmp_path: Path, fake) -> None:
    grid = load_grid(write_grid(tmp_path, "g", BENCH))
    assert all(c.resources["fresh_worker"] is True for c in grid.cells())
    assert all(c.resources["fresh_worker"] is False for c in grid.cells("cuda"))  # the allocator's own peak there
    train = BENCH.replace('kind = "bench"', 'kind = "train"').replace("min_time_s = 0.02", 'task = "adding"')
    assert all(c.resources["fresh_worker"] is False for c in load_grid(write_grid(tmp_path, "t", train)).cells())
    off = load_grid(write_grid(tmp_path, "off", BENCH + "fresh_worker = false\n")).cells()
    assert all(c.resources["fresh_worker"] is False for c in off)
    assert [c.key for c in off] == [c.key for c in grid.cells()]  # how, not what


def test_a_non_boolean_fresh_worker_is_refused_in_one_line(tmp_path: Path, fake, capsys) -> None:
    path = write_grid(tmp_path, "broken", BENCH + 'fresh_worker = "yes"\n')
    with pytest.raises(UserError) as info:
        load_grid(path).cells()
    message = str(info.value)
    assert "broken.toml" in message and "fresh_worker" in message and "true or false" in message, message
    assert "\n" not in message
    assert main(["run", str(path), "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fresh_worker" in err[0]


# -- the executor ----------------------------------------------------------------------------------


def test_a_fresh_worker_cell_gets_a_new_process_and_a_reused_one_does_not(tmp_path: Path, fake) -> None:
    fresh = run(write_grid(tmp_path, "fresh", BENCH), tmp_path / "r")
    pids = [r["env"]["worker_pid"] for r in fresh]
    assert len(set(pids)) == 3
    assert all(r["env"]["fresh_worker"] is True and r["metrics"]["mem_kind"] == "cpu_rss_fresh" for r in fresh)

    reused = run(write_grid(tmp_path, "reused", BENCH + "fresh_worker = false\n"), tmp_path / "r")
    assert len({r["env"]["worker_pid"] for r in reused}) == 1
    # the worker's first cell was still fresh; the others ran after it
    assert [r["env"]["fresh_worker"] for r in reused] == [True, False, False]
    assert [r["metrics"]["mem_kind"] for r in reused] == ["cpu_rss_fresh", "cpu_rss_delta", "cpu_rss_delta"]


def test_fresh_workers_read_each_cells_own_memory_where_a_reused_worker_hides_it(tmp_path: Path, fake) -> None:
    """96 MiB then 32 MiB: reused, the second cell takes the pages the first left and reads almost nothing."""
    reused = run(write_grid(tmp_path, "reused", ALLOC + "fresh_worker = false\n"), tmp_path / "r")
    fresh = run(write_grid(tmp_path, "fresh", ALLOC + "fresh_worker = true\n"), tmp_path / "r")
    for records in (reused, fresh):
        big = records[0]["metrics"]
        assert 0.9 * big["need_bytes"] <= big["peak_mem_bytes"] < 1.5 * big["need_bytes"], big
    small_reused, small_fresh = reused[1]["metrics"], fresh[1]["metrics"]
    need = small_fresh["need_bytes"]
    assert need == 32 * MiB
    assert small_reused["peak_mem_bytes"] < 0.25 * need, small_reused  # hidden by the earlier cell's pages
    assert small_reused["mem_kind"] == "cpu_rss_delta"
    assert 0.9 * need <= small_fresh["peak_mem_bytes"] < 1.5 * need, small_fresh  # this cell's own need
    assert small_fresh["peak_mem_bytes"] < fresh[0]["metrics"]["peak_mem_bytes"]
    assert small_fresh["mem_kind"] == "cpu_rss_fresh"
    assert reused[0]["env"]["worker_pid"] == reused[1]["env"]["worker_pid"]
    assert fresh[0]["env"]["worker_pid"] != fresh[1]["env"]["worker_pid"]


# -- the claims ------------------------------------------------------------------------------------

S1_T = (100, 500, 1000, 2000)


def fresh_s2(backend: str = "torch") -> list[dict]:
    return [
        bench("S2", 1.0, mem=1e6 * t, seq_len=t, backend=backend, metrics={"mem_kind": "cpu_rss_fresh"}) for t in S1_T
    ]


def test_cpu_memory_decides_nothing_even_from_fresh_workers() -> None:
    """A fresh reading still follows the allocator (and jax's holds XLA's compile memory): capped."""
    for backend in ("torch", "jax"):
        res = analyze("S2", fresh_s2(backend))
        assert res.verdict == INCONCLUSIVE
        assert all("allocator" in p.reason for p in res.rows[0].verdict.parts)


def test_a_backend_trusted_for_fresh_readings_decides_its_own_parts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism behind FRESH_CPU_MEMORY_BACKENDS: per backend, and never from reused workers."""
    monkeypatch.setattr(cost, "FRESH_CPU_MEMORY_BACKENDS", ("torch",))
    assert analyze("S2", fresh_s2("torch")).verdict == CONFIRMED
    parts = analyze("S2", fresh_s2("torch") + fresh_s2("jax")).rows[0].verdict.parts
    torch_parts = [p for p in parts if p.name.startswith("torch:")]
    jax_parts = [p for p in parts if p.name.startswith("jax:")]
    assert torch_parts and all(p.verdict == CONFIRMED for p in torch_parts)
    assert jax_parts and all(p.verdict == INCONCLUSIVE for p in jax_parts)
    reused = [*fresh_s2()[:-1], bench("S2", 1.0, mem=2e9, seq_len=2000, metrics={"mem_kind": "cpu_rss_delta"})]
    assert analyze("S2", reused).verdict == INCONCLUSIVE
