"""``seqbench bench --arch NAME --backend NAME [...]``: one timed cell in a worker, printed as a record."""

from __future__ import annotations

import argparse
import json

from experiments.backend import PRECISIONS
from experiments.errors import UserError

COMMAND_LINE = "command line"  # the one-cell grid's "file"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "bench",
        help="time one cell (training steps) and print its record",
        description="Time training steps of one model on one backend, per the measurement protocol. Stores nothing.",
    )
    parser.add_argument("--arch", required=True, help="an architecture (seqbench list)")
    parser.add_argument("--backend", required=True, help="torch or jax")
    parser.add_argument("--batch", type=int, default=32, help="batch size B (default 32)")
    parser.add_argument("--seq-len", type=int, default=64, help="sequence length T (default 64)")
    parser.add_argument("--hidden", type=int, help="hidden size (d_model for the Transformer)")
    parser.add_argument("--layers", type=int, help="number of layers")
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--path", default="auto", choices=("auto", "on", "off"), help="fast path: auto | on | off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    return parser


def bench_grid(args: argparse.Namespace):  # -> Grid
    """The one-cell grid these flags describe (validated like a grid file)."""
    from pathlib import Path

    from experiments.grid import Grid, GridFile

    fixed = {
        "arch": args.arch,
        "backend": args.backend,
        "batch": args.batch,
        "seq_len": args.seq_len,
        "precision": args.precision,
        "device": args.device,
        "path": args.path,
        "seed": args.seed,
    }
    if args.hidden is not None:
        fixed["hidden"] = args.hidden
    if args.layers is not None:
        fixed["layers"] = args.layers
    return Grid(name="bench", path=Path(COMMAND_LINE), file=GridFile(kind="bench", fixed=fixed))


# grid keys the flags set; a grid error on one of them is reported under the flag's name
FLAGS: dict[str, str] = {
    "arch": "--arch",
    "backend": "--backend",
    "batch": "--batch",
    "seq_len": "--seq-len",
    "hidden": "--hidden",
    "layers": "--layers",
    "num_layers": "--layers",
    "precision": "--precision",
    "device": "--device",
    "path": "--path",
    "seed": "--seed",
}


def as_flag_error(exc: UserError) -> UserError:
    """A grid error about the one-cell grid, named by the flag (``--hidden``), not ``command line: fixed.hidden``."""
    key = exc.field.removeprefix(f"{COMMAND_LINE}: ").removeprefix("fixed.")
    flag = FLAGS.get(key)
    if flag is None:
        return exc
    problem = exc.problem.split(", in the cell ")[0]  # the cell is the command line itself
    fix = exc.fix.replace("use ", "give ", 1) if exc.fix.startswith("use ") else exc.fix
    return UserError(flag, problem, fix or f"change {flag}")


def one_cell(args: argparse.Namespace):  # -> Cell
    try:
        (cell,) = bench_grid(args).cells()
    except UserError as exc:
        raise as_flag_error(exc) from None
    return cell


def run(args: argparse.Namespace) -> int:
    from experiments.records.build import make_record
    from experiments.records.envinfo import driver_env
    from experiments.run.executors import LocalExecutor
    from experiments.run.memory import estimated_oom

    cell = one_cell(args)
    guarded = estimated_oom(cell)  # a cell that cannot fit is never started
    if guarded is not None:
        record = make_record(cell, guarded, driver_env("local"))
    else:
        ex = LocalExecutor()
        try:
            try:
                ex.start([cell.backend], {cell.backend: [cell.device]})
            except UserError as exc:
                raise (as_flag_error(exc) if exc.field == "device" else exc) from None
            record = make_record(cell, ex.run(cell), driver_env(ex.name))
        finally:
            ex.close()
    if args.json:
        print(json.dumps(record, indent=2, default=str))
    else:
        print(format_record(record))
    return 0 if record["status"] != "error" else 1


def format_record(record: dict) -> str:
    m = record["metrics"]
    env = record["env"]
    device = f"{env.get('device_kind')} {env.get('device_name') or ''}".rstrip()
    lines = [
        f"{record['arch']} on {record['backend']} ({record['path']}), {device}",
        f"status: {record['status']}" + (f"  {record['error']}" if record.get("error") else ""),
    ]
    if m.get("estimated_bytes") is not None:  # the memory guard's record: the cell never started
        lines.append(f"memory: needs >= {m['estimated_bytes']} B, a worker may use {m['memory_limit_bytes']} B")
    elif m:

        def fmt(v, unit=""):
            return "n/a" if v is None else (f"{v:.4g}{unit}" if isinstance(v, float) else f"{v}{unit}")

        lines += [
            f"step time: median {fmt(m.get('step_s_median'), ' s')}, IQR {fmt(m.get('step_s_iqr'), ' s')}, "
            f"CV {fmt(m.get('step_s_cv'))} over {m.get('timed_steps')} steps; compile {fmt(m.get('compile_s'), ' s')}",
            f"throughput: {fmt(m.get('examples_per_s'))} examples/s, {fmt(m.get('flops_per_s'))} FLOP/s "
            f"({fmt(m.get('peak_fraction'))} of a measured peak of {fmt(m.get('device_peak_flops_per_s'))})",
            f"memory: {fmt(m.get('peak_mem_bytes'), ' B')} ({m.get('mem_kind')}); params {m.get('param_count')}",
        ]
    lines.append(f"key {record['key']}")
    return "\n".join(lines)
