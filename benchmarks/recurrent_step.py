"""JAX recurrent training step against torch's ``nn.RNN/LSTM/GRU``, back to back in one process.

One step = forward, classification loss on the final hidden state, backward and
Adam, on full-length float32 sequences (input 32). JAX runs ``jax_impl``'s backend
(``train_step``: one jitted, donated step, fast ``scan`` path); torch runs its own
module and ``torch.optim.Adam``. Each side: warm-up, then the median of at least
``--steps`` steps, each synchronised (``block_until_ready``), timed alternately.

    python benchmarks/recurrent_step.py --quick
    python benchmarks/recurrent_step.py --cells lstm --hidden 128 256 --seq-len 100 --batch 32

Prints one line per cell: medians and their ratio jax/torch (below 1: JAX is faster), then
the minima (the best case, what other load on the machine disturbs least).

Torch flushes float32 subnormals to zero here, as XLA:CPU does and as the suite's torch backend does
(``torch_impl/backend.py``); ``--torch-subnormals keep`` times it under IEEE subnormals instead, the
torch default, which a long-T backward pays for in microcode assists:

    python benchmarks/recurrent_step.py --cells lstm --hidden 64 --seq-len 500 --batch 16 --threads 1 \
        --torch-subnormals keep     # then without the flag
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from benchmarks.timing import add_timing_args, clock, single_thread_xla_if_asked

_THREADS = single_thread_xla_if_asked()  # before jax is imported

import jax_impl  # noqa: E402  (after XLA_FLAGS)
from experiments.backend import Batch  # noqa: E402
from experiments.spec import OptimizerSpec, make_spec  # noqa: E402

INPUT = 32
QUICK = [("lstm", 128, 100, 32), ("gru", 128, 100, 32), ("rnn", 128, 100, 32), ("lstm", 256, 100, 32)]


def jax_stepper(cell: str, hidden: int, seq_len: int, batch: int, unroll: int | None):
    import jax

    from jax_impl.recurrent import RecurrentModel

    be = jax_impl.BACKEND
    spec = make_spec(cell, input_size=INPUT, hidden_size=hidden, head_kind="classify", head_out=2)
    params = spec.init_params(0)
    if unroll is None:
        model = be.build(spec, params, precision="float32")
    else:
        model = RecurrentModel(spec, params, precision="float32", path="scan", unroll=unroll)
    state = be.make_train_state(model, OptimizerSpec(name="adam", lr=1e-3))
    rng = np.random.default_rng(0)
    batches = [
        be.prepare_batch(
            state,
            Batch(
                x=rng.standard_normal((batch, seq_len, INPUT)).astype(np.float32),
                lengths=np.full(batch, seq_len, dtype=np.int64),
                y=rng.integers(0, 2, batch),
            ),
        )
        for _ in range(2)
    ]
    counter = itertools.count()

    def step() -> None:
        jax.block_until_ready(be.train_step(state, batches[next(counter) % 2]))

    return step


def torch_stepper(cell: str, hidden: int, seq_len: int, batch: int):
    import torch

    torch.manual_seed(0)
    rnn_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    rnn = rnn_cls(INPUT, hidden, batch_first=True)
    head = torch.nn.Linear(hidden, 2)
    params = [*rnn.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    rng = np.random.default_rng(0)
    batches = [
        (
            torch.from_numpy(rng.standard_normal((batch, seq_len, INPUT)).astype(np.float32)),
            torch.from_numpy(rng.integers(0, 2, batch)),
        )
        for _ in range(2)
    ]
    counter = itertools.count()

    def step() -> None:
        x, y = batches[next(counter) % 2]
        opt.zero_grad(set_to_none=True)
        _, h = rnn(x)
        h_n = h[0] if cell == "lstm" else h
        loss = torch.nn.functional.cross_entropy(head(h_n[-1]), y)
        loss.backward()
        opt.step()

    return step


def timed(step, clock) -> float:
    t0 = clock()
    step()
    return clock() - t0


def measure(cell: str, hidden: int, seq_len: int, batch: int, steps: int, warmup: int, unroll: int | None, clock):
    j, t = jax_stepper(cell, hidden, seq_len, batch, unroll), torch_stepper(cell, hidden, seq_len, batch)
    for _ in range(warmup):
        j()
        t()
    jt, tt = [], []
    for _ in range(steps):  # alternate, so that drift in the machine hits both sides alike
        jt.append(timed(j, clock))
        tt.append(timed(t, clock))
    return statistics.median(jt), statistics.median(tt), min(jt), min(tt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    ap.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"])
    ap.add_argument("--hidden", nargs="+", type=int, default=[128, 256, 512, 1024])
    ap.add_argument("--seq-len", nargs="+", type=int, default=[100, 500])
    ap.add_argument("--batch", nargs="+", type=int, default=[32, 128])
    add_timing_args(ap, steps=20, warmup=3, threads_help="1: both frameworks single-threaded (default: all cores)")
    ap.add_argument("--unroll", type=int, default=None, help="override the scan's unroll (default: the model's)")
    ap.add_argument(
        "--torch-subnormals",
        choices=["flush", "keep"],
        default="flush",
        help="flush: float32 subnormals to zero, as XLA:CPU and the suite do (default); keep: torch's IEEE default",
    )
    args = ap.parse_args(argv)

    import jax
    import torch

    flushed = torch.set_flush_denormal(args.torch_subnormals == "flush") and args.torch_subnormals == "flush"
    subnormals = "flushed" if flushed else "kept"

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    grid = QUICK if args.quick else list(itertools.product(args.cells, args.hidden, args.seq_len, args.batch))
    print(
        f"# jax {jax.__version__} ({jax.devices()[0].device_kind}), torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}, torch subnormals {subnormals}, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
        f"float32, input {INPUT}, Adam; median of {args.steps} steps, {args.clock} clock; "
        f"load average {load:.1f} at start"
    )
    header = f"{'cell':<5} {'H':>5} {'T':>4} {'B':>4} {'jax ms':>9} {'torch ms':>9} {'jax/torch':>9}"
    print(header + "   (min: jax, torch, ratio)")
    for cell, hidden, seq_len, batch in grid:
        j, t, jmin, tmin = measure(
            cell, hidden, seq_len, batch, args.steps, args.warmup, args.unroll, clock(args.clock)
        )
        row = f"{cell:<5} {hidden:>5} {seq_len:>4} {batch:>4} {j * 1e3:>9.2f} {t * 1e3:>9.2f} {j / t:>9.2f}"
        row += f"   ({jmin * 1e3:.2f}, {tmin * 1e3:.2f}, {jmin / tmin:.2f})"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
