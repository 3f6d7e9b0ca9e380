"""The driver: grids -> cells -> executor -> records in the store, with progress and a summary.

``run_grids(grids, executor=..., device=..., results_dir=...)`` is the one entry
point (``seqbench run`` and ``seqbench reproduce`` call it). Order of work:

1. load and resolve every grid (any ``UserError`` surfaces here, before anything runs);
2. check that every store can be written (a results folder that is a file or read-only
   is a ``UserError``), repair the stores, drop the cells whose key is already stored (resume);
3. record as ``oom`` (estimated) the CPU cells that cannot fit in a worker's memory
   (``run.memory``), without starting them;
4. start the executor's workers for the backends still needed, each asked about the
   devices its cells need (a backend that is not installed or a device that cannot be had
   is a ``UserError`` here, still before any cell runs);
5. run the cells; each result becomes one record appended to
   ``<results_dir>/<grid>/records.jsonl`` as soon as it arrives;
6. count the cells of the grids asked for whose records all say ``error``
   (``Summary.stored_errors``): ``seqbench run`` exits 1 while any remain.

Records are built by ``experiments.records.build.make_record``.
"""

from __future__ import annotations

import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from experiments.cell import Cell
from experiments.errors import UserError
from experiments.grid import Grid, load_cells
from experiments.records.build import make_record
from experiments.records.envinfo import driver_env
from experiments.records.store import Store
from experiments.run.executors import EXECUTORS, make_executor
from experiments.run.memory import estimated_oom


@dataclass
class Summary:
    total: int = 0
    skipped: int = 0
    counts: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    stores: list[str] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (key, label, error)
    records: list[dict[str, Any]] = field(default_factory=list)  # those written by this run
    stored_errors: int = 0  # cells of the grids asked for whose every stored record is an error

    @property
    def ran(self) -> int:
        return sum(self.counts.values())

    @property
    def errors(self) -> int:
        return self.counts.get("error", 0)

    def text(self) -> str:
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "none run"
        lines = [
            f"{self.total} cells: {by_status}; {self.skipped} already stored; {_fmt_s(self.elapsed_s)}",
            *(f"  records: {s}" for s in self.stores),
        ]
        for key, label, error in self.failures[:10]:
            lines.append(f"  {key} {label}: {error[:300]}")
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more")
        if self.stored_errors:
            lines.append(f"{self.stored_errors} cells stored with status error: rerun with --retry-errors")
        return "\n".join(lines)


