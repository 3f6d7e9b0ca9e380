"""What the records are: the devices and software they name, their precisions, grids, presets and statuses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from experiments.claims.base import Table
from experiments.grid import raw_lists
from experiments.records import fields as R
from experiments.records.fields import Record

VERSION_KEYS = ("jax", "jaxlib", "flax", "optax", "cuda", "cudnn")


def hardware_table(records: Sequence[Record]) -> Table:
    """One row per distinct device, CPU, thread setting, backend and software versions, with its record count."""
    seen: Counter[tuple] = Counter()
    for r in records:
        env = r.get("env", {}) or {}
        versions = sorted(f"{k}={v}" for k, v in env.items() if ("version" in k or k in VERSION_KEYS) and v)
        key = (
            R.device(r),
            R.device_name(r),
            str(env.get("cpu", "")),
            str(env.get("cpu_count", "")),
            str(env.get("omp_num_threads") or "default"),
            R.backend(r),
            "; ".join(versions),
        )
        seen[key] += 1
    rows = [[*k, n] for k, n in sorted(seen.items(), key=lambda kv: tuple(map(str, kv[0])))]
    return Table(
        "hardware",
        "Devices and software the records name",
        ["device", "device name", "cpu", "cores", "OMP threads", "backend", "versions", "records"],
        rows,
    )


def precision_table(records: Sequence[Record]) -> Table:
    counts = Counter((R.device(r), R.kind(r), str(R.cfg(r, "precision"))) for r in records)
    rows = [[d, k, p, n] for (d, k, p), n in sorted(counts.items())]
    return Table(
        "precision", "Records by device, cell kind and precision", ["device", "kind", "precision", "records"], rows
    )


def status_table(records: Sequence[Record]) -> Table:
    counts = Counter((str(r.get("grid")), str(r.get("status"))) for r in records)
    rows = [[g, s, n] for (g, s), n in sorted(counts.items())]
    return Table("record_status", "Records by grid and status", ["grid", "status", "records"], rows)


def grid_presets(records: Sequence[Record]) -> dict[str, list[str]]:
    """Each grid the records name, sorted, with the presets its grid file lists (none if it has no file)."""
    presets = raw_lists("presets")  # unreadable grid files are skipped there, each alone
    return {g: presets.get(g, []) for g in sorted({str(r.get("grid")) for r in records})}


def preset_names(grids: dict[str, list[str]]) -> list[str]:
    """The presets named by any of ``grids``, sorted."""
    return sorted({p for ps in grids.values() for p in ps})
