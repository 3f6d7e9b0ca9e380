"""Driver overhead: a ``bench`` cell through the driver against a bare loop timing the same model.

Both run in the same worker process (``experiments.run.worker``): the driver's way
(the cell pickled to the worker, the ``bench`` kind, its warm-up and timed loop,
the result sent back) and a bare loop (build, warm up, then ``train_step`` +
``synchronize`` under ``perf_counter``, as many steps as the driver timed, on the
same seeded batches). Rounds alternate which goes first. Prints both medians per
round and the ratio of their medians; the goal is a ratio <= 1.02. Not a test.

    python benchmarks/driver_overhead.py                      # lstm on torch, CPU
    python benchmarks/driver_overhead.py --backend jax --arch transformer --seq-len 128 --hidden 128
    python benchmarks/driver_overhead.py --device cuda --batch 64 --seq-len 256 --hidden 512
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.cell import Cell  # noqa: E402
from experiments.commands.bench import bench_grid  # noqa: E402
from experiments.kinds.inputs import random_batch  # noqa: E402
from experiments.kinds.registry import build_model  # noqa: E402
from experiments.run.worker import WorkerProcess  # noqa: E402

BARE_WARMUP = 10


def bare_loop(backend, cell: Cell, steps: int) -> float:
    """Median step time of a plain loop over the cell's model and batches (runs inside the worker)."""
    spec = cell.build_spec()
    rng = np.random.default_rng(cell.seed)
    host = [random_batch(spec, cell.batch, cell.seq_len, rng) for _ in range(cell.settings["n_batches"])]
    model = build_model(backend, cell, spec, spec.init_params(cell.seed))
    state = backend.make_train_state(model, cell.optimizer_spec(), seed=cell.seed)
    batches = [backend.prepare_batch(state, b) for b in host]
    for i in range(BARE_WARMUP):
        backend.train_step(state, batches[i % len(batches)])
        backend.synchronize(cell.device)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        backend.train_step(state, batches[i % len(batches)])
        backend.synchronize(cell.device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def null_step_overhead(n: int = 200_000) -> tuple[float, float]:
    """Seconds per step of the driver's timing loop and of a bare loop around a step that does nothing:
    the driver's own cost per step, free of the model's noise."""
    from experiments.kinds.measure import time_steps

    def step(b):
        return b

    def sync():
        return None

    batches = [0, 1]
    t0 = time.perf_counter()
    timing = time_steps(step, sync, batches, min_timed_steps=n, min_time_s=0.0, max_timed_steps=n)
    driver = (time.perf_counter() - t0) / (len(timing.times) + len(timing.warmup_times))
    t0 = time.perf_counter()
    times = []
    for i in range(n):
        a = time.perf_counter()
        step(batches[i % 2])
        sync()
        times.append(time.perf_counter() - a)
    bare = (time.perf_counter() - t0) / n
    return driver, bare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="lstm")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--path", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    (cell,) = bench_grid(args).cells()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    worker = WorkerProcess(cell.backend)
    worker.start()
    driver, bare, walls = [], [], []
    steps = 50  # the bare loop times as many steps as the driver's last cell did
    try:
        for r in range(args.rounds):
            order = ("driver", "bare") if r % 2 == 0 else ("bare", "driver")
            for which in order:
                if which == "driver":
                    t0 = time.perf_counter()
                    result = worker.run(cell)
                    walls.append(time.perf_counter() - t0)
                    if result["status"] != "ok":
                        print(f"the cell failed: {result['status']} {result.get('error')}", file=sys.stderr)
                        return 1
                    driver.append(result["metrics"]["step_s_median"])
                    steps = result["metrics"]["timed_steps"]
                else:
                    bare.append(worker.call("benchmarks.driver_overhead.bare_loop", cell, steps))
            print(f"round {r + 1}: driver {driver[-1] * 1e3:.4f} ms/step, bare {bare[-1] * 1e3:.4f} ms/step")
    finally:
        worker.stop()
    ratio = statistics.median(driver) / statistics.median(bare)
    loop_driver, loop_bare = null_step_overhead()
    extra = max(0.0, loop_driver - loop_bare)
    print(
        f"timing loop around a no-op step: driver {loop_driver * 1e9:.0f} ns/step, bare {loop_bare * 1e9:.0f} ns/step; "
        f"at the bare median of {statistics.median(bare) * 1e3:.4f} ms that is a ratio of "
        f"{1 + extra / statistics.median(bare):.5f}"
    )
    print(
        f"{cell.arch}/{cell.backend} {cell.device} B={cell.batch} T={cell.seq_len} "
        f"H={args.hidden}: driver/bare median step time = {ratio:.4f} (goal <= 1.02); "
        f"a cell's wall time through the worker: median {statistics.median(walls):.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
