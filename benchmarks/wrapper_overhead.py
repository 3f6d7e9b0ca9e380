"""Wrapper overhead: our model's training step through the backend object against a minimal baseline.

Per cell, in one process per backend: our model as the driver's ``bench`` cell runs it
(``backend.build(spec, params, precision="float32", device="cpu")``, ``make_train_state``
with Adam lr 1e-3, ``prepare_batch``, ``train_step`` + ``synchronize``), and a minimal
hand-written step over the SAME parameters and the same seeded batches:

- torch lstm / gru: a bare ``nn.LSTM`` / ``nn.GRU`` + ``nn.Linear`` head + ``torch.optim.Adam``
  (goal <= 1.03);
- torch transformer: a minimal post-LN encoder on ``F.scaled_dot_product_attention`` written
  here (separate q/k/v/out ``nn.Linear``, ReLU feed-forward, the same input projection,
  sinusoidal positions, mean pooling and head) (goal <= 1.05);
- jax transformer: the same encoder as one jitted pure function on
  ``jax.nn.dot_product_attention`` with ``optax.adam`` (goal <= 1.05). No jax recurrent
  baseline: there is no stock fast jax LSTM to compare with.

Before anything is timed, the first step of each side (on the first batch, before any update)
must give the same loss (relative difference < 1e-5); otherwise the script refuses (exit 1).
Then: warm-up, and ``--steps`` steps of each side, timed alternately step by step (the order
flips every step), each synchronised. Prints one line per cell (medians, their ratio ours/baseline,
then the minima and their ratio, the least disturbed by other load on the machine) and appends
one record per cell to ``--out`` (the driver's record shape, kind ``overhead``; a repeated run
appends again, so each measurement keeps its own ``env.time``).

The torch and jax cells run in separate child processes (this script with ``--backend``), so the
two frameworks' thread pools never share a process.

    python benchmarks/wrapper_overhead.py                    # every default cell, both backends
    python benchmarks/wrapper_overhead.py --quick            # the small cells only
    python benchmarks/wrapper_overhead.py --backend torch --arch lstm --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Only framework-free modules at import time: torch and jax load lazily, in the child that uses them.
from benchmarks.timing import add_timing_args, single_thread_xla_if_asked  # noqa: E402
from benchmarks.timing import clock as clock_named  # noqa: E402
from experiments.cell import Cell  # noqa: E402
from experiments.kinds.inputs import random_batch  # noqa: E402
from experiments.kinds.measure import step_stats  # noqa: E402
from experiments.records.build import make_record  # noqa: E402
from experiments.records.envinfo import driver_env, host_env  # noqa: E402
from experiments.records.store import encode  # noqa: E402
from experiments.spec import OptimizerSpec, make_spec, size_fields, spec_to_dict  # noqa: E402
from experiments.spec.transformer import sinusoidal_positions  # noqa: E402

GRID = "perf_overhead_cpu"
DEFAULT_OUT = ROOT / "results" / GRID / "records.jsonl"
INPUT = 32
LR = 1e-3
LOSS_RTOL = 1e-5
N_BATCHES = 2  # as the bench cell: two seeded batches, cycled
BACKENDS = ("torch", "jax")
# (backend, arch) -> (the goal on ours/baseline, the baseline's short name)
COMPARISONS: dict[tuple[str, str], tuple[float, str]] = {
    ("torch", "lstm"): (1.03, "nn.LSTM+Linear+Adam"),
    ("torch", "gru"): (1.03, "nn.GRU+Linear+Adam"),
    ("torch", "transformer"): (1.05, "sdpa_encoder+Adam"),
    ("jax", "transformer"): (1.05, "jit_dpa_encoder+optax.adam"),
}
# (batch, seq_len, hidden); hidden is d_model for the transformer
SIZES: dict[str, list[tuple[int, int, int]]] = {
    "lstm": [(32, 100, 128), (16, 50, 64)],
    "gru": [(32, 100, 128), (16, 50, 64)],
    "transformer": [(32, 128, 128), (16, 64, 64)],
}
QUICK_SIZES: dict[str, list[tuple[int, int, int]]] = {arch: sizes[-1:] for arch, sizes in SIZES.items()}

ParamsFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class LossMismatch(Exception):
    """Ours and the baseline disagree on the first batch's loss: the baseline is not our function."""


@dataclasses.dataclass
class Side:
    """One side of a comparison: ``step()`` runs one synchronised training step on the next batch
    and returns its loss as a Python float only when ``want_loss`` (reading it waits on the device)."""

    step: Callable[[bool], float | None]


