"""What the records are: the devices and software they name, their precisions, grids, presets and statuses.

Record counts are computed here, one way, for every table and sentence of the report:

- the report's records are ``fields.load_records``: one per key, across every grid file;
- a grid's records (``Stored``) are those its file holds, one per key by the same rule (the ``ok``
  one of a retried cell), so that a grid's count equals the records in its file even where a
  cell is stored by two grids (it is then one report record, serving both grids' claims);
- a claim's records are ``claim_records``: the report's records tagged with the claim.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from experiments.claims.base import Table
from experiments.grid import raw_lists
from experiments.records import fields as R
from experiments.records.fields import Record

# The CPU presets of tiny budgets: verdicts from them alone are provisional. ``quick`` holds the
# learning grids (minutes on any host); ``quick_cost`` the small cost grids, apart because each of
# their points runs 3 times in fresh workers and needs the host to itself (about 40 min on 2 cores).
QUICK = "quick"
QUICK_PRESETS: tuple[str, ...] = (QUICK, "quick_cost")
PROVISIONAL = f"provisional ({QUICK})"  # the label of a verdict decided from quick grids alone


def provisional_label(presets: Iterable[str]) -> str:
    """``provisional (quick)``, ``provisional (quick_cost)``, ...: the label of a verdict whose grids
    all belong to quick presets only."""
    return f"provisional ({', '.join(sorted(set(presets)))})"


def is_provisional(label: str) -> bool:
    return label.startswith("provisional (")


@dataclass(frozen=True)
class Stored:
    """The record files' contents, per grid: ``statuses[grid][status]`` records (one per key), and
    ``served[grid]``, the (claim, device) pairs its records serve."""

    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    served: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)  # per grid: the records' summed wall seconds
    devices: dict[str, set[str]] = field(default_factory=dict)  # per grid: the device names its records give

    def records(self, grid: str) -> int:
        return sum(self.statuses.get(grid, Counter()).values())

    @property
    def total(self) -> int:
        """Records summed over grids (a cell stored by two grids counts in each)."""
        return sum(self.records(g) for g in self.statuses)

    def grids_for(self, claim_id: str, device: str | None = None) -> list[str]:
        """The grids whose records serve ``claim_id`` (on ``device``, ``cpu`` or ``cuda``, when given)."""
        return sorted(
            g for g, pairs in self.served.items() if any(c == claim_id and device in (None, d) for c, d in pairs)
        )


def _count(recs: Sequence[tuple[str, Record]]) -> Stored:
    statuses: dict[str, Counter[str]] = {}
    served: dict[str, set[tuple[str, str]]] = {}
    wall: dict[str, float] = {}
    devices: dict[str, set[str]] = {}
    for grid, rec in recs:
        statuses.setdefault(grid, Counter())[str(rec.get("status"))] += 1
        served.setdefault(grid, set()).update((str(c), R.device(rec)) for c in rec.get("claim_ids") or [])
        wall[grid] = wall.get(grid, 0.0) + float(rec.get("wall_s") or 0.0)
        devices.setdefault(grid, set()).add(R.device_name(rec))
    return Stored(dict(sorted(statuses.items())), dict(sorted(served.items())), wall, devices)


def stored(results_dir: str | Path) -> Stored:
    """Per grid, the records its files hold (the folders ``fields.load_records`` reads, by its rules)."""
    from experiments.records.store import RECORDS, parse_lines

    chosen: dict[tuple[str, str], Record] = {}  # (grid, key) -> the record kept
    for path in sorted(Path(results_dir).glob(f"*/{RECORDS}")):
        if path.parent.name.startswith("_"):
            continue
        for rec in parse_lines(path.read_bytes())[0]:
            if "config" not in rec:
                continue
            at = (str(rec.get("grid") or path.parent.name), str(rec.get("key", f"#{len(chosen)}")))
            if at not in chosen or (not R.ok(chosen[at]) and R.ok(rec)):
                chosen[at] = rec
    return _count([(grid, rec) for (grid, _), rec in chosen.items()])


def stored_from(records: Sequence[Record]) -> Stored:
    """``Stored`` for records that come from no folder (each counted under its own ``grid``)."""
    return _count([(str(r.get("grid")), r) for r in records])


def claim_records(records: Sequence[Record], claim_id: str) -> list[Record]:
    """The records that serve ``claim_id``: the ones its section and its "Ran" paragraph count."""
    return R.select(records, claim_id)


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


def status_table(store: Stored) -> Table:
    rows = [[g, s, n] for g, counts in sorted(store.statuses.items()) for s, n in sorted(counts.items())]
    return Table("record_status", "Records by grid and status", ["grid", "status", "records"], rows)


def preset_cost_table(store: Stored, planned: dict[str, int | None]) -> Table:
    """Per preset: its grids, the cells they plan (``planned``: per grid, None where it cannot be
    resolved), the records stored, and the device time those records took (their summed ``wall_s``,
    on the devices they name). A cell run by two presets counts in each; a cell's wall time
    includes its worker's start and, on a shared host, the waits the load caused."""
    rows = []
    presets = raw_lists("presets")  # read the grid files once, not once per preset
    for preset in sorted({p for ps in presets.values() for p in ps}):
        grids = [g for g, ps in presets.items() if preset in ps]
        plan = [planned.get(g) for g in grids]
        done = sum(store.records(g) for g in grids)
        ok = sum(store.statuses.get(g, Counter()).get("ok", 0) for g in grids)
        wall = sum(store.wall_s.get(g, 0.0) for g in grids)
        names = sorted({d for g in grids for d in store.devices.get(g, set())})
        total = "?" if None in plan else str(sum(p or 0 for p in plan))
        rows.append([preset, len(grids), total, done, ok, f"{wall:.0f}", f"{wall / 3600:.2f}", "; ".join(names) or "-"])
    return Table(
        "preset_cost",
        "Presets: cells planned, records stored and the device time the records took (summed wall_s)",
        ["preset", "grids", "cells planned", "records", "ok", "device-seconds", "device-hours", "devices"],
        rows,
    )


