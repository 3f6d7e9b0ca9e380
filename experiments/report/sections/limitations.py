"""Section 8: what the records cannot show, as the records themselves say it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from experiments.claims import CLAIMS, readings
from experiments.claims.base import ClaimResult, fmt
from experiments.claims.verdict import NOT_RUN
from experiments.records import fields as R
from experiments.records.fields import Record
from experiments.report.inventory import claim_records
from experiments.report.ran import seeds_per_setting

NOISY_CV = 0.25  # a bench cell whose step times vary more than this is flagged as noisy
CPU_MEMORY = (
    "Memory claims are decided from `saved_bytes`, the bytes the backward pass of one training step holds "
    "(torch `saved_tensors_hooks`, each storage once; jax the residuals of `jax.vjp`), per backend and kernel, "
    "on any device. The frameworks store different things, and each memory claim's saved/analytic table gives "
    "the ratios (oneDNN's workspace; weight-derived arrays among jax's residuals, which dominate at small T; a "
    "fused path that on CPU may save what its reference path saves). S9's 16 GiB answer on CPU is an "
    "extrapolation from them, stated as such. CPU resident memory (`cpu_rss_*`) follows the allocator (glibc "
    "keeps blocks under 32 MiB, a jax reading holds XLA's compile-time memory) and is a column that decides "
    "nothing; records without `saved_bytes` (schema 1) keep CPU memory parts capped at inconclusive. GPU "
    "allocator peaks are shown beside `saved_bytes`."
)


def max_seeds(records: Sequence[Record], cid: str) -> int:
    """The most seeds any one configuration of claim ``cid`` ran with (0 without records)."""
    return seeds_per_setting(claim_records(records, cid))


def _gpu(results: dict[str, ClaimResult]) -> str:
    judged = [cid for cid, c in CLAIMS.items() if c.about_gpu and results[cid].verdict != NOT_RUN]
    text = "No GPU records: every cost verdict here is a CPU verdict."
    if judged:
        text += f" For the claims about GPUs ({', '.join(judged)}) that is not the verdict the claim is about."
    return text + " The `full` preset is the GPU grid."


def _noisy(records: Sequence[Record]) -> list[str]:
    bench = [r for r in records if R.kind(r) == "bench" and R.ok(r)]
    noisy = [R.fmetric(r, "step_s_cv") for r in bench if R.fmetric(r, "step_s_cv") > NOISY_CV]
    if not noisy:
        return []
    return [
        f"{len(noisy)} of {len(bench)} bench cells timed steps whose coefficient of variation exceeds "
        f"{NOISY_CV:g} (median {fmt(float(np.median(noisy)))}): noisy "
        "timings, as when other processes share the cores. Their ratios' intervals account for the spread of "
        "the steps, not for slow drifts of the machine's load between cells."
    ]


def _dirty(records: Sequence[Record]) -> list[str]:
    commits = Counter(
        (str((r.get("env") or {}).get("git_commit"))[:10], bool((r.get("env") or {}).get("git_dirty"))) for r in records
    )
    dirty = sum(n for (_, d), n in commits.items() if d)
    if not dirty:
        return []
    shown = ", ".join(sorted({c for (c, d) in commits if d}))
    return [
        f"{dirty} records ran from a working tree with uncommitted changes to the code (on top of {shown}); "
        "the records' configs are complete, but that code state is not in the history."
    ]


def limitations(results: dict[str, ClaimResult], records: Sequence[Record], provisional: Sequence[str]) -> list[str]:
    """``provisional``: the claims with a verdict row decided from the quick presets alone."""
    lims: list[str] = []
    if provisional:
        lims.append(
            f"Verdict rows of {', '.join(provisional)} rest on the quick presets alone (`quick`, `quick_cost`), "
            "which run tiny budgets on a CPU: few training steps or timed steps, small hidden sizes and data "
            "sets. They say what those budgets show, not what a tuned model or a thorough timing reaches."
        )
    if "cuda" not in R.devices(records):
        lims.append(_gpu(results))
    not_run = [cid for cid, res in results.items() if res.verdict == NOT_RUN]
    if not_run:
        lims.append(f"Not run: {', '.join(not_run)}.")
    bad = Counter(str(r.get("status")) for r in records if not R.ok(r))
    if bad:
        shown = ", ".join(f"{n} {s}" for s, n in sorted(bad.items()))
        lims.append(f"Cells that did not finish ok (kept as results): {shown}.")
    learning_backends = sorted({R.backend(r) for r in records if R.kind(r) == "train"})
    if len(learning_backends) == 1:
        lims.append(
            f"Every training run here used the {learning_backends[0]} backend; the two backends' agreement "
            "rests on `seqbench verify` and on the probes and bench cells run on both."
        )
    few = sorted({cid for cid, c in CLAIMS.items() if c.family == "learning" and max_seeds(records, cid) in (1, 2)})
    if few:
        lims.append(f"Fewer than 3 seeds for: {', '.join(few)}.")
    lims += _noisy(records)
    lims += _dirty(records)
    lims.append(CPU_MEMORY)
    lims.append(
        f"Where a claim gives no number the suite states its reading ({readings.stated()}); "
        "another reading could change those verdicts."
    )
    return ["## 8. Limitations", "", *[f"- {x}" for x in lims], ""]