# -- ours: through the backend object, as experiments/kinds/bench.py does ---------------------------


def ours_side(backend: Any, spec: Any, params: dict[str, np.ndarray], host: list[Any]) -> tuple[Side, str]:
    model = backend.build(spec, params, precision="float32", device="cpu")
    path = backend.execution_path(model)
    state = backend.make_train_state(model, OptimizerSpec(name="adam", lr=LR), seed=0)
    batches = [backend.prepare_batch(state, b) for b in host]
    i = 0

    def step(want_loss: bool) -> float | None:
        nonlocal i
        loss = backend.train_step(state, batches[i % len(batches)])
        backend.synchronize("cpu")
        i += 1
        return backend.loss_value(loss) if want_loss else None

    return Side(step), path


# -- torch baselines ---------------------------------------------------------------------------------


def torch_recurrent_baseline(spec: Any, params: dict[str, np.ndarray], host: list[Any]) -> Side:
    """A bare ``nn.LSTM``/``nn.GRU`` + ``nn.Linear`` + Adam: what a user would write by hand."""
    import torch
    from torch import nn

    cls = {"lstm": nn.LSTM, "gru": nn.GRU}[spec.cell]
    rnn = cls(spec.input_size, spec.hidden_size, batch_first=True)
    head = nn.Linear(spec.hidden_size, spec.head.out_size)
    tensors = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in params.items()}
    rnn.load_state_dict({k.removeprefix("rnn."): v for k, v in tensors.items() if k.startswith("rnn.")}, strict=True)
    head.load_state_dict({k.removeprefix("head."): v for k, v in tensors.items() if k.startswith("head.")}, strict=True)
    lstm = spec.cell == "lstm"

    def logits(x: torch.Tensor) -> torch.Tensor:
        _, hx = rnn(x)
        h_n = hx[0] if lstm else hx
        return head(h_n[-1])

    return _torch_adam_side(logits, [*rnn.parameters(), *head.parameters()], host)


def _torch_adam_side(logits: Callable[[Any], Any], parameters: list[Any], host: list[Any]) -> Side:
    """A hand-written step: cross-entropy of ``logits(x)``, backward, ``torch.optim.Adam``, cycling the batches."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(parameters, lr=LR)
    batches = [
        (torch.from_numpy(np.asarray(b.x, dtype=np.float32)), torch.from_numpy(np.asarray(b.y, dtype=np.int64)))
        for b in host
    ]
    i = 0

    def step(want_loss: bool) -> float | None:
        nonlocal i
        x, y = batches[i % len(batches)]
        i += 1
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(logits(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach()) if want_loss else None

    return Side(step)


def torch_transformer_baseline(spec: Any, params: dict[str, np.ndarray], host: list[Any]) -> Side:
    """A minimal post-LN encoder on ``F.scaled_dot_product_attention``; its module names are the
    canonical parameter names, so our parameters load with a strict ``load_state_dict``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    if spec.norm_first or spec.causal or spec.activation != "relu" or spec.positional != "sinusoidal":
        raise ValueError("the baseline encoder is post-LN, non-causal, ReLU, sinusoidal only (the spec's defaults)")
    d, heads, eps = spec.d_model, spec.num_heads, spec.layer_norm_eps

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self_attn = nn.ModuleDict({n: nn.Linear(d, d) for n in ("q_proj", "k_proj", "v_proj", "out_proj")})
            self.linear1 = nn.Linear(d, spec.d_ff)
            self.linear2 = nn.Linear(spec.d_ff, d)
            self.norm1 = nn.LayerNorm(d, eps=eps)
            self.norm2 = nn.LayerNorm(d, eps=eps)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, _ = x.shape
            a = self.self_attn
            q, k, v = (a[n](x).view(b, t, heads, d // heads).transpose(1, 2) for n in ("q_proj", "k_proj", "v_proj"))
            o = a["out_proj"](F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d))
            x = self.norm1(x + o)
            return self.norm2(x + self.linear2(F.relu(self.linear1(x))))

    class Encoder(nn.Module):
        def __init__(self, seq_len: int) -> None:
            super().__init__()
            self.input_proj = nn.Linear(spec.input_size, d)
            self.layers = nn.ModuleList(Layer() for _ in range(spec.num_layers))
            self.head = nn.Linear(d, spec.head.out_size)
            pe = torch.from_numpy(sinusoidal_positions(seq_len, d).astype(np.float32))
            self.register_buffer("pe", pe, persistent=False)  # not a parameter: strict loading ignores it

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.input_proj(x) + self.pe[: x.shape[1]]
            for layer in self.layers:
                h = layer(h)
            return self.head(h.mean(dim=1))

    model = Encoder(host[0].x.shape[1])
    model.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in params.items()})
    return _torch_adam_side(model, list(model.parameters()), host)


