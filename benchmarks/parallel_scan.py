"""Parallel scan against the sequential step loop, per backend, over T: the time ratio in one run.

One step = forward, per-step regression loss, backward and an SGD update, through each backend's
own ``train_step`` (jax: one jitted step; torch: autograd and ``torch.optim``), full-length float32
batches. For every (architecture, backend, T) the ``parallel_scan`` and ``reference`` models are
built from the same parameters and timed alternately, each step synchronised; the medians and
their ratio (reference / parallel: above 1, the scan is faster) are printed, one line per cell.

    python benchmarks/parallel_scan.py --quick --threads 1
    python benchmarks/parallel_scan.py --archs mingru --seq-len 256 1024 4096 --hidden 128 --device cuda

Any registered architecture whose models name a ``parallel_scan`` path can be given.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.timing import add_timing_args, clock, single_thread_xla_if_asked

_THREADS = single_thread_xla_if_asked()  # before jax is imported

from experiments.backend import Batch, load_backend  # noqa: E402
from experiments.spec import OptimizerSpec, make_spec  # noqa: E402

QUICK_T = (64, 256, 1024, 4096)
PATHS = ("parallel_scan", "reference")


def stepper(backend, arch: str, hidden: int, layers: int, seq_len: int, batch: int, path: str, device: str):
    """A zero-argument function running one synchronised training step on ``path``."""
    spec = make_spec(arch, input_size=32, hidden_size=hidden, num_layers=layers, head_kind="per_step_regress")
    rng = np.random.default_rng(0)
    data = Batch(
        x=rng.standard_normal((batch, seq_len, 32)).astype(np.float32),
        lengths=np.full(batch, seq_len),
        y=rng.standard_normal((batch, seq_len, spec.head.out_size)).astype(np.float32),
    )
    model = backend.build(spec, spec.init_params(0), precision="float32", device=device, path=path)
    assert backend.execution_path(model) == path, (backend.name, path, backend.execution_path(model))
    state = backend.make_train_state(model, OptimizerSpec(name="sgd", lr=1e-3))
    prepared = backend.prepare_batch(state, data)

    def step() -> None:
        backend.train_step(state, prepared)
        backend.synchronize(device)

    return step


def time_pair(steps: dict[str, object], n: int, warmup: int, now) -> dict[str, float]:
    """Median seconds per step of each path, timed alternately after ``warmup`` steps each."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {p: [] for p in steps}
    for _ in range(n):
        for path, fn in steps.items():
            t0 = now()
            fn()
            times[path].append(now() - t0)
    return {p: statistics.median(v) for p, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["mingru", "minlstm", "lru"])
    ap.add_argument("--backends", nargs="+", default=["torch", "jax"])
    ap.add_argument("--seq-len", nargs="+", type=int, default=list(QUICK_T))
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--quick", action="store_true", help="T in 64..4096, 5 timed steps (a first look, not a figure)")
    add_timing_args(ap, steps=20, warmup=2, threads_help="1: one thread per framework (torch and XLA)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 5)
    if _THREADS is not None:
        import torch

        torch.set_num_threads(_THREADS)
    now = clock(args.clock)
    print(f"# B={args.batch} H={args.hidden} layers={args.layers} float32 {args.device}, {args.steps} steps, median s")
    print(f"{'arch':8s} {'backend':7s} {'T':>5s} {'parallel_s':>11s} {'reference_s':>12s} {'ratio':>7s}")
    for arch in args.archs:
        for name in args.backends:
            backend = load_backend(name)
            for t in args.seq_len:
                sizes = (args.hidden, args.layers, t, args.batch)
                fns = {p: stepper(backend, arch, *sizes, p, args.device) for p in PATHS}
                med = time_pair(fns, args.steps, args.warmup, now)
                ratio = med["reference"] / med["parallel_scan"]
                print(f"{arch:8s} {name:7s} {t:5d} {med['parallel_scan']:11.5f} {med['reference']:12.5f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
