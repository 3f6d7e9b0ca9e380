"""The paper's opening: the abstract, the suite (architectures, tasks, grids) and the methods."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from experiments.claims import CLAIMS
from experiments.claims.base import ClaimResult
from experiments.claims.verdict import NOT_RUN, VERDICTS
from experiments.grid import raw_lists
from experiments.records import fields as R
from experiments.records.fields import Record
from experiments.report.inventory import (
    Stored,
    hardware_table,
    is_provisional,
    planned_cells,
    precision_table,
    preset_cost_table,
    preset_names,
)
from experiments.report.tables import markdown, table_markdown
from experiments.report.verdicts import verdicts_by_preset


def _shared_cells(records: Sequence[Record], store: Stored | None) -> str:
    """Why the grids' counts sum to more than the records, where they do (a cell stored by two grids)."""
    if store is None or store.total == len(records):
        return ""
    return (
        f" The grids' files hold {store.total} records: a cell stored by two grids is one record here, serving "
        "both grids' claims."
    )


def _verdict_sources(results: dict[str, ClaimResult], store: Stored) -> str:
    """Which presets the verdict rows rest on, from the rows themselves (a quick-only row is provisional)."""
    groups = verdicts_by_preset(results, store)
    parts = [f"{label}: {len(ids)} ({', '.join(ids)})" for label, ids in groups.items()]
    text = "Verdict rows by the presets of the grids behind them: " + "; ".join(parts) + "."
    if any(is_provisional(label) for label in groups):
        text += (
            " A provisional row rests on the tiny budgets of the quick presets alone (`quick`: few training "
            "steps, small models and data sets; `quick_cost`: small cost grids on a CPU); a more thorough "
            "preset's records decide where they exist."
        )
    return text


def abstract(
    results: dict[str, ClaimResult],
    records: Sequence[Record],
    grids: dict[str, list[str]],
    store: Stored | None = None,
) -> list[str]:
    counts = Counter(res.verdict for res in results.values())
    run = [cid for cid, res in results.items() if res.verdict != NOT_RUN]
    dev_labels = [R.device_label(list(records), d) for d in R.devices(records)]
    presets = preset_names(grids)
    out = ["## Abstract", ""]
    out.append(
        f"Five articles about LSTMs, GRUs, bidirectional and attention models make {len(CLAIMS)} testable claims about "
        f"cost and learning dynamics. seqbench implements the models twice, in PyTorch and in JAX/Flax, checks that "
        f"both compute the same function, and tests each claim on real runs. This report rests on {len(records)} "
        f"result records from {len(grids)} grids (presets: {', '.join(presets) or 'none'}), measured on "
        f"{', '.join(dev_labels) or 'no device'}.{_shared_cells(records, store)} Of the {len(CLAIMS)} claims, "
        f"{len(run)} have records; their headline verdicts: "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS if v != NOT_RUN)
        + f"; {counts.get(NOT_RUN, 0)} are not run yet."
    )
    if store is not None:
        out.append("\n" + _verdict_sources(results, store))
    out.append("")
    return out


def suite(store: Stored, grids: dict[str, list[str]]) -> list[str]:
    from experiments.backend import BACKENDS
    from experiments.spec import ARCHITECTURES
    from experiments.tasks import task_names, task_summary

    out = ["## 1. The suite", ""]
    out.append(
        f"Architectures (one spec, one PyTorch and one JAX implementation each): {', '.join(ARCHITECTURES)}. "
        f"Backends: {', '.join(BACKENDS)}. Each backend runs in a worker process of its own."
    )
    out += ["", "Tasks (NumPy, seeded, train/validation/test splits, a trivial baseline each):", ""]
    out += [f"- `{name}`: {task_summary(name)}" for name in task_names()]
    out += ["", "Grids behind these records (each grid's records as its file holds them):", ""]
    out.append(
        markdown(["grid", "presets", "records"], [[g, ", ".join(p) or "-", store.records(g)] for g, p in grids.items()])
    )
    cost = preset_cost_table(store, planned_cells(raw_lists("presets")))
    out += [
        "",
        f"{cost.title}. One local driver runs one cell at a time; two drivers (or `--executor ray`) "
        "on 2 cores halve the wall time of learning grids at best, while cost grids need the host to "
        "themselves:",
        "",
    ]
    out.append(table_markdown(cost))
    return out