# -- jax baseline ------------------------------------------------------------------------------------


def jax_transformer_baseline(spec: Any, params: dict[str, np.ndarray], host: list[Any]) -> Side:
    """The same encoder as one jitted pure function of a flat dict, on ``jax.nn.dot_product_attention``,
    ``optax.adam``, params and optimizer state donated (as a careful user would write it)."""
    import jax
    import jax.numpy as jnp
    import optax

    if spec.norm_first or spec.causal or spec.activation != "relu" or spec.positional != "sinusoidal":
        raise ValueError("the baseline encoder is post-LN, non-causal, ReLU, sinusoidal only (the spec's defaults)")
    d, heads, eps = spec.d_model, spec.num_heads, spec.layer_norm_eps
    seq_len = host[0].x.shape[1]
    pe = jnp.asarray(sinusoidal_positions(seq_len, d), jnp.float32)

    def dense(p: dict, name: str, x: jax.Array) -> jax.Array:
        return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]

    def norm(p: dict, name: str, x: jax.Array) -> jax.Array:
        mean = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + eps) * p[f"{name}.weight"] + p[f"{name}.bias"]

    def loss_fn(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
        b, t, _ = x.shape
        h = dense(p, "input_proj", x) + pe
        for i in range(spec.num_layers):
            pre = f"layers.{i}."
            q, k, v = (dense(p, f"{pre}self_attn.{n}_proj", h).reshape(b, t, heads, d // heads) for n in "qkv")
            o = dense(p, f"{pre}self_attn.out_proj", jax.nn.dot_product_attention(q, k, v).reshape(b, t, d))
            h = norm(p, f"{pre}norm1", h + o)
            f = dense(p, f"{pre}linear2", jax.nn.relu(dense(p, f"{pre}linear1", h)))
            h = norm(p, f"{pre}norm2", h + f)
        logits = dense(p, "head", h.mean(axis=1))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    tx = optax.adam(LR)

    def train_step(p: dict, opt_state: Any, x: jax.Array, y: jax.Array) -> tuple[dict, Any, jax.Array]:
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    # Our float32 model traces under matmul precision "highest" (true IEEE float32); so does the
    # baseline, so that both compute the same function on any platform (on CPU it changes nothing).
    with jax.default_matmul_precision("highest"):
        jitted = jax.jit(train_step, donate_argnums=(0, 1))
    p = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    opt_state = tx.init(p)
    batches = [(jnp.asarray(b.x, jnp.float32), jnp.asarray(b.y, jnp.int32)) for b in host]
    i = 0

    def step(want_loss: bool) -> float | None:
        nonlocal i, p, opt_state
        x, y = batches[i % len(batches)]
        i += 1
        with jax.default_matmul_precision("highest"):  # the trace (first call) happens here
            p, opt_state, loss = jitted(p, opt_state, x, y)
        loss.block_until_ready()  # as backend.synchronize: wait on the step's loss
        return float(loss) if want_loss else None

    return Side(step)


BASELINES: dict[tuple[str, str], Callable[[Any, dict[str, np.ndarray], list[Any]], Side]] = {
    ("torch", "lstm"): torch_recurrent_baseline,
    ("torch", "gru"): torch_recurrent_baseline,
    ("torch", "transformer"): torch_transformer_baseline,
    ("jax", "transformer"): jax_transformer_baseline,
}


# -- the comparison ----------------------------------------------------------------------------------


def build_spec(arch: str, hidden: int, input_size: int = INPUT, **fields: Any) -> Any:
    """The spec the driver would build for ``hidden`` (d_model, d_ff, heads for the transformer);
    ``fields`` override other spec fields (the test's one-layer transformer)."""
    sizes = {**size_fields(arch, hidden), **fields}
    return make_spec(arch, input_size=input_size, head_kind="classify", head_out=2, **sizes)


def compare(
    backend_name: str,
    arch: str,
    batch: int,
    seq_len: int,
    hidden: int,
    *,
    input_size: int = INPUT,
    steps: int = 30,
    warmup: int = 5,
    threads: int | None = None,
    baseline_params: ParamsFn | None = None,
    spec_fields: dict[str, Any] | None = None,
    clock: str = "wall",
) -> dict[str, Any]:
    """Time ours against the baseline on one cell; return the record (status ``ok``).

    Raises ``LossMismatch`` before timing anything when the first step's losses differ.
    ``baseline_params`` transforms the parameters the baseline gets (a test uses it to show that the
    check can fail); by default the baseline gets exactly ours. ``spec_fields``: other spec fields.
    ``clock``: ``wall`` (``perf_counter``) or ``cpu`` (``process_time``, with ``threads=1`` only).
    """
    from experiments.backend import load_backend

    if (backend_name, arch) not in COMPARISONS:
        raise ValueError(f"no baseline for {arch} on {backend_name}; have {sorted(COMPARISONS)}")
    goal, baseline_name = COMPARISONS[(backend_name, arch)]
    backend = load_backend(backend_name)
    spec = build_spec(arch, hidden, input_size, **(spec_fields or {}))
    params = spec.init_params(0)
    rng = np.random.default_rng(0)
    host = [random_batch(spec, batch, seq_len, rng) for _ in range(N_BATCHES)]
    config = overhead_config(backend_name, spec, batch, seq_len, baseline_name, threads, clock)
    timer = clock_named(clock)
    load = os.getloadavg()[0]  # the machine may be shared: the record says how busy it was
    t_start = time.perf_counter()

    ours, path = ours_side(backend, spec, params, host)
    base = BASELINES[(backend_name, arch)](spec, (baseline_params or dict)(params), host)

    # The check: the first step of each side sees the first batch and the initial parameters.
    loss_ours, loss_base = ours.step(True), base.step(True)
    rel = abs(loss_ours - loss_base) / max(abs(loss_ours), 1e-30)
    if not rel < LOSS_RTOL:  # also catches NaN
        raise LossMismatch(
            f"{arch}/{backend_name} B{batch} T{seq_len} H{hidden}: first-batch loss ours {loss_ours:.8g} vs "
            f"baseline ({baseline_name}) {loss_base:.8g}, relative difference {rel:.2e} >= {LOSS_RTOL:g}: "
            "the baseline does not compute our function, refusing to time it"
        )
    for _ in range(warmup):
        ours.step(False)
        base.step(False)
    t_ours, t_base = [], []
    for k in range(steps):
        # alternate step by step, and flip the order every step, so that drift in the machine's load
        # and any cache warmth left by the previous step fall on both sides alike
        pair = ((ours, t_ours), (base, t_base)) if k % 2 == 0 else ((base, t_base), (ours, t_ours))
        for side, times in pair:
            t0 = timer()
            side.step(False)
            times.append(timer() - t0)
    s_ours, s_base = step_stats(t_ours), step_stats(t_base)
    metrics = {
        "ours_step_s_median": s_ours.median,
        "baseline_step_s_median": s_base.median,
        "ratio": s_ours.median / s_base.median,
        "ours_step_s_cv": s_ours.cv,
        "baseline_step_s_cv": s_base.cv,
        "ours_step_s_min": s_ours.min,
        "baseline_step_s_min": s_base.min,
        "ratio_min": s_ours.min / s_base.min,
        "timed_steps": steps,
        "warmup_steps": warmup,
        "goal": goal,
        "loss_checked": True,
        "first_loss_ours": loss_ours,
        "first_loss_baseline": loss_base,
        "first_loss_rel_diff": rel,
        "loss_rtol": LOSS_RTOL,
        "load_average_1m": load,
    }
    return make_overhead_record(backend, config, path, "ok", metrics, time.perf_counter() - t_start)


def overhead_config(
    backend_name: str, spec: Any, batch: int, seq_len: int, baseline: str, threads: int | None, clock: str = "wall"
) -> dict[str, Any]:
    """What the record's key hashes: everything that decides the measurement."""
    return {
        "kind": "overhead",
        "arch": spec.arch,
        "backend": backend_name,
        "device": "cpu",
        "precision": "float32",
        "batch": batch,
        "seq_len": seq_len,
        "spec": spec_to_dict(spec),
        "optimizer": dataclasses.asdict(OptimizerSpec(name="adam", lr=LR)),
        "baseline": baseline,
        "threads": threads,  # None: the frameworks' defaults (all cores)
        "clock": clock,
    }


def make_overhead_record(
    backend: Any,
    config: dict[str, Any],
    path: str | None,
    status: str,
    metrics: dict[str, Any],
    wall_s: float | None,
    error: str | None = None,
) -> dict[str, Any]:
    """The driver's record (``experiments.records.build.make_record``) of a benchmark's cell."""
    worker = {**host_env(), "backend": backend.name, **backend.describe("cpu", "float32")}  # as the worker's env
    cell = Cell.make(GRID, (), config)
    result = {"status": status, "path": path, "metrics": metrics, "error": error, "worker_env": worker}
    result["cell_s"] = wall_s
    return make_record(cell, result, driver_env("benchmark"))


# -- command line ------------------------------------------------------------------------------------


def cells_for(backend_name: str, archs: list[str], quick: bool) -> list[tuple[str, int, int, int]]:
    sizes = QUICK_SIZES if quick else SIZES
    return [(a, *s) for a in archs if (backend_name, a) in COMPARISONS for s in sizes[a]]


def run_backend(args: argparse.Namespace) -> int:
    """Every cell of one backend, in this process."""
    name = args.backend
    if name == "jax" and args.threads == 1:  # must reach XLA before jax starts (nothing has imported it yet)
        single_thread_xla_if_asked(["--threads", "1"])
    from experiments.backend import load_backend

    backend = load_backend(name)
    if name == "torch" and args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    info = backend.describe("cpu", "float32")
    version = info.get("torch_version") or info.get("jax")
    threads = info.get("threads", os.environ.get("XLA_FLAGS", "") or "default")
    print(
        f"# {name} {version} on {info.get('device_name')}, threads {threads}; float32, input {args.input}, "
        f"Adam lr {LR}; median of {args.steps} alternated steps after {args.warmup} warm-up, {args.clock} clock; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"{'backend':<6} {'arch':<11} {'B':>3} {'T':>4} {'H':>4} {'ours ms':>9} {'base ms':>9} {'ratio':>6} "
        f"{'goal':>5}   (min: ours, base, ratio)  cv ours/base"
    )
    rc = 0
    for arch, batch, seq_len, hidden in cells_for(name, args.arch, args.quick):
        label = f"{name:<6} {arch:<11} {batch:>3} {seq_len:>4} {hidden:>4}"
        try:
            rec = compare(
                name, arch, batch, seq_len, hidden, input_size=args.input, steps=args.steps, warmup=args.warmup,
                threads=args.threads, clock=args.clock,
            )  # fmt: skip
        except LossMismatch as exc:
            print(f"wrapper_overhead: refused: {exc}", file=sys.stderr, flush=True)
            return 1
        except Exception as exc:  # recorded as the driver records a failing cell; the other cells go on
            error = f"{type(exc).__name__}: {exc}".replace("\n", " | ")
            goal, baseline = COMPARISONS[(name, arch)]
            spec = build_spec(arch, hidden, args.input)
            config = overhead_config(name, spec, batch, seq_len, baseline, args.threads, args.clock)
            rec = make_overhead_record(backend, config, None, "error", {"goal": goal}, None, error)
            print(f"{label}  error: {error}", flush=True)
            rc = 1
        else:
            m = rec["metrics"]
            verdict = "ok" if m["ratio"] <= m["goal"] else "OVER"
            print(
                f"{label} {m['ours_step_s_median'] * 1e3:>9.3f} {m['baseline_step_s_median'] * 1e3:>9.3f} "
                f"{m['ratio']:>6.3f} {m['goal']:>5.2f} {verdict:<4}"
                f"(min: {m['ours_step_s_min'] * 1e3:.3f}, {m['baseline_step_s_min'] * 1e3:.3f}, {m['ratio_min']:.3f})"
                f"  {m['ours_step_s_cv']:.3f}/{m['baseline_step_s_cv']:.3f}",
                flush=True,
            )
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "ab") as fh:  # append: a repeated run adds its own measurement
                fh.write(encode(rec))
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=BACKENDS, default=None, help="one backend, in this process (default: both)")
    ap.add_argument("--arch", nargs="+", default=["lstm", "gru", "transformer"], choices=sorted(SIZES))
    ap.add_argument("--quick", action="store_true", help="only the small cell of each architecture")
    add_timing_args(ap, steps=30, warmup=5, threads_help="1: the framework single-threaded (default: all cores)")
    ap.add_argument("--input", type=int, default=INPUT, help="input features per step")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="records file to append to ('' for none)")
    raw = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(raw)
    if args.backend is not None:
        return run_backend(args)
    # One child per backend: torch's and XLA's thread pools never meet in one process.
    rc = 0
    for name in BACKENDS:
        if not cells_for(name, args.arch, args.quick):
            continue
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), *raw, "--backend", name], check=False)
        rc = max(rc, child.returncode)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
