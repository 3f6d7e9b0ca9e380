"""jax_impl's data-parallel CPU training step (jax_impl/optim.py) against the one-device step.

XLA's host device count is fixed when jax starts, so the check runs in a subprocess started
with two CPU devices, as a worker is (experiments/run/worker.py ``worker_env``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import numpy as np, jax
    from experiments.backend import load_backend
    from experiments.kinds.inputs import random_batch
    from experiments.spec import OptimizerSpec, make_spec
    from jax_impl import optim

    assert len(jax.devices("cpu")) == 2, jax.devices()
    be = load_backend("jax")
    decide = optim.data_parallel_mesh

    def train(spec, batch_size, data_parallel):
        optim.data_parallel_mesh = decide if data_parallel else (lambda *a: None)
        model = be.build(spec, spec.init_params(0), precision="float32")
        # SGD: linear in the gradients (Adam would amplify float32 rounding of near-zero ones)
        state = be.make_train_state(model, OptimizerSpec(name="sgd", lr=0.1))
        losses = []
        for i in range(3):
            batch = be.prepare_batch(state, random_batch(spec, batch_size, 6, np.random.default_rng(i)))
            if state.mesh is not None:
                assert len(batch[0].sharding.device_set) == 2  # the batch really is split
            losses.append(be.loss_value(be.train_step(state, batch)))
        return losses, be.state_params(state), state.mesh is not None

    for arch in ("lstm", "transformer"):
        spec = make_spec(arch, input_size=3, **({"hidden_size": 8} if arch == "lstm" else {}))
        for batch_size, split in ((4, True), (3, False)):  # an odd batch stays on one device
            dp_losses, dp_params, was_split = train(spec, batch_size, True)
            losses, params, _ = train(spec, batch_size, False)
            assert was_split == split, (arch, batch_size)
            np.testing.assert_allclose(dp_losses, losses, rtol=1e-5)
            for name in params:
                np.testing.assert_allclose(dp_params[name], params[name], rtol=1e-5, atol=1e-6, err_msg=name)
    big_spec = make_spec("lstm", input_size=8, hidden_size=512)
    big = be.build(big_spec, big_spec.init_params(0), precision="float32")
    assert decide(big, 128, 100) is None  # ~820 MFLOP a time step: XLA spreads it already
    print("ok")
    print("ok")
    """
)


def test_data_parallel_step_equals_the_one_device_step() -> None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_a_jax_worker_gets_one_cpu_device_per_core_unless_limited(monkeypatch) -> None:
    from experiments.run.worker import worker_env

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert "--xla_force_host_platform_device_count=2" in worker_env("jax")["XLA_FLAGS"]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert "XLA_FLAGS" not in worker_env("jax")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert "XLA_FLAGS" not in worker_env("jax")  # the user's count wins
    assert "XLA_FLAGS" not in worker_env("torch")