def methods(records: Sequence[Record]) -> list[str]:
    return [
        "## 2. Methods",
        "",
        "**Cost.** A bench cell times one training step (forward, backward, optimizer update) after warm-up: at "
        "least 3 warm-up steps and until the step time settles (compile time is recorded on its own), then at least "
        "20 timed steps or 1 s, the device synchronised after each step, alternating two input batches. The "
        "median is reported with its interquartile range; ratios carry a 95% interval from the medians' standard "
        "errors. Peak memory: the allocator's peak on a GPU; on a CPU, the worker's peak resident memory above its "
        "level before the model was built: `cpu_rss_fresh` in a worker started for that cell (after two steps of "
        "a tiny model of the same architecture, so that the framework's first use is not counted), `cpu_rss_delta` "
        "in a worker reused across cells. FLOP/s use the specs' analytic FLOP counts; "
        "the fraction of peak divides by a large GEMM measured in the same run.",
        "",
        "**Learning.** A train cell trains from the shared initial parameters (identical in both backends) with "
        "the grid's optimizer and budget, evaluates on the validation split, and records the final and best "
        "validation metric, the trivial baseline, steps to a task's threshold, divergence, and the curves. Claims "
        "compare settings paired by seed under one set of rules (`experiments/claims/learning/rules.py`): a "
        "positive control per claim, budgets from "
        "the sizing run, Wilson (Newcombe for differences) intervals over at least 20 runs for solve-or-not "
        "outcomes and Student-t intervals over at least 5 runs for continuous ones. A run that diverges is a "
        "result: it scores the trivial baseline.",
        "",
        "**Probes.** `grad_flow` measures the norm of dL/dx_t for every step at initialisation (L1); `forget_gate` "
        "reads the forget-gate activations at initialisation (L3).",
        "",
        "**Verdicts** follow CLAIMS.md: confirmed (direction and size as claimed; a single number within +-25%), "
        "partly (direction only, or only in a regime the claim did not name), refuted (opposite direction, or no "
        "effect where one was claimed, the interval excluding the claim), inconclusive (interval too wide). Where a "
        'claim gives no number ("large", "drastically", "comparable"), the suite\'s reading is stated in the '
        "claim's section. Cost verdicts are per device.",
        "",
        "**Hardware and software.**",
        "",
        table_markdown(hardware_table(records)),
        "**Precision.** float32 is IEEE float32 (TF32 off) unless a record says `tf32`. " + subnormals(records),
        "",
        table_markdown(precision_table(records)),
    ]


def subnormals(records: Sequence[Record]) -> str:
    """How the CPU records treated float32 subnormals, from their ``env.flush_denormal``: XLA flushes them
    to zero; torch does since ``torch_impl/backend.py`` asks it to, and did not before (no field)."""
    counts = Counter(
        (R.backend(r), (r.get("env") or {}).get("flush_denormal"))
        for r in records
        if R.device(r) == "cpu" and R.cfg(r, "precision") != "float64"
    )
    if not counts:
        return ""
    parts = [
        f"{backend} {'flushed' if flag else 'kept (IEEE)' if flag is False else 'not recorded'}: {n}"
        for (backend, flag), n in sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
    ]
    return (
        "On CPU both backends flush float32 subnormals (below 1.2e-38) to zero, as XLA does by itself; torch "
        "records from before the suite asked torch to (`not recorded`) kept them, which changes no result "
        "beyond those magnitudes but made long-T recurrent backward passes several times slower "
        "(benchmarks/NOTES.md). CPU records by backend and subnormal handling: " + "; ".join(parts) + "."
    )
