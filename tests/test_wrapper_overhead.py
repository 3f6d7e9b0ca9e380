"""benchmarks/wrapper_overhead.py: one tiny cell per backend gives a complete record, and the
loss check that guards the timing refuses a baseline that does not compute our function."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from experiments.cell import config_key
from experiments.records.build import SCHEMA

ROOT = Path(__file__).resolve().parents[1]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wrapper_overhead", ROOT / "benchmarks" / "wrapper_overhead.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["wrapper_overhead"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


wo = _load_script()

# one layer: jax compiles two training steps per cell (ours and the baseline's), the test's main cost
TINY = {"batch": 3, "seq_len": 6, "hidden": 16, "input_size": 4, "steps": 3, "warmup": 1}
ONE_LAYER = {"num_layers": 1}


def _doubled_head(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**params, "head.weight": 2.0 * params["head.weight"]}


@pytest.mark.parametrize(("backend", "arch"), [("torch", "lstm"), ("torch", "transformer"), ("jax", "transformer")])
def test_a_tiny_cell_gives_a_complete_record(backend: str, arch: str) -> None:
    rec = wo.compare(backend, arch, **TINY, spec_fields=ONE_LAYER if arch == "transformer" else None)
    assert rec["schema"] == SCHEMA and rec["status"] == "ok" and rec["kind"] == "overhead"
    assert rec["grid"] == "perf_overhead_cpu" and rec["claim_ids"] == [] and rec["task"] is None
    assert (rec["arch"], rec["backend"], rec["seed"]) == (arch, backend, 0)
    assert rec["path"]  # our model's execution path
    config = rec["config"]
    assert rec["key"] == config_key(config)
    assert config["baseline"] == wo.COMPARISONS[(backend, arch)][1]
    assert (config["device"], config["precision"], config["batch"], config["seq_len"]) == ("cpu", "float32", 3, 6)
    assert config["spec"]["arch"] == arch and config["optimizer"]["name"] == "adam"
    assert config["optimizer"]["lr"] == 1e-3
    m = rec["metrics"]
    for name in ("ours_step_s_median", "baseline_step_s_median", "ratio", "ours_step_s_cv", "baseline_step_s_cv"):
        assert np.isfinite(m[name]) and m[name] >= 0, name
    assert m["ratio"] == pytest.approx(m["ours_step_s_median"] / m["baseline_step_s_median"])
    assert m["timed_steps"] == 3 and m["goal"] in (1.03, 1.05)
    # the check ran, on losses that agree
    assert m["loss_checked"] is True
    assert m["first_loss_rel_diff"] < 1e-5
    assert m["first_loss_ours"] == pytest.approx(m["first_loss_baseline"], rel=1e-5)
    env = rec["env"]
    assert env["executor"] == "benchmark" and env["device_kind"] == "cpu" and env["backend"] == backend


@pytest.mark.parametrize(("backend", "arch"), [("torch", "gru"), ("jax", "transformer")])
def test_a_baseline_with_other_parameters_is_refused(backend: str, arch: str) -> None:
    with pytest.raises(wo.LossMismatch, match="refusing to time it"):
        fields = ONE_LAYER if arch == "transformer" else None
        wo.compare(backend, arch, **TINY, baseline_params=_doubled_head, spec_fields=fields)
