"""A plain ``nn.LSTM`` training loop against the suite's ``train`` cell on delayed recall.

The question (an issue): a hand-written loop solved delayed recall T=10 in 2 of 3 seeds where
the suite's train cells (experiments/configs/claim_l6_l9_quick.toml) solved 0 of 3. Chance, or a
difference in the train cell (head init, batch order, evaluation)?

Both sides get the same data, ``load_task("delayed_recall", seed=seed, seq_len=T, n_classes=2,
n_train=5000, n_val=500, n_test=500)`` (the suite's ``data_seed`` is its ``seed``), batch 32,
``torch.optim.Adam(lr)`` and a step budget, float32 on the CPU, and are scored by their val
accuracy after the last step; solved means >= 0.95 (the task's threshold). Arms:

- ``suite``: the train cell through its public path: a ``Cell`` resolved by ``experiments.grid``
  from a grid of the old quick grid's keys, run by ``experiments.kinds.train.train_cell`` on the
  torch backend (what a worker does with it).
- ``plain``: ``nn.LSTM(batch_first=True)`` + ``nn.Linear`` on the last hidden state, PyTorch's
  default init after ``torch.manual_seed(seed)``, 32 random draws (with replacement) each step.
- one ingredient of the suite swapped into the plain loop at a time:
  ``suite_init`` (every weight from the spec's ``init_params(seed)``), ``suite_lstm_init`` (the
  LSTM's only), ``suite_head_init`` (the head's only), ``suite_order`` (the train cell's batches:
  a fresh permutation each epoch from ``default_rng([seed, 1])``, full batches only);
- ``replica``: the plain loop with both suite ingredients. It should reproduce ``suite`` to the
  last digit; ``max |replica - suite|`` is printed as the check that nothing else differs.

Evaluation needs no arm: both read the same val split after the same step, by argmax.

Per setting and arm: solved k/n with a Wilson 95% interval, mean and median final accuracy,
and a two-sided Fisher exact test of each arm's solve count against ``plain`` and ``suite``.
Every run is appended to ``--out`` (JSON lines) and skipped when run again with the same file.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plain_loop.py --seeds 10    # every arm and setting

A run takes ~3 s (quick, T=10) to ~30 s (long, T=20) on one free core, so the full default is
long. The runs behind the answer to the issue, on a shared 2-core machine (about 40 minutes):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plain_loop.py --settings quick_T10 --seeds 20 \\
        --arms suite plain suite_init suite_order replica
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plain_loop.py --settings quick_T20 long_T10 --seeds 10 \\
        --arms suite plain suite_init suite_order
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plain_loop.py --settings long_T20 --seeds 10 --arms suite plain
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from scipy.stats import binomtest, fisher_exact
from torch import nn

from experiments.backend import load_backend
from experiments.cell import Cell
from experiments.grid import Grid, GridFile
from experiments.kinds.train import train_cell
from experiments.tasks import load_task

SOLVED = 0.95  # delayed_recall's threshold
BATCH = 32
TASK = {"n_classes": 2, "n_train": 5000, "n_val": 500, "n_test": 500}
# name -> (T, hidden, lr, steps): the old quick budget and a longer one, at T=10 and T=20
SETTINGS: dict[str, tuple[int, int, float, int]] = {
    "quick_T10": (10, 32, 1e-2, 800),
    "quick_T20": (20, 32, 1e-2, 800),
    "long_T10": (10, 64, 3e-3, 1500),
    "long_T20": (20, 64, 3e-3, 1500),
}
# plain-loop arm -> (LSTM init, head init, batch order); "suite" is the train cell itself
PLAIN_ARMS: dict[str, tuple[str, str, str]] = {
    "plain": ("torch", "torch", "random"),
    "suite_init": ("suite", "suite", "random"),
    "suite_lstm_init": ("suite", "torch", "random"),
    "suite_head_init": ("torch", "suite", "random"),
    "suite_order": ("torch", "torch", "perm"),
    "replica": ("suite", "suite", "perm"),
}
ARMS = ("suite", *PLAIN_ARMS)


def suite_cell(seed: int, seq_len: int, hidden: int, lr: float, steps: int) -> Cell:
    """The train cell the runner would run for these values (the old quick grid's keys)."""
    raw = {
        "kind": "train",
        "fixed": {
            "arch": "lstm",
            "backend": "torch",
            "task": "delayed_recall",
            "seq_len": seq_len,
            "seed": seed,
            "hidden": hidden,
            "batch": BATCH,
            "lr": lr,
            "steps": steps,
            "eval_every": 100,
            "eval_batch": 500,
            **{f"task_params.{k}": v for k, v in TASK.items()},
        },
    }
    grid = Grid(name="plain_loop", path=Path("plain_loop.toml"), file=GridFile.model_validate(raw))
    (cell,) = grid.cells()
    return cell


def run_suite(seed: int, seq_len: int, hidden: int, lr: float, steps: int) -> float:
    result = train_cell(load_backend("torch"), suite_cell(seed, seq_len, hidden, lr, steps))
    if result.status != "ok":
        raise RuntimeError(f"suite cell ended {result.status}")
    return float(result.metrics["final_val_metric"])


class PlainLSTM(nn.Module):
    def __init__(self, input_size: int, hidden: int, n_classes: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def run_plain(
    seed: int, seq_len: int, hidden: int, lr: float, steps: int, lstm_init: str, head_init: str, order: str
) -> float:
    task = load_task("delayed_recall", seed=seed, seq_len=seq_len, **TASK)
    torch.manual_seed(seed)
    model = PlainLSTM(task.input_size, hidden, task.head.out_size)  # PyTorch's default init
    if "suite" in (lstm_init, head_init):
        params = suite_cell(seed, seq_len, hidden, lr, steps).build_spec().init_params(seed)
        named = dict(model.named_parameters())  # the spec's names are this module's ("rnn.", "head.")
        with torch.no_grad():
            for name, value in params.items():
                if (lstm_init if name.startswith("rnn.") else head_init) == "suite":
                    named[name].copy_(torch.from_numpy(value).float())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = torch.from_numpy(task.train.x).float()
    y = torch.from_numpy(task.train.y).long()
    n = len(y)
    rng = np.random.default_rng([seed, 1] if order == "perm" else seed)
    perm, pos = np.empty(0, dtype=np.int64), 0
    for _ in range(steps):
        if order == "perm":  # the train cell's: a fresh permutation each epoch, full batches only
            if pos + BATCH > len(perm):
                perm, pos = rng.permutation(n), 0
            idx, pos = perm[pos : pos + BATCH], pos + BATCH
        else:
            idx = rng.integers(0, n, size=BATCH)
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(task.val.x).float()).argmax(-1).numpy()
    return float((pred == task.val.y).mean())


def run_arm(arm: str, seed: int, setting: str) -> float:
    seq_len, hidden, lr, steps = SETTINGS[setting]
    if arm == "suite":
        return run_suite(seed, seq_len, hidden, lr, steps)
    return run_plain(seed, seq_len, hidden, lr, steps, *PLAIN_ARMS[arm])


def wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return ci.low, ci.high


def fisher_p(a: list[float], b: list[float]) -> float:
    ka, kb = sum(v >= SOLVED for v in a), sum(v >= SOLVED for v in b)
    return float(fisher_exact([[ka, len(a) - ka], [kb, len(b) - kb]]).pvalue)


def report(setting: str, accs: dict[str, list[float]]) -> None:
    seq_len, hidden, lr, steps = SETTINGS[setting]
    print(f"\n== {setting}: T={seq_len} H={hidden} lr={lr:g} steps={steps} B={BATCH} (solved: val acc >= {SOLVED})")
    print(
        f"{'arm':<16} {'solved':>7} {'Wilson 95%':>14} {'mean':>6} {'median':>6} {'p vs plain':>10} {'p vs suite':>10}"
    )
    for arm, values in accs.items():
        k, n = sum(v >= SOLVED for v in values), len(values)
        lo, hi = wilson(k, n)
        p_plain = f"{fisher_p(values, accs['plain']):.3f}" if "plain" in accs and arm != "plain" else "-"
        p_suite = f"{fisher_p(values, accs['suite']):.3f}" if "suite" in accs and arm != "suite" else "-"
        print(
            f"{arm:<16} {f'{k}/{n}':>7} {f'[{lo:.2f}, {hi:.2f}]':>14} {statistics.mean(values):6.3f} "
            f"{statistics.median(values):6.3f} {p_plain:>10} {p_suite:>10}"
        )
    for arm, values in accs.items():
        print(f"  {arm:<14} " + " ".join(f"{v:.3f}" for v in values))
    if "suite" in accs and "replica" in accs:
        diff = max(abs(a - b) for a, b in zip(accs["suite"], accs["replica"], strict=True))
        print(f"  max |replica - suite| over seeds: {diff:.4f} (0: the replica loop is the train cell)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 for every arm")
    parser.add_argument("--out", type=Path, default=Path("/tmp/plain_loop.jsonl"), help="runs, JSON lines")
    args = parser.parse_args()
    torch.set_num_threads(1)

    done: dict[tuple[str, str, int], float] = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["setting"], r["arm"], r["seed"])] = r["val_acc"]
    began = time.perf_counter()
    with args.out.open("a") as out:
        for setting in args.settings:
            for seed in range(args.seeds):  # seed-major: a stopped run leaves every arm equally far
                for arm in args.arms:
                    if (setting, arm, seed) in done:
                        continue
                    t0 = time.perf_counter()
                    acc = run_arm(arm, seed, setting)
                    done[(setting, arm, seed)] = acc
                    record = {"setting": setting, "arm": arm, "seed": seed, "val_acc": acc}
                    out.write(json.dumps({**record, "run_s": round(time.perf_counter() - t0, 2)}) + "\n")
                    out.flush()
                    print(
                        f"{setting} {arm} seed={seed} val_acc={acc:.3f} ({time.perf_counter() - t0:.1f} s)", flush=True
                    )
    for setting in args.settings:
        report(setting, {arm: [done[(setting, arm, s)] for s in range(args.seeds)] for arm in args.arms})
    print(f"\n{time.perf_counter() - began:.0f} s this invocation")


if __name__ == "__main__":
    main()