def planned_cells(grids: Iterable[str]) -> dict[str, int | None]:
    """Each grid's planned cell count (None where its file cannot be resolved here)."""
    from experiments.grid import load_grid

    out: dict[str, int | None] = {}
    for g in grids:
        try:
            out[g] = len(load_grid(g).cells())
        except (ValueError, KeyError):  # UserError is a ValueError
            out[g] = None
    return out


def grid_presets(grids: Iterable[str]) -> dict[str, list[str]]:
    """Each of ``grids``, sorted, with the presets its grid file lists (none if it has no file)."""
    presets = raw_lists("presets")  # unreadable grid files are skipped there, each alone
    return {g: presets.get(g, []) for g in sorted(set(grids))}


def preset_names(grids: dict[str, list[str]]) -> list[str]:
    """The presets named by any of ``grids``, sorted."""
    return sorted({p for ps in grids.values() for p in ps})


def presets_label(grids: Sequence[str], presets: dict[str, list[str]]) -> str:
    """Where a verdict comes from: ``provisional (quick)`` when every grid behind it belongs to
    quick presets alone (``provisional (quick_cost)`` for the small cost grids), else the presets
    its grids belong to (a grid in none is named as such). A grid that a thorough preset also runs
    (L3's deterministic check is the same in quick and standard) makes the verdict that preset's."""
    grids = sorted(set(grids))
    if not grids:
        return "-"
    if all(presets.get(g) and set(presets[g]) <= set(QUICK_PRESETS) for g in grids):
        return provisional_label(p for g in grids for p in presets[g])
    names = sorted({p for g in grids for p in presets.get(g, [])})
    loose = [g for g in grids if not presets.get(g)]
    return ", ".join(names + [f"grid {g} (no preset)" for g in loose])
