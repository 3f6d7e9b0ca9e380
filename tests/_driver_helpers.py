"""Test-only helpers for the driver tests: a tiny NumPy backend named ``fake``, and checks.

The ``fake`` backend implements the ``Backend`` protocol with a linear model
over the inputs (it learns a little, so train cells mean something), plus a
little busy work per step so that timings are not zero. It is reachable only
through ``SEQBENCH_TEST_BACKENDS=fake=tests._driver_helpers`` (see
``experiments.backend.backend_modules``), never under a production name.

It also registers the cell kind ``alloc_for_test`` (loaded wherever this module is:
the driver of a test and the ``fake`` workers): it takes ``alloc_mb`` MiB from a
process-wide pool of 1 MiB blocks that it keeps after the cell (as an allocator
caches freed pages) and reads ``measure.MemoryMeter`` around it.

Faults, chosen by the model's size (``hidden``) so that a grid can ask for them:
13 -> MemoryError (status oom), 17 -> the worker kills itself with SIGKILL (a
crash), 19 -> NaN loss from the third step (status nan), 23 -> RuntimeError
(status error), 29 -> hangs (timeout), 31 -> loss blows up (status diverged).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.backend import Batch, ForwardResult, Gradients
from experiments.errors import PathUnavailable
from experiments.kinds import CELL_KINDS, register_cell_kind

REPO = Path(__file__).resolve().parent.parent
FAULTS = {13: "oom", 17: "crash", 19: "nan", 23: "error", 29: "hang", 31: "blowup"}


def fake_env() -> dict[str, str]:
    """Environment that makes the ``fake`` backend loadable in workers and driver subprocesses."""
    path = os.environ.get("PYTHONPATH", "")
    return {
        "SEQBENCH_TEST_BACKENDS": "fake=tests._driver_helpers",
        "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO),
    }


def use_fake(monkeypatch: Any) -> None:
    for key, value in fake_env().items():
        monkeypatch.setenv(key, value)


def _size(spec: Any) -> int:
    return int(getattr(spec, "hidden_size", None) or spec.d_model)


class FakeModel:
    def __init__(self, spec: Any, params: dict[str, np.ndarray], dtype: Any) -> None:
        self.spec = spec
        self.params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.dtype = dtype
        self.fault = FAULTS.get(_size(spec))
        n_in = min(spec.input_size, self.params["head.weight"].shape[1])
        self.n_in = n_in
        rng = np.random.default_rng(0)
        self.busy = rng.standard_normal((spec.input_size, _size(spec))).astype(dtype)

    def features(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Rows the linear head reads: pooled (B, n_in) or per step (B, T, n_in)."""
        x = x[..., : self.n_in]
        if self.spec.head.per_step:
            return x
        mask = (np.arange(x.shape[1])[None, :] < lengths[:, None])[..., None]
        return (x * mask).sum(1) / np.maximum(lengths, 1)[:, None]

    def logits(self, feats: np.ndarray) -> np.ndarray:
        w = self.params["head.weight"][:, : self.n_in]
        return feats @ w.T + self.params["head.bias"]


class FakeBackend:
    name = "fake"

    def numerics(self):
        return contextlib.nullcontext()  # numpy: IEEE, nothing to set

    def build(self, spec, params, *, precision="float32", device="cpu", path="auto"):
        if device != "cpu":
            raise RuntimeError("the fake backend runs on cpu only")
        if path == "on":
            raise PathUnavailable("the fake backend has no fast path")
        model = FakeModel(spec, params, np.float64 if precision == "float64" else np.float32)
        if model.fault == "oom":
            raise MemoryError("fake: out of memory")
        if model.fault == "error":
            raise RuntimeError("fake: boom")
        if model.fault == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        if model.fault == "hang":
            time.sleep(3600)
        return model

    def export_params(self, model):
        return {k: v.copy() for k, v in model.params.items()}

    def execution_path(self, model):
        return "numpy"

    def forward(self, model, batch, *, train=False, seed=0, return_extras=False):
        feats = model.features(batch.x, batch.lengths)
        logits = model.logits(feats)
        b, t = batch.x.shape[:2]
        outputs = np.zeros((b, t, model.spec.output_size))
        pooled = np.zeros((b, model.spec.pooled_size))
        return ForwardResult(outputs=outputs, pooled=pooled, logits=logits)

    def _loss_grad(self, model: FakeModel, batch: Batch) -> tuple[float, np.ndarray, np.ndarray]:
        feats = model.features(batch.x.astype(np.float64), batch.lengths)
        logits = model.logits(feats)
        head = model.spec.head
        if head.per_step:
            mask = batch.mask.reshape(-1)
            feats = feats.reshape(-1, feats.shape[-1])[mask]
            logits = logits.reshape(-1, logits.shape[-1])[mask]
            y = batch.y.reshape(-1, *batch.y.shape[2:])[mask]
        else:
            y = batch.y
        n = max(len(logits), 1)
        if head.is_classification:
            z = logits - logits.max(-1, keepdims=True)
            p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
            loss = float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())
            d = p.copy()
            d[np.arange(len(y)), y] -= 1.0
            d /= n
        else:
            diff = logits - y
            loss = float((diff**2).mean())
            d = 2 * diff / diff.size
        return loss, d.T @ feats, d.sum(0)

    def loss_and_grads(self, model, batch):
        loss, gw, gb = self._loss_grad(model, batch)
        grads = {k: np.zeros_like(v) for k, v in model.params.items()}
        grads["head.weight"][:, : model.n_in] = gw
        grads["head.bias"] = gb
        return Gradients(loss=loss, params=grads, inputs=np.zeros_like(batch.x))

    def saved_bytes(self, model, batch):
        # the linear head's weight gradient needs only the features it read: those are "saved"
        feats = model.features(batch.x.astype(model.dtype), batch.lengths)
        return {"saved_bytes": int(feats.nbytes), "saved_param_bytes": 0, "saved_input_bytes": 0, "saved_buffers": 1}

    def make_train_state(self, model, optimizer, *, seed=0):
        return {"model": model, "lr": optimizer.lr, "step": 0}

    def prepare_batch(self, state_or_model, batch):
        model = state_or_model["model"] if isinstance(state_or_model, dict) else state_or_model
        return Batch(x=batch.x.astype(model.dtype), lengths=batch.lengths, y=batch.y)

    def train_step(self, state, batch):
        model: FakeModel = state["model"]
        state["step"] += 1
        np.tanh(batch.x.reshape(-1, batch.x.shape[-1]) @ model.busy)  # work proportional to B*T*I*H
        loss, gw, gb = self._loss_grad(model, batch)
        model.params["head.weight"][:, : model.n_in] -= state["lr"] * gw
        model.params["head.bias"] -= state["lr"] * gb
        if model.fault == "nan" and state["step"] >= 3:
            return np.float64("nan")
        if model.fault == "blowup" and state["step"] >= 3:
            return np.float64(loss * 10.0 ** min(state["step"], 50))
        return np.float64(loss)

    def loss_value(self, loss):
        return float(loss)

    def state_params(self, state):
        return self.export_params(state["model"])

    def check_device(self, device="cpu"):
        if device != "cpu":
            from experiments.errors import UserError

            raise UserError("device", f"the fake backend runs on cpu only, not {device}", "use --device cpu")

    def synchronize(self, device="cpu"):
        return None

    def reset_peak_memory(self, device="cpu"):
        return None

    def peak_memory_bytes(self, device="cpu"):
        return None

    def describe(self, device="cpu", precision="float32"):
        return {
            "device_kind": device,
            "device_name": "fake numpy device",
            "framework": "numpy",
            "framework_version": np.__version__,
            "precision": precision,
        }

    def gemm_times(self, device="cpu", precision="float32"):
        n = 256
        a = np.ones((n, n), dtype=np.float64 if precision == "float64" else np.float32)
        a @ a
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            a @ a
            times.append(time.perf_counter() - t0)
        return n, times