def _fmt_s(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """Cells done/total, ETA and the current cell: a rewritten line on a terminal, else a line per cell."""

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.began = time.perf_counter()
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self._last_len = 0

    def _eta(self) -> str:
        if not self.done:
            return "ETA ?"
        per = (time.perf_counter() - self.began) / self.done
        return f"ETA {_fmt_s(per * (self.total - self.done))}"

    def _head(self) -> str:
        pct = 100 * self.done // max(self.total, 1)
        return f"[{self.done:>{len(str(self.total))}}/{self.total}] {pct:3d}% {self._eta()}"

    def _write(self, text: str, final: bool) -> None:
        if self.stream is None:
            return
        if self.tty:
            pad = max(0, self._last_len - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self._last_len = 0 if final else len(text)
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def running(self, cell: Cell) -> None:
        self._write(f"{self._head()}  running {cell.grid}: {cell.label()}", final=False)

    def finished(self, cell: Cell, record: dict[str, Any]) -> None:
        self.done += 1
        wall = record.get("wall_s") or 0.0
        self._write(f"{self._head()}  {record['status']:<8} {_fmt_s(wall):>7}  {cell.grid}: {cell.label()}", final=True)

    def note(self, text: str) -> None:
        if self.stream is not None:
            self._write(text, final=True)


def run_grids(
    grids: list[str | Path | Grid],
    *,
    executor: str = "local",
    device: str | None = None,
    results_dir: str | Path = "results",
    address: str | None = None,
    retry_errors: bool = False,
    shrink: bool = False,
    stream: TextIO | str | None = "stderr",
) -> Summary:
    """Run every cell of ``grids`` not yet stored under ``results_dir``; return the summary.

    ``grids``: names, paths or ``Grid`` objects. ``device``: overrides the grids' device
    (None keeps theirs, cpu by default). ``retry_errors``: also rerun cells whose only
    records have status ``error``. ``shrink``: every size capped, to check the path
    (``grid_keys.shrunk``). Raises ``UserError`` before running anything on a
    bad grid or a backend that cannot load. ``stream``: where progress and the summary go
    (standard error by default; None: nowhere).
    """
    if stream == "stderr":
        stream = sys.stderr
    out = stream if stream is not None else None
    began = time.perf_counter()
    if executor not in EXECUTORS:
        raise UserError("--executor", f"unknown executor {executor!r}", f"use one of {', '.join(EXECUTORS)}")
    if address and executor != "ray":
        raise UserError("--ray-address", "only the ray executor takes an address", "add --executor ray")
    loaded = load_cells(list(grids), device, shrink)
    summary = Summary()
    stores: dict[str, Store] = {}
    todo: deque[tuple[Store, Cell]] = deque()

    def say(text: str) -> None:
        if out is not None:
            out.write(text + "\n")
            out.flush()

    for grid, _ in loaded:
        store = stores.setdefault(grid.name, Store(results_dir, grid.name, say=say))
        store.check_writable()  # before any repair writes or any worker starts
    for grid, cells in loaded:
        store = stores[grid.name]
        store.repair()
        store.refresh()
        summary.total += len(cells)
        for cell in cells:
            if store.done(cell.key, retry_errors):
                summary.skipped += 1
            else:
                todo.append((store, cell))
    summary.stores = [str(s.path) for s in stores.values()]
    progress = Progress(len(todo), stream)
    todo = _record_estimated_ooms(todo, executor, progress, summary, retry_errors)
    if not todo:
        return _finish(loaded, stores, summary, began, stream)

    ex = make_executor(executor, address=address)
    needs: dict[str, set[str]] = {}
    for _, cell in todo:
        needs.setdefault(cell.backend, set()).add(cell.device)
    try:
        try:
            ex.start(sorted(needs), needs)
        except UserError as exc:
            if exc.field != "device":
                raise
            where = "--device" if device else ", ".join(f"{g.path}: device" for g, _ in loaded)
            raise UserError(where, exc.problem, exc.fix) from None
        driver = driver_env(ex.name)
        _drive(ex, todo, stores, driver, progress, summary, retry_errors)
    except BaseException:
        ex.close(force=True)
        raise
    else:
        ex.close()
    finally:
        for store in stores.values():
            store.release_all()
    return _finish(loaded, stores, summary, began, stream)


def _finish(
    loaded: list[tuple[Grid, list[Cell]]],
    stores: dict[str, Store],
    summary: Summary,
    began: float,
    stream: TextIO | None,
) -> Summary:
    """Count the cells stored with status error only (another driver's too), print the summary."""
    for grid, cells in loaded:
        store = stores[grid.name]
        store.refresh()
        summary.stored_errors += sum(1 for c in cells if store.done(c.key) and not store.done(c.key, True))
    summary.elapsed_s = time.perf_counter() - began
    if stream is not None:
        stream.write(summary.text() + "\n")
        stream.flush()
    return summary


def _record_estimated_ooms(
    todo: deque[tuple[Store, Cell]], executor: str, progress: Progress, summary: Summary, retry_errors: bool
) -> deque[tuple[Store, Cell]]:
    """Store an ``oom`` (estimated) record for each cell that cannot fit in a worker (``run.memory``),
    without starting it; the rest, to run. A cell another driver holds stays to run (it waits there)."""
    left: deque[tuple[Store, Cell]] = deque()
    driver: dict[str, Any] | None = None
    for store, cell in todo:
        result = estimated_oom(cell)
        if result is None or not store.reserve(cell.key):
            left.append((store, cell))
            continue
        try:
            driver = driver or driver_env(executor)
            record = make_record(cell, result, driver)
            if store.append(record, retry_errors):
                summary.records.append(record)
                summary.counts[record["status"]] += 1
            else:
                summary.skipped += 1
            progress.finished(cell, record)
        finally:
            store.release(cell.key)
    return left


def _drive(
    ex: Any,
    todo: deque[tuple[Store, Cell]],
    stores: dict[str, Store],
    driver: dict[str, Any],
    progress: Progress,
    summary: Summary,
    retry_errors: bool,
) -> None:
    """Submit cells as capacity allows, collect results, write records.

    Round one claims cells without waiting; cells another driver holds are
    deferred to round two, which waits for their claims and skips those that the
    other driver has stored meanwhile.
    """

    def skip() -> None:
        summary.skipped += 1
        progress.total -= 1

    def fill(queue: deque, deferred: deque, wait: bool, in_flight: int) -> int:
        while queue and in_flight < ex.capacity:
            store, cell = queue.popleft()
            store.refresh()
            if store.done(cell.key, retry_errors):
                skip()
                continue
            if not store.reserve(cell.key, wait=wait):
                deferred.append((store, cell))
                continue
            store.refresh()  # another driver may have stored it before we claimed it
            if store.done(cell.key, retry_errors):
                store.release(cell.key)
                skip()
                continue
            progress.running(cell)
            ex.submit([cell])
            in_flight += 1
        return in_flight

    wait = False
    while todo:
        deferred: deque[tuple[Store, Cell]] = deque()
        in_flight = fill(todo, deferred, wait, 0)
        for cell, result in ex.results():
            in_flight -= 1
            store = stores[cell.grid]
            record = make_record(cell, result, driver)
            if store.append(record, retry_errors):
                summary.records.append(record)
                summary.counts[record["status"]] += 1
                if record["status"] == "error":
                    summary.failures.append((cell.key, cell.label(), record.get("error") or ""))
            else:
                summary.skipped += 1
            store.release(cell.key)
            progress.finished(cell, record)
            in_flight = fill(todo, deferred, wait, in_flight)
        todo, wait = deferred, True
