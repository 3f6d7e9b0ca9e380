"""The ray executor on a local Ray (2 CPUs): same keys and statuses as the local executor."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest
from _driver_helpers import check_record, read_jsonl, use_fake, write_grid

from experiments.run.runner import run_grids

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

GRID = """
[axes]
arch = ["lstm", "gru"]
hidden = [16, 32, 13, 17, 19]
backend = ["fake"]
[fixed]
seq_len = 8
batch = 4
min_time_s = 0.02
[[override]]
when = { arch = "gru", hidden = 16 }
set = { kind = "train", task = "adding", task_params = { n_train = 64, n_val = 16, n_test = 16 }, steps = 10 }
"""

TWO_BACKENDS = """
[axes]
hidden = [16, 32, 48]
backend = ["fake", "fake2"]
[fixed]
arch = "lstm"
seq_len = 8
batch = 4
min_time_s = 0.02
"""


def test_ray_and_local_agree_on_keys_and_statuses(tmp_path: Path, monkeypatch) -> None:
    use_fake(monkeypatch)
    path = write_grid(tmp_path, "g", GRID)
    run_grids([path], results_dir=tmp_path / "local", stream=io.StringIO())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        summary = run_grids([path], executor="ray", results_dir=tmp_path / "ray", stream=io.StringIO())
        again = run_grids([path], executor="ray", results_dir=tmp_path / "ray", stream=io.StringIO())
        # two backends: Ray must run them in separate processes (a worker refuses a second backend)
        monkeypatch.setenv("SEQBENCH_TEST_BACKENDS", "fake=tests._driver_helpers,fake2=tests._driver_helpers")
        pair = write_grid(tmp_path, "pair", TWO_BACKENDS)
        mixed = run_grids([pair], executor="ray", results_dir=tmp_path / "ray", stream=io.StringIO())
    finally:
        ray.shutdown()
    local = {r["key"]: r for r in read_jsonl(tmp_path / "local" / "g" / "records.jsonl")}
    remote = {r["key"]: r for r in read_jsonl(tmp_path / "ray" / "g" / "records.jsonl")}
    assert set(local) == set(remote) and len(local) == 10
    assert {k: r["status"] for k, r in local.items()} == {k: r["status"] for k, r in remote.items()}
    statuses = sorted(r["status"] for r in remote.values())
    assert statuses == ["error", "error", "nan", "nan", "ok", "ok", "ok", "ok", "oom", "oom"]
    for r in remote.values():
        check_record(r)
        assert r["env"]["executor"] == "ray"
    assert any(r["kind"] == "train" and r["status"] == "ok" for r in remote.values())
    assert summary.ran == 10 and again.ran == 0 and again.skipped == 10
    assert mixed.counts == {"ok": 6}, mixed.failures


@pytest.mark.slow
@pytest.mark.skipif(
    not (importlib.util.find_spec("torch_impl") and importlib.util.find_spec("jax_impl")), reason="backends not built"
)
def test_driver_check_with_both_executors(tmp_path: Path) -> None:
    """The acceptance grid, {lstm, gru, transformer} x {torch, jax} x T{16, 64} x H{32, 64}, on the
    real backends with the local and the ray executor: the same keys, all ok, every key of the contract."""
    local = run_grids(["driver_check"], results_dir=tmp_path / "local", stream=io.StringIO())
    remote = run_grids(["driver_check"], executor="ray", results_dir=tmp_path / "ray", stream=io.StringIO())
    assert local.counts == {"ok": 24} and remote.counts == {"ok": 24}, (local.failures, remote.failures)
    a = read_jsonl(tmp_path / "local" / "driver_check" / "records.jsonl")
    b = read_jsonl(tmp_path / "ray" / "driver_check" / "records.jsonl")
    assert {r["key"] for r in a} == {r["key"] for r in b}
    for r in a + b:
        check_record(r)
        assert r["env"]["backend"] == r["backend"]