BACKEND = FakeBackend()


# -- a cell kind whose memory need is known: alloc_mb MiB, from a pool that outlives the cell ------------

_POOL: list[np.ndarray] = []  # freed blocks the "allocator" keeps for the next cell of this process
MiB = 2**20


def alloc_cell(backend: Any, cell: Any) -> dict[str, Any]:
    from experiments.kinds.measure import MemoryMeter

    meter = MemoryMeter(backend, cell.device)
    meter.start()
    need = int(cell.settings["alloc_mb"])
    blocks = [_POOL.pop() for _ in range(min(need, len(_POOL)))]
    blocks += [np.empty(MiB, dtype=np.uint8) for _ in range(need - len(blocks))]
    for b in blocks:
        b.fill(1)  # touch every page
    peak = meter.read()
    _POOL.extend(blocks)  # "freed", but cached by this process
    return {"peak_mem_bytes": peak, "mem_kind": meter.kind, "need_bytes": need * MiB}


if "alloc_for_test" not in CELL_KINDS:  # imported as _driver_helpers and tests._driver_helpers alike
    register_cell_kind("alloc_for_test", settings={"alloc_mb": 1})(alloc_cell)


# -- checks shared by the driver tests ---------------------------------------------------------

RECORD_KEYS = (
    "schema",
    "key",
    "claim_ids",
    "grid",
    "arch",
    "backend",
    "path",
    "task",
    "kind",
    "config",
    "seed",
    "status",
    "metrics",
    "env",
)
BENCH_METRICS = (
    "step_s_median",
    "step_s_iqr",
    "step_s_cv",
    "compile_s",
    "peak_mem_bytes",
    "flops_per_step",
    "flops_per_s",
    "peak_fraction",
)
TRAIN_METRICS = ("final_val_metric", "best_val_metric", "steps_to_threshold", "baseline_metric", "diverged", "curves")


def check_record(rec: dict[str, Any]) -> None:
    """Every key of the record contract; the kind's metric names when the cell ran."""
    missing = [k for k in RECORD_KEYS if k not in rec]
    assert not missing, f"record lacks {missing}"
    assert rec["status"] in ("ok", "oom", "nan", "diverged", "error")
    assert rec["env"].get("git_commit") is not None or "git_commit" in rec["env"]
    assert "device_kind" in rec["env"] and "time" in rec["env"]
    if rec["status"] == "error":
        assert rec.get("error"), "an error record carries its message"
    if rec["status"] == "ok":
        wanted = BENCH_METRICS if rec["kind"] == "bench" else TRAIN_METRICS if rec["kind"] == "train" else ()
        absent = [m for m in wanted if m not in rec["metrics"]]
        assert not absent, f"{rec['kind']} record lacks metrics {absent}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line must parse (the store's promise)."""
    text = Path(path).read_text()
    return [json.loads(line) for line in text.splitlines()]


def write_grid(folder: Path, name: str, text: str) -> Path:
    path = Path(folder) / f"{name}.toml"
    path.write_text(text)
    return path


def seqbench(*args: str, env: dict[str, str] | None = None, **kw: Any):
    """``python -m experiments ARGS`` in a subprocess (the fake backend loadable)."""
    import subprocess

    full_env = {**os.environ, **fake_env(), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "experiments", *args], env=full_env, capture_output=True, text=True, **kw
    )
